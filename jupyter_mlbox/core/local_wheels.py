"""Local packages built into wheels on the host, shipped in the build context.

A distribution the kernel installed from a local folder (``pip install -e .``), a local sdist or
a local wheel is never asked of an index by name (provenance.py says why). It is built here
with a standard frontend (``uv build --wheel``, else ``pip wheel --no-deps``) from its source as
it is now, and the image installs that wheel:
``acme-tools @ file:///mlbox-build/wheels/<key>/acme_tools-0.3.0-py3-none-any.whl``.

``<key>`` is a digest of the wheel's content (its members, not the zip's timestamps): an
edited package gives a new requirement line and so a new image tag, an unchanged one the same,
even though wheel builds are not byte-reproducible. The wheel shipped for a content is kept in
a host cache, and the source tree's digest points at it, so planning an unchanged package
builds nothing. ``SOURCE_DATE_EPOCH`` is set anyway, for backends that honour it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from ..errors import RequirementError
from .provenance import ARCHIVE, Provenance

#: Where the wheels travel in the build context, and where the builder finds them.
CONTEXT_DIR = "mlbox-build/wheels"
IMAGE_URL = "file:///mlbox-build/wheels/"
#: Folders of a source tree that are build output, caches or environments, not source.
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", "venv", ".tox",
                ".nox", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                ".ipynb_checkpoints"}
#: Files above this size enter the source digest by size and mtime, not content (a data folder
#: inside the project must not make every plan read gigabytes).
CONTENT_LIMIT = 1 << 20
#: 1980-01-01, the earliest a zip can hold: wheels built twice from one source agree more often.
SOURCE_DATE_EPOCH = "315532800"
#: Lines of a failed build's log the error shows.
LOG_TAIL = 25


class LocalPackageError(RequirementError):
    """A local package could not be built into a wheel (``log``: the frontend's output), or
    its source is gone."""

    def __init__(self, message: str, *, log: str = "") -> None:
        self.log = log
        super().__init__(message)


@dataclass(frozen=True)
class LocalWheel:
    """One built wheel: ``relative`` is ``<key>/<file>`` under :data:`CONTEXT_DIR`."""

    name: str
    relative: str
    data: bytes

    @property
    def requirement(self) -> str:
        return f"{self.name} @ {IMAGE_URL}{self.relative}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/jupyter_mlbox/wheels`` (``~/.cache/…``): built wheels by source key."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "jupyter_mlbox" / "wheels"


def wheel_relative(requirement: str) -> str | None:
    """``<key>/<file>`` of a requirement line that installs a shipped wheel, else None."""
    _, sep, url = requirement.partition(" @ ")
    url = url.split(";", 1)[0].split()[0] if sep and url.strip() else ""
    return url[len(IMAGE_URL):] if url.startswith(IMAGE_URL) else None


def cached_wheel(relative: str) -> bytes:
    """The bytes of a wheel :func:`local_wheel` built (the plan of this process made it)."""
    path = cache_dir() / relative
    try:
        return path.read_bytes()
    except OSError:
        raise LocalPackageError(f"the wheel {relative} is no longer in {cache_dir()}; plan "
                                f"the notebook again (it rebuilds it)") from None


def source_digest(path: Path) -> str:
    """A digest of a source folder (relative names; content, or size and mtime for files over
    :data:`CONTENT_LIMIT`; :data:`SKIPPED_DIRS` and ``*.egg-info`` left out), or of a file."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            file = Path(folder, name)
            if file.suffix in {".pyc", ".pyo"} or not file.is_file():
                continue
            stat = file.stat()
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            if stat.st_size > CONTENT_LIMIT:
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
            else:
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _frontend(source: Path, out_dir: Path) -> list[str]:
    """``uv build --wheel`` when uv is here (this venv's, or on PATH), else ``pip wheel``."""
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except (ImportError, FileNotFoundError):
        uv = shutil.which("uv")
    if uv:
        return [uv, "build", "--wheel", "--out-dir", str(out_dir), "--no-progress", str(source)]
    return [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
            "--wheel-dir", str(out_dir), str(source)]


def _missing_source(name: str, provenance: Provenance) -> LocalPackageError:
    return LocalPackageError(
        f"{name} was installed into this kernel from {provenance.path} ({provenance.kind}), "
        f"which no longer exists, so the image cannot be given the same package. Reinstall it "
        f"from where its source is now (pip install -e NEW_PATH), uninstall it (pip uninstall "
        f"{name}), or leave it out of the image (--exclude {name})")


def local_wheel(name: str, provenance: Provenance, *, timeout: float = 600) -> LocalWheel:
    """The wheel of the local distribution ``name`` (from the cache when its source is
    unchanged, else built now). LocalPackageError names the package, the path and the log's
    tail when the source is gone or the build fails.

    Two keys: the source tree's digest finds the wheel without building (an unchanged tree),
    and the wheel's own content (its members, not the zip's timestamps) names where it is
    shipped, so a tree that changed only outside the package (a notebook, a lock in the same
    project) builds a wheel of the same content and ships the bytes shipped before: same tag."""
    name = canonicalize_name(name)
    source = provenance.path
    if source is None or not source.exists():
        raise _missing_source(name, provenance)
    if provenance.subdirectory and source.is_dir():
        source = source / provenance.subdirectory
    tree = cache_dir() / "trees" / f"{name}-{source_digest(source)[:32]}"
    try:
        relative = tree.read_text(encoding="utf-8").strip()
        return LocalWheel(name, relative, (cache_dir() / relative).read_bytes())
    except OSError:
        pass  # not built from this tree yet (or the cache was cleared)
    if provenance.kind == ARCHIVE and source.suffix == ".whl":  # already a wheel: ship it
        built = source
    else:
        built = _build(name, source, provenance, timeout)
    try:
        folder = cache_dir() / f"{name}-{content_digest(built)[:16]}"
        if not (folder / built.name).is_file():  # else: these contents shipped before, as those bytes
            _write_atomically(folder / built.name, built.read_bytes())
        relative = f"{folder.name}/{built.name}"
        _write_atomically(tree, relative.encode())
    finally:
        if built != source:
            shutil.rmtree(built.parent, ignore_errors=True)
    return LocalWheel(name, relative, (cache_dir() / relative).read_bytes())


def content_digest(wheel: Path) -> str:
    """A digest of a wheel's members (names and bytes), blind to zip timestamps and order."""
    digest = hashlib.sha256(wheel.name.encode())
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in sorted(archive.namelist()):
                digest.update(member.encode() + b"\0"
                              + hashlib.sha256(archive.read(member)).digest())
    except (OSError, zipfile.BadZipFile) as err:
        raise LocalPackageError(f"{wheel} is not a readable wheel ({err})") from None
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (another plan of the same package) sees all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=".part-", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(scratch, path)


def _build(name: str, source: Path, provenance: Provenance, timeout: float) -> Path:
    out_dir = Path(tempfile.mkdtemp(prefix="mlbox-wheel-"))
    command = _frontend(source, out_dir)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
        log, failed = done.stdout + done.stderr, done.returncode != 0
    except subprocess.TimeoutExpired as err:
        log, failed = f"{err.stdout or ''}{err.stderr or ''}\n(stopped after {timeout:.0f} s)", True
    except OSError as err:
        log, failed = str(err), True
    wheels = sorted(out_dir.glob("*.whl"))
    if failed or not wheels:
        shutil.rmtree(out_dir, ignore_errors=True)
        tail = "\n".join(log.strip().splitlines()[-LOG_TAIL:])
        raise LocalPackageError(
            f"{name} is installed in this kernel from {source} ({provenance.kind}), and building "
            f"a wheel of it for the image failed ({' '.join(command[:3])} …):\n{tail}\n"
            f"Fix its build (try: {Path(command[0]).name} {' '.join(command[1:3])} {source}), "
            f"or leave it out of the image with --exclude {name}", log=log)
    return wheels[0]


def wheel_dependencies(data: bytes, python_version: str) -> list[str]:
    """The canonical names a wheel (its bytes) requires in the image — Linux, CPython
    ``python_version`` — without its extras' requirements."""
    import io
    from email.parser import Parser

    from .distributions import required_on_image

    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        name = next((n for n in wheel.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if name is None:
            return []
        metadata = Parser().parsestr(wheel.read(name).decode("utf-8", "replace"))
    return sorted(set(required_on_image(metadata.get_all("Requires-Dist"), python_version)))


def with_wheel_hashes(lock_text: str, wheels: dict[str, bytes]) -> str:
    """A lock's text for ``--require-hashes`` with the shipped wheels: its entries for earlier
    builds of them (stale paths, stale hashes) dropped, the current ones added with the sha256
    of the bytes shipped. The lock itself never holds them: an edit to the source would make
    it wrong."""
    kept: list[str] = []
    skipping = False
    for line in lock_text.splitlines():
        if skipping and line.startswith((" ", "\t")):
            skipping = line.rstrip().endswith("\\")
            continue
        skipping = False
        if IMAGE_URL in line and not line.lstrip().startswith("#"):
            skipping = line.rstrip().endswith("\\")
            continue
        kept.append(line)
    names = {relative: relative.split("/", 1)[0].rsplit("-", 1)[0] for relative in wheels}
    for relative, data in sorted(wheels.items()):
        kept.append(f"{names[relative]} @ {IMAGE_URL}{relative} \\\n"
                    f"    --hash=sha256:{hashlib.sha256(data).hexdigest()}")
    return "\n".join(kept) + "\n"


@dataclass(frozen=True)
class DirectPin:
    """The requirement line for a distribution the kernel did not get from an index:
    ``origin`` "local" (a shipped wheel, ``wheel``), "vcs" (``name @ git+URL@COMMIT``) or
    "url" (a remote archive); ``where`` says where it came from, for the plan."""

    requirement: str
    origin: str
    where: str
    wheel: LocalWheel | None = None


def direct_pin(dist_name: str) -> DirectPin | None:
    """How the image gets the installed distribution ``dist_name`` when an index must not be
    asked for it by name (None: it came from an index). Builds local ones (see above)."""
    from .provenance import URL, VCS, provenance_of, vcs_requirement

    provenance = provenance_of(dist_name)
    if provenance.is_local:
        wheel = local_wheel(dist_name, provenance)
        return DirectPin(wheel.requirement, "local",
                         f"local build of {provenance.describe()}", wheel)
    if provenance.kind == VCS and provenance.vcs == "git" and provenance.commit:
        # built here at its commit: the image needs neither git nor a way to the repository
        # (a host path, a private server only this host's credentials reach)
        wheel = _git_wheel(dist_name, provenance)
        return DirectPin(wheel.requirement, "local",
                         f"local build of {provenance.describe()}", wheel)
    if provenance.kind == VCS:
        return DirectPin(vcs_requirement(dist_name, provenance), "vcs", provenance.describe())
    if provenance.kind == URL:
        return DirectPin(f"{canonicalize_name(dist_name)} @ {provenance.url}", "url",
                         provenance.describe())
    return None


def _git_wheel(name: str, provenance: Provenance, *, timeout: float = 300) -> LocalWheel:
    """A git install (a repository on this host or a server): its installed commit, fetched
    into a scratch folder and built like a local folder. A commit built before comes from the
    cache without asking the server (a commit does not change)."""
    from dataclasses import replace

    from .provenance import DIRECTORY, file_url_path

    name = canonicalize_name(name)
    url = provenance.url or ""
    pinned = cache_dir() / "commits" / hashlib.sha256(
        f"{name}\0{url}\0{provenance.commit}\0{provenance.subdirectory or ''}".encode()
    ).hexdigest()[:32]
    try:
        relative = pinned.read_text(encoding="utf-8").strip()
        return LocalWheel(name, relative, (cache_dir() / relative).read_bytes())
    except OSError:
        pass
    source = url
    if url.startswith("file:"):
        repo = file_url_path(url)
        if repo is None or not repo.exists():
            raise _missing_source(name, replace(provenance, path=repo))
        source = str(repo)
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail, never wait on a prompt
    with tempfile.TemporaryDirectory(prefix="mlbox-vcs-") as scratch:
        checkout = Path(scratch, "src")
        for command in (["git", "clone", "--quiet", "--no-checkout", source, str(checkout)],
                        ["git", "-C", str(checkout), "checkout", "--quiet",
                         provenance.commit]):
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL, env=environment)
            except (OSError, subprocess.TimeoutExpired) as err:
                done = subprocess.CompletedProcess(command, 1, "", str(err))
            if done.returncode != 0:
                raise LocalPackageError(
                    f"{name} is installed in this kernel from git {url} at commit "
                    f"{provenance.commit}; this host could not fetch that commit to build it "
                    f"for the image:\n{done.stderr.strip()[-2000:]}\nCheck that `git clone "
                    f"{source}` works here (the URL, your access to it), reinstall {name} from "
                    f"where it is now, or leave it out (--exclude {name})", log=done.stderr)
        wheel = local_wheel(name, replace(provenance, kind=DIRECTORY, path=checkout))
    _write_atomically(pinned, wheel.relative.encode())
    return wheel

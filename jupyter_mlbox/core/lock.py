"""A lock: the notebook's whole dependency closure, pinned to the kernel's versions, with hashes.

Inference pins what the notebook imports; everything those pull in would otherwise float to
the index's newest release, so the container would not be the kernel's environment and a
rebuild next year would differ. ``uv pip compile`` resolves the closure for the image's
platform and Python, with every distribution the kernel has installed as a constraint, so each
transitive distribution gets the kernel's version. The result is written beside the notebook as
``<stem>.mlbox.lock`` (pip requirements format with hashes): builds install exactly it
(``--require-hashes``), and its content is part of the image's tag.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import RequirementError
from .distributions import PYTORCH_CPU_INDEX, is_pytorch_cpu_pin
from .local_wheels import IMAGE_URL, cache_dir
from .pip_settings import PipSettings

LOCK_SUFFIX = ".mlbox.lock"
HEADER = "# jupyter_mlbox lock for {notebook}: the closure of its requirements, pinned to the\n" \
         "# versions of the kernel that ran it. Made by `jupyter mlbox lock`; refresh with\n" \
         "# --relock. Direct requirements: {direct}\n"


class LockError(RequirementError):
    """The closure could not be resolved (or a lock could not be read)."""


@dataclass(frozen=True)
class Lock:
    path: Path
    text: str

    def names(self) -> set[str]:
        """The distributions it pins (canonical names)."""
        names = set()
        for line in self.text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "-", "\\")) or line.startswith("--hash"):
                continue
            try:
                names.add(canonicalize_name(Requirement(line.rstrip("\\ ").strip()).name))
            except InvalidRequirement:
                continue
        return names

    def missing(self, requirements: Iterable[str]) -> list[str]:
        """Direct requirements the lock does not cover (it is stale for them)."""
        have = self.names()
        return sorted({canonicalize_name(Requirement(r).name) for r in requirements} - have)


def write_lock(notebook: Path, requirements: Iterable[str], *, python_version: str,
               pip: PipSettings) -> Lock:
    """Resolve and write ``<stem>.mlbox.lock`` beside the notebook (atomically)."""
    text = compile_lock(requirements, notebook_name=notebook.name,
                        python_version=python_version, pip=pip)
    path = lock_path(notebook)
    fd, scratch = tempfile.mkstemp(prefix=".mlbox-lock-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(scratch, path)
    return Lock(path, text)


def lock_path(notebook: Path) -> Path:
    name = notebook.name[:-len(".ipynb")] if notebook.name.endswith(".ipynb") else notebook.name
    return notebook.with_name(name + LOCK_SUFFIX)


def read_lock(notebook: Path) -> Lock | None:
    path = lock_path(notebook)
    if not path.is_file():
        return None
    try:
        return Lock(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise LockError(f"{path}: cannot be read ({err}); delete it or run with --relock") \
            from err


def kernel_constraints() -> list[str]:
    """``name==version`` for every distribution this kernel has (local labels such as ``+cpu``
    dropped: the index only knows the public version)."""
    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        try:
            version = Version(dist.version)
        except (InvalidVersion, TypeError):
            continue
        if name and not dist.read_text("direct_url.json"):  # a local/VCS build: not by name
            pins[canonicalize_name(name)] = f"{canonicalize_name(name)}=={version.public}"
    pins.pop("jupyter-mlbox", None)
    return sorted(pins.values())


def image_platform() -> str:
    """uv's name for the Linux platform images run on (the host's architecture)."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{arch}-unknown-linux-gnu"


def _uv() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise LockError("locking needs uv: pip install uv") from None


def compile_lock(requirements: Iterable[str], *, notebook_name: str, python_version: str,
                 pip: PipSettings, constraints: Iterable[str] | None = None,
                 timeout: float = 300) -> str:
    """The lock's text: ``requirements`` and their closure, resolved by uv for Linux and
    ``python_version``, constrained to ``constraints`` (default: the kernel's versions)."""
    requirements = list(requirements)
    constraints = kernel_constraints() if constraints is None else list(constraints)
    with tempfile.TemporaryDirectory(prefix="mlbox-lock-") as scratch:
        wanted = Path(scratch, "requirements.in")
        # shipped local wheels (local_wheels.py): uv reads them where the host cached them
        host_wheels = cache_dir().as_uri() + "/"
        wanted.write_text("".join(f"{r.replace(IMAGE_URL, host_wheels)}\n"
                                  for r in requirements))
        pinned = Path(scratch, "constraints.txt")
        pinned.write_text("".join(f"{c}\n" for c in constraints))
        command = [_uv(), "pip", "compile", str(wanted), "-c", str(pinned),
                   "--python-version", python_version, "--python-platform", image_platform(),
                   "--generate-hashes", "--no-header", "--no-annotate", "--quiet",
                   "--no-progress"]
        if any(is_pytorch_cpu_pin(r) for r in requirements):  # the kernel's +cpu torch
            command += ["--extra-index-url", PYTORCH_CPU_INDEX,
                        "--index-strategy", "unsafe-best-match"]
        if pip.index_url:
            command += ["--index-url", pip.index_url]
        for url in pip.extra_index_urls:
            command += ["--extra-index-url", url]
        env = dict(os.environ)
        if pip.cert_file:
            env["SSL_CERT_FILE"] = str(pip.cert_file)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LockError(f"resolving the lock took over {timeout:.0f} s (is the package "
                            f"index reachable?)") from None
    if done.returncode != 0:
        reason = "\n".join(line for line in done.stderr.strip().splitlines()[-12:])
        raise LockError(f"the requirements of {notebook_name} could not be locked to this "
                        f"kernel's versions for Linux / Python {python_version}:\n{reason}")
    direct = ", ".join(requirements)
    return HEADER.format(notebook=notebook_name, direct=direct) \
        + done.stdout.replace(host_wheels, IMAGE_URL)


def python_of(base_image: str) -> str:
    """The Python ``major.minor`` of an official-style base image name (python:3.11-slim), else
    the kernel's."""
    tag = base_image.rsplit(":", 1)[-1] if ":" in base_image.rsplit("/", 1)[-1] else ""
    parts = tag.split("-")[0].split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def locked(notebook: Path, requirements: list[str], *, python_version: str, pip: PipSettings,
           relock: bool = False, local_wheels: Mapping[str, bytes] | None = None
           ) -> Lock | None:
    """The lock a build of ``notebook`` uses: made anew with ``relock``, else the one beside
    it (None when there is none). A lock that lacks a requirement the notebook now has, or a
    dependency one of ``local_wheels`` (the local packages as built now: an edit may add one)
    has, is stale: LockError says which and how to refresh it."""
    if relock:
        return write_lock(notebook, requirements, python_version=python_version, pip=pip)
    lock = read_lock(notebook)
    if lock is None:
        return None
    fix = (f"refresh it with --relock (or `jupyter mlbox lock {notebook.name}`), or delete it")
    missing = lock.missing(requirements)
    if missing:
        raise LockError(f"{lock.path.name} is stale: it lacks {', '.join(missing)}, which "
                        f"{notebook.name} needs now; {fix}")
    from .local_wheels import wheel_dependencies

    have = lock.names()
    for relative, data in sorted((local_wheels or {}).items()):
        new = [name for name in wheel_dependencies(data, python_version) if name not in have]
        if new:
            package = relative.split("/", 1)[0].rsplit("-", 1)[0]
            raise LockError(f"{lock.path.name} is stale: the local package {package} now "
                            f"requires {', '.join(new)}, which it lacks; {fix}")
    return lock

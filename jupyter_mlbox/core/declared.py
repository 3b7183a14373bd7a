"""The project's declared environment: the files a project already states its needs in.

A project that says what it needs — ``requirements.txt``, ``pyproject.toml`` ``[project]
dependencies``, a ``uv.lock``, an ``environment.yml`` — means exactly that, so a declared file
replaces inference (what the notebook imports that no requirement provides is a warning). The
Python version comes from ``.python-version``, ``runtime.txt`` or ``environment.yml``'s
``python=`` and picks the base image ``python:X.Y-slim``.

Where: the notebook's folder first, then each folder above it up to the project root
(project.project_root); the nearest folder with a file wins, and within one folder
requirements.txt > uv.lock (with its pyproject.toml) > pyproject.toml > environment.yml.
Precedence overall: explicit flags (--pip, -r, --base) > the lock beside the notebook
(.mlbox.lock) > declared files > inference. A pyproject.toml with ``[tool.mlbox] infer = true``
(a library's metadata, not its notebooks' environment) is not a declaration.

Pure but for ``uv export --frozen`` of a uv.lock (a local command; no network).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import RequirementError
from .distributions import (_packages_distributions, installed_closure, installed_version,
                            is_local_module, pipreqs_mapping)
from .inference import classified_imports, read_requirements_file
from .notebook import parse_cells

#: Per folder, the first of these that declares requirements wins.
REQUIREMENT_FILES = ("requirements.txt", "uv.lock", "pyproject.toml", "environment.yml",
                     "environment.yaml")
#: Conda dependencies that are the environment itself, not packages for pip.
CONDA_BUILTINS = {"python", "pip"}


class DeclaredError(RequirementError):
    """A declared file cannot be used as it is (unreadable, conda-only packages, stale lock)."""


@dataclass(frozen=True)
class Declared:
    """What the project's files declare. ``file`` is None when no file declares requirements
    (then inference decides); ``lock_text`` is a uv.lock's export (pip format, hashes)."""

    file: Path | None = None
    kind: str = ""
    requirements: tuple[str, ...] = ()
    lock_text: str | None = None
    python: str | None = None
    python_file: Path | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def label(self) -> str:
        """``pyproject.toml [project] dependencies`` etc.: how the report names the file."""
        return {"pyproject.toml": "pyproject.toml [project] dependencies",
                "uv.lock": "uv.lock (exported, with hashes)",
                "environment.yml": f"{self.file.name if self.file else ''} pip: section",
                }.get(self.kind, self.kind)

    def as_dict(self) -> dict:
        return {"file": str(self.file) if self.file else None, "kind": self.kind,
                "label": self.label() if self.file else None,
                "requirements": list(self.requirements), "locked": self.lock_text is not None,
                "python": self.python,
                "python_file": str(self.python_file) if self.python_file else None}


def search_folders(notebook_dir: Path, root: Path) -> list[Path]:
    """The notebook's folder, then each one above it up to ``root`` (nearest first)."""
    notebook_dir, root = notebook_dir.resolve(), root.resolve()
    folders = [notebook_dir]
    if root != notebook_dir and root in notebook_dir.parents:
        for folder in notebook_dir.parents:
            folders.append(folder)
            if folder == root:
                break
    return folders


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclaredError(f"{path}: cannot be read ({err})") from None


def read_pyproject(path: Path) -> dict:
    try:
        return tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as err:
        raise DeclaredError(f"{path}: not valid TOML ({err}); fix it, or pass -r FILE") \
            from None


def pyproject_dependencies(data: dict) -> list[str] | None:
    """``[project] dependencies`` (None: the file declares none, or opts out with
    ``[tool.mlbox] infer = true``)."""
    if data.get("tool", {}).get("mlbox", {}).get("infer") is True:
        return None
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        return None
    return [str(d) for d in project["dependencies"]]


def python_version_of(text: str) -> str | None:
    """``major.minor`` in ``3.10``, ``3.10.12``, ``cpython-3.10``, ``python-3.10.4``,
    ``python=3.10`` or ``python==3.10.*``; None otherwise (a range says no one version)."""
    match = re.fullmatch(r"\s*(?:c?python)?[-=]{0,2}\s*(3)\.(\d+)(?:\.[\d*]+)*\s*", text,
                         flags=re.IGNORECASE)
    return f"{match[1]}.{match[2]}" if match else None


def _first_line(path: Path) -> str:
    return next((line.strip() for line in _read_text(path).splitlines()
                 if line.strip() and not line.lstrip().startswith("#")), "")


# ---------------------------------------------------------------------------------------------
# environment.yml (a small reader: conda's files are a list of strings and one pip: list)
# ---------------------------------------------------------------------------------------------

def read_environment_yml(path: Path) -> tuple[list[str], list[str], str | None]:
    """``(conda dependencies, pip: requirements, python version)`` of an environment.yml."""
    conda, pip, python = [], [], None
    section, pip_indent = None, None
    for raw in _read_text(path).splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == 0 and not text.startswith("-"):  # a key; its list may sit at indent 0
            section, pip_indent = text.split(":", 1)[0].strip(), None
            continue
        if section != "dependencies" or not text.startswith("-"):
            continue
        item = text[1:].strip().strip("'\"")
        if pip_indent is not None and indent > pip_indent:
            pip.append(item)
            continue
        pip_indent = None
        if item.rstrip(":").strip() == "pip" and item.endswith(":"):
            pip_indent = indent
            continue
        name = re.split(r"[=<>!~\s]", item.split("::")[-1], maxsplit=1)[0]
        if name.lower() == "python":
            python = python_version_of(item.split("::")[-1])
        elif name.lower() not in CONDA_BUILTINS:
            conda.append(item)
    return conda, pip, python


def conda_to_pip(item: str) -> str:
    """A conda spec as pip's: ``numpy=1.26`` → ``numpy==1.26.*``, ``numpy=1.26.4=py311_0`` →
    ``numpy==1.26.4``, ``conda-forge::scipy>=1.10`` → ``scipy>=1.10``."""
    spec = item.split("::")[-1].replace(" ", "")
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([^=<>!~,]+)(?:=.*)?", spec)
    if match:
        version = match[2]
        return f"{match[1]}=={version}" if version.endswith("*") or item.count("=") >= 2 \
            else f"{match[1]}=={version}.*"
    return spec


def environment_requirements(path: Path, exclude: Iterable[str] = ()) -> list[str]:
    """The pip requirements of an environment.yml: its ``pip:`` section, and each conda
    dependency that this kernel has installed under the same name (so an index serves it);
    any other conda dependency stops with an error that names it and the fix."""
    conda, pip, _ = read_environment_yml(path)
    requirements, conda_only = list(pip), []
    excluded = {canonicalize_name(n) for n in exclude}
    for item in conda:
        spec = conda_to_pip(item)
        try:
            name = Requirement(spec).name
        except InvalidRequirement:
            conda_only.append(item)
            continue
        if canonicalize_name(name) in excluded:
            continue
        if installed_version(name) is None:
            conda_only.append(item)
        else:
            requirements.append(spec)
    if conda_only:
        one = len(conda_only) == 1
        first = re.split(r"[=<>!~\s]", conda_only[0].split("::")[-1], maxsplit=1)[0]
        raise DeclaredError(
            f"{path}: {', '.join(conda_only)} "
            f"{'is a conda package' if one else 'are conda packages'}"
            f" this kernel does not have from an index, and conda channels are not reachable "
            f"by this tool's builds: add {'it' if one else 'them'} under `pip:` with the PyPI "
            f"name, or --exclude {first} (or pass -r FILE)")
    return requirements


# ---------------------------------------------------------------------------------------------
# uv.lock
# ---------------------------------------------------------------------------------------------

def export_uv_lock(folder: Path, *, timeout: float = 120) -> tuple[str, list[str]]:
    """``uv export --frozen`` of ``folder``'s uv.lock: the locked closure for every platform
    (markers decide in the image), with hashes; the project itself and local paths left out
    (they are no index's). Returns ``(text, warnings)``."""
    from .lock import _uv

    command = [_uv(), "export", "--frozen", "--format", "requirements-txt", "--no-header",
               "--no-annotate", "--no-emit-project", "--no-emit-workspace", "--quiet",
               "--no-progress", "--directory", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeclaredError(f"{folder / 'uv.lock'}: `uv export` took over {timeout:.0f} s") \
            from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise DeclaredError(f"{folder / 'uv.lock'} could not be exported (`uv export "
                            f"--frozen`):\n{tail}\nrun `uv lock` there, or pass -r FILE")
    kept, warnings = [], []
    for block in _blocks(done.stdout):
        head = block[0].strip().rstrip("\\").strip()
        if head.startswith(("-e ", ".", "/", "file:")):
            warnings.append(f"uv.lock: {head} is a local path, not installed from the lock "
                            f"(a local package the kernel has installed is built on the host)")
            continue
        kept += block
    return "".join(line + "\n" for line in kept), warnings


def _blocks(text: str) -> list[list[str]]:
    """Requirement lines with their ``--hash`` continuation lines; comments dropped."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")) and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def block_name(block: list[str]) -> str | None:
    try:
        return canonicalize_name(Requirement(block[0].rstrip("\\ ").split(";")[0]).name)
    except InvalidRequirement:
        return None


def locked_pins(lock_text: str) -> dict[str, str]:
    """name → ``name==version`` of a lock's exact pins."""
    pins = {}
    for block in _blocks(lock_text):
        head = block[0].rstrip("\\ ").split(";")[0].strip()
        name = block_name(block)
        if name and "==" in head:
            pins[name] = f"{name}=={head.split('==', 1)[1].strip()}"
    return pins


def merged_lock(lock_text: str, more_text: str) -> str:
    """``lock_text`` and the blocks of ``more_text`` for distributions it lacks."""
    have = {block_name(b) for b in _blocks(lock_text)}
    extra = [line for block in _blocks(more_text) if block_name(block) not in have
             for line in block]
    return lock_text + "".join(line + "\n" for line in extra)


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------

def _requirements_in(folder: Path, exclude: Iterable[str] = ()) -> Declared | None:
    """The declaration of one folder, by REQUIREMENT_FILES order; None when it has none."""
    requirements_txt = folder / "requirements.txt"
    if requirements_txt.is_file():
        lines, warnings = read_requirements_file(requirements_txt)
        return Declared(requirements_txt, "requirements.txt", tuple(lines),
                        warnings=tuple(warnings))
    pyproject = folder / "pyproject.toml"
    dependencies = pyproject_dependencies(read_pyproject(pyproject)) \
        if pyproject.is_file() else None
    if dependencies is not None and (folder / "uv.lock").is_file():
        text, warnings = export_uv_lock(folder)
        return Declared(folder / "uv.lock", "uv.lock", tuple(dependencies), lock_text=text,
                        warnings=tuple(warnings))
    if dependencies is not None:
        return Declared(pyproject, "pyproject.toml", tuple(dependencies))
    for name in ("environment.yml", "environment.yaml"):
        if (folder / name).is_file():
            return Declared(folder / name, "environment.yml",
                            tuple(environment_requirements(folder / name, exclude)))
    return None


def _python_in(folder: Path, notes: list[str]) -> tuple[str, Path] | None:
    """The Python version one folder declares; a file that names none (pyenv's ``system``,
    a virtualenv's name) is noted in ``notes`` and skipped."""
    for name in (".python-version", "runtime.txt"):
        path = folder / name
        if path.is_file():
            version = python_version_of(_first_line(path))
            if version is None:
                notes.append(f"{path}: {_first_line(path)!r} names no Python version, so it "
                             f"does not choose the image's (write e.g. 3.11, or pass --base)")
                continue
            return version, path
    for name in ("environment.yml", "environment.yaml"):
        if (folder / name).is_file():
            version = read_environment_yml(folder / name)[2]
            if version is not None:
                return version, folder / name
    return None


def discover(notebook_dir: Path, root: Path, *, requirements: bool = True,
             python: bool = True, exclude: Iterable[str] = ()) -> Declared:
    """The declared environment for a notebook in ``notebook_dir`` of the project at ``root``;
    ``requirements`` / ``python`` False skip what an explicit flag (-r, --base) decides."""
    found: Declared | None = None
    version: tuple[str, Path] | None = None
    notes: list[str] = []
    for folder in search_folders(notebook_dir, root):
        if requirements and found is None:
            found = _requirements_in(folder, exclude)
        if python and version is None:
            version = _python_in(folder, notes)
    found = found or Declared()
    warnings = found.warnings + tuple(notes)
    if version is None:
        return Declared(found.file, found.kind, found.requirements, found.lock_text,
                        warnings=warnings)
    kernel = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version[0] != kernel:
        # The kernel that runs the notebook decides: its packages are what the image pins (a
        # binder-era runtime.txt's 3.7 cannot install this kernel's ipykernel), and pickles
        # pass between the two. The declared version is one flag away.
        warnings += (f"{version[1].name} names Python {version[0]}, this kernel runs {kernel}: "
                     f"the image uses {kernel}, whose packages this kernel pins; --base "
                     f"python:{version[0]}-slim uses {version[0]}",)
        return Declared(found.file, found.kind, found.requirements, found.lock_text,
                        warnings=warnings)
    return Declared(found.file, found.kind, found.requirements, found.lock_text, version[0],
                    version[1], warnings)


# ---------------------------------------------------------------------------------------------
# what a file does not provide
# ---------------------------------------------------------------------------------------------

def unprovided_imports(sources: Iterable[str], requirements: Iterable[str], *,
                       search_dirs: Iterable[Path] = (), python_version: str | None = None
                       ) -> list[str]:
    """Top-level modules the cells import (outside try/except ImportError) that no requirement
    provides: not the standard library, not a local module, and not in the kernel's closure of
    the requirements (nor named like one, for what the kernel lacks)."""
    python_version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    names = set()
    for text in requirements:
        try:
            names.add(canonicalize_name(Requirement(text.split(";")[0].strip()).name))
        except InvalidRequirement:
            continue
    provided = names | set(installed_closure(names, python_version))
    installed, mapping = _packages_distributions(), pipreqs_mapping()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    search_dirs = [Path(d) for d in search_dirs if d is not None]
    missing = set()
    for cell in parse_cells(list(sources)):
        if cell.tree is None:
            continue
        for module, guarded in classified_imports(cell.tree).items():
            top = module.split(".")[0]
            if guarded or top in stdlib or top.startswith("_") or top in missing \
                    or any(is_local_module(top, d) is not None for d in search_dirs):
                continue
            candidates = {canonicalize_name(d) for d in installed.get(top, [])} \
                or {canonicalize_name(mapping.get(top, top))}
            if not candidates & provided:
                missing.add(top)
    return sorted(missing)


def settle_file_requirements(inference, sources: Iterable[str], label: str, *,
                             search_dirs: Iterable[Path] = (), locked: Iterable[str] = (),
                             exclude: Iterable[str] = ()) -> list[str]:
    """After a file replaced inference (``inference``, changed in place): a requirement that
    names one of the kernel's local or VCS installs becomes its local build (never the index's
    package of that name); an import no requirement provides that such an install does is
    added as one; the warnings for the imports still unprovided are returned."""
    from .distributions import distribution_for
    from .inference import PinnedRequirement
    from .local_wheels import direct_pin

    def pinned(direct, imports=()):
        if direct.wheel is not None:
            inference.local_wheels[direct.wheel.relative] = direct.wheel.data
        return PinnedRequirement(direct.requirement, direct.origin, imports, where=direct.where)

    settled = []
    for req in inference.requirements:
        direct = direct_pin(req.name) if req.origin == "file" else None
        settled.append(req if direct is None else pinned(direct, req.imports))
    excluded = {canonicalize_name(n) for n in exclude}
    missing = unprovided_imports(sources, [r.requirement for r in settled] + list(locked),
                                 search_dirs=search_dirs)
    installed, still = _packages_distributions(), []
    for top in missing:
        dist = distribution_for(top, installed[top]) if installed.get(top) else None
        direct = None if dist is None or canonicalize_name(dist) in excluded \
            else direct_pin(dist)
        if direct is None:
            still.append(top)
        else:
            settled.append(pinned(direct, (top,)))
    inference.requirements = sorted(settled, key=lambda r: r.name)
    return unprovided_warnings(still, label)


def unprovided_warnings(missing: list[str], label: str) -> list[str]:
    """The warning for imports that ``label``'s requirements do not provide (a file replaces
    inference, so they would fail in the container)."""
    if not missing:
        return []
    return [f"{', '.join(missing)}: imported by the notebook but provided by no requirement of "
            f"{label} (a declared file replaces inference); add "
            f"{'it' if len(missing) == 1 else 'them'} there, or --pip NAME"]


# ---------------------------------------------------------------------------------------------
# into the plan
# ---------------------------------------------------------------------------------------------

def base_image_for(declared: Declared | None) -> str | None:
    """``python:X.Y-slim`` for a declared Python version, else None (the default decides)."""
    return f"python:{declared.python}-slim" if declared and declared.python else None


def inference_input(declared: Declared | None, root: Path | None = None
                    ) -> tuple[Path | None, tuple[str, tuple[str, ...]] | None]:
    """``(requirements_file, (label, lines))`` for infer_requirements: a requirements.txt is
    read as a requirements file; the others give their lines."""
    if declared is None or declared.file is None:
        return None, None
    if declared.kind == "requirements.txt":
        return declared.file, None
    def where(path: Path) -> str:
        if root is not None and root.resolve() in path.resolve().parents:
            return path.resolve().relative_to(root.resolve()).as_posix()
        return path.name

    if declared.kind == "uv.lock":
        label = (f"{where(declared.file.with_name('pyproject.toml'))} [project] dependencies, "
                 f"locked by {where(declared.file)}")
    else:
        label = declared.label().replace(declared.file.name, where(declared.file), 1)
    return None, (label, declared.requirements)


def lock_for(declared: Declared | None, requirements: list[str], *, python_version: str,
             pip) -> str | None:
    """The lock text a build installs from a declared uv.lock: its export, and — resolved by
    uv with the locked versions as constraints — whatever else the image needs that it lacks
    (the kernel stack that runs the notebook, --pip). None without a uv.lock."""
    if declared is None or declared.lock_text is None:
        return None
    from .lock import compile_lock, kernel_constraints

    pins = locked_pins(declared.lock_text)
    missing = []
    for text in requirements:
        try:
            name = canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue
        if name not in pins:
            missing.append(text)
    if not missing:
        return declared.lock_text
    constraints = {c.split("==")[0]: c for c in kernel_constraints()}
    constraints.update(pins)
    key = hashlib.sha256("\n".join([declared.lock_text, *missing, python_version,
                                    *sorted(constraints.values())]).encode()).hexdigest()
    cached = _cache_dir() / f"{key}.txt"
    if cached.is_file():
        more = cached.read_text(encoding="utf-8")
    else:
        more = compile_lock(missing, notebook_name=declared.file.name,
                            python_version=python_version, pip=pip,
                            constraints=sorted(constraints.values()))
        cached.parent.mkdir(parents=True, exist_ok=True)
        scratch = cached.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(more, encoding="utf-8")
        os.replace(scratch, cached)
    return merged_lock(declared.lock_text, more)


def _cache_dir() -> Path:
    from .local_wheels import cache_dir

    return cache_dir().parent / "declared-locks"


def locked_names(declared: Declared | None) -> list[str]:
    """The names a declared uv.lock pins (they provide imports too)."""
    if declared is None or declared.lock_text is None:
        return []
    return list(locked_pins(declared.lock_text))

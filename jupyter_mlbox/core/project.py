"""The project around a notebook: which files travel into the container, and where.

The container's work directory mirrors the project: its root is the git top level above the
notebook (else the notebook's folder; ``--context DIR`` chooses it), the notebook runs from its
own folder at the same relative place, and every file the code names by a relative path —
``pd.read_csv('../data/x.csv')``, a helper module in a folder the notebook puts on
``sys.path`` — goes to the same relative place. ``.dockerignore`` / ``.mlboxignore`` patterns
at the root are honoured, ``.git`` never travels, and a size cap stops a data folder from
being copied by accident (the error lists the largest files).

Pure: reads the file system and syntax trees, nothing else.
"""
from __future__ import annotations

import ast
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..errors import MlboxError, OptionError
from .distributions import is_local_module
from .implied import magics
from .inference import imported_modules
from .notebook import parse_cells

#: Local files travel along up to this total size.
MAX_PROJECT_FILES_BYTES = 200 * 1024 * 1024
IGNORE_FILES = (".dockerignore", ".mlboxignore")
NEVER_SHIPPED = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"}
#: Folders and file names that hold credentials. Found by walking a folder the code names
#: (``x = "secrets"``), they stay here, with a warning: with a remote daemon they would leave
#: the machine. A file is still shipped when the code names exactly it (``open("certs/a.pem")``
#: or a file the traced kernel read): the notebook reads it, and the user wrote its path.
SECRET_FOLDERS = {".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker"}
SECRET_FILES = ("id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12",
                "*.pfx", ".env", ".env.*", ".netrc", ".pypirc", ".git-credentials",
                ".npmrc", "*.kdbx")


def looks_secret(relative: str) -> bool:
    """Whether a root-relative path is a well-known credentials file or inside such a folder."""
    parts = PurePosixPath(relative).parts
    return any(part in SECRET_FOLDERS for part in parts[:-1]) \
        or any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in SECRET_FILES)


class ProjectTooLargeError(MlboxError):
    """The files a notebook references are too large to copy into the container."""


@dataclass
class Project:
    """The root, the notebook's folder relative to it, and what to ship (root-relative path
    → bytes)."""

    root: Path
    notebook_dir: str  # posix, relative to root; "" when the notebook sits at the root
    files: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def project_root(notebook_dir: Path, context: Path | None = None) -> Path:
    """``context`` when given (it must contain the notebook), else the git top level above the
    notebook, else the notebook's own folder."""
    notebook_dir = notebook_dir.resolve()
    if context is not None:
        root = Path(context).expanduser().resolve()
        if root != notebook_dir and root not in notebook_dir.parents:
            raise OptionError(f"--context {context}: the notebook's folder {notebook_dir} is "
                              f"not inside it; give a folder that holds the notebook")
        return root
    for folder in (notebook_dir, *notebook_dir.parents):
        if (folder / ".git").exists():
            return folder
    return notebook_dir


def sys_path_dirs(sources: Iterable[str], notebook_dir: Path) -> list[Path]:
    """Folders the code adds to ``sys.path`` with a literal path: ``sys.path.insert(0, '..')``,
    ``sys.path.append(os.path.abspath('../lib'))`` (relative to the notebook's folder)."""
    found: list[Path] = []
    for tree in _trees(sources):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in {"insert", "append"} \
                    and ast.unparse(node.func.value) == "sys.path" and node.args:
                text = _literal_path(node.args[-1])
                if text is not None:
                    folder = (notebook_dir / text).resolve()
                    if folder.is_dir() and folder not in found:
                        found.append(folder)
    return found


def _literal_path(node: ast.AST) -> str | None:
    """A string constant, or one wrapped in os.path.abspath/realpath/normpath/join of
    constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and ast.unparse(node.func) in {
            "os.path.abspath", "os.path.realpath", "os.path.normpath", "os.path.join"}:
        parts = [_literal_path(arg) for arg in node.args]
        if parts and all(p is not None for p in parts):
            return os.path.join(*parts)
    return None


def _trees(sources: Iterable[str]):
    """Syntax trees of the cells that parse, too-deep statements left out (parse_cells)."""
    for cell in parse_cells(list(sources)):
        if cell.tree is not None:
            yield cell.tree


def run_scripts(sources: Iterable[str], notebook_dir: Path) -> list[Path]:
    """Python files a ``%run SCRIPT.py`` line executes (they run in the kernel, so they count as
    the notebook's own code)."""
    found = []
    for tree in _trees(sources):
        for kind, name, arguments in magics(tree):
            script = next((w for w in arguments.split() if not w.startswith("-")), None)
            if kind != "line" or name != "run" or not script:
                continue
            path = (notebook_dir / (script if script.endswith(".py") else f"{script}.py")
                    ).resolve()
            if path.is_file() and path not in found:
                found.append(path)
    return found


def local_code(sources: list[str], search_dirs: list[Path]) -> dict[Path, str]:
    """The notebook's own Python beyond its cells: ``%run`` scripts and the local modules they
    and the cells import, walked transitively (a helper that imports another helper, which
    imports pandas). Their imports are the notebook's requirements; their files travel."""
    notebook_dir = search_dirs[0]
    code: dict[Path, str] = {}
    pending = [(None, source) for source in sources]
    pending += [(path, path.read_text(errors="replace"))
                for path in run_scripts(sources, notebook_dir)]
    while pending:
        path, source = pending.pop()
        if path is not None:
            if path in code:
                continue
            code[path] = source
        for tree in _trees([source]):
            for module in imported_modules(tree):
                top = module.split(".")[0]
                found = next((m for d in search_dirs
                              if (m := is_local_module(top, d)) is not None), None)
                if found is None:
                    continue
                files = [found] if found.is_file() else sorted(found.rglob("*.py"))
                pending += [(f.resolve(), f.read_text(errors="replace")) for f in files
                            if f.resolve() not in code]
    return code


def referenced_paths(sources: Iterable[str], notebook_dir: Path, root: Path,
                     outside: list[str] | None = None) -> set[Path]:
    """Existing files and folders under ``root`` that a string literal of the code names,
    relative to the notebook's folder (the cwd it runs in). Those that exist outside ``root``
    are appended to ``outside`` as written."""
    notebook_dir = notebook_dir.resolve()
    wanted: set[Path] = set()
    for tree in _trees(sources):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and 0 < len(node.value) < 300 and "\n" not in node.value \
                    and "\0" not in node.value:
                try:
                    candidate = (notebook_dir / node.value).resolve()
                    exists = candidate.exists()
                except (OSError, ValueError):
                    continue
                if not exists or candidate in (root, notebook_dir):
                    continue
                if root in candidate.parents:
                    wanted.add(candidate)
                elif outside is not None and node.value.startswith("..") \
                        and node.value not in outside:
                    outside.append(node.value)
    return wanted


def ignore_patterns(root: Path) -> list[str]:
    patterns = []
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            patterns += [line.strip() for line in path.read_text(errors="replace").splitlines()
                         if line.strip() and not line.lstrip().startswith("#")]
    return patterns


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """``.dockerignore`` semantics, simplified: a pattern matches the path or any folder above
    it (``data``, ``data/raw/*``, ``**/*.h5``, ``*.ckpt``); ``!pattern`` re-includes."""
    parts = PurePosixPath(relative).parts
    if any(part in NEVER_SHIPPED for part in parts):
        return True
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            matched = any(fnmatch.fnmatchcase(p, pattern[3:]) for p in parts) \
                or any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
        else:
            matched = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
        if matched:
            ignored = not negate
    return ignored


def collect_files(paths: Iterable[Path], root: Path,
                  limit: int = MAX_PROJECT_FILES_BYTES,
                  skipped: list[str] | None = None) -> dict[str, bytes]:
    """The files of ``paths`` (folders walked), root-relative, ignore rules applied; a clear
    error with the largest files when they exceed ``limit``. Credentials files found by
    walking a folder are left out (``looks_secret``) and listed in ``skipped``; one given
    itself in ``paths`` travels."""
    patterns = ignore_patterns(root)
    members: dict[str, Path] = {}
    for path in sorted(set(paths)):
        named = path.is_file()
        candidates = [path] if named else sorted(p for p in path.rglob("*") if p.is_file())
        for member in candidates:
            relative = member.relative_to(root).as_posix()
            if is_ignored(relative, patterns):
                continue
            if not named and looks_secret(relative):
                if skipped is not None and relative not in skipped:
                    skipped.append(relative)
                continue
            members[relative] = member
    sizes = {relative: member.stat().st_size for relative, member in members.items()}
    total = sum(sizes.values())
    if total > limit:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
        listed = ", ".join(f"{name} ({size / 2**20:.0f} MB)" for name, size in largest)
        raise ProjectTooLargeError(
            f"the files this notebook uses come to {total / 2**20:.0f} MB, over the "
            f"{limit // 2**20} MB cap; largest: {listed}. Exclude them in .mlboxignore (or "
            f".dockerignore) at {root}, or put large data where the container can download it")
    return {relative: member.read_bytes() for relative, member in members.items()}


def project_for(notebook_path: Path, sources: list[str], local_modules: Iterable[Path],
                context: Path | None = None, read_files: Iterable[Path] = ()) -> Project:
    """Everything a notebook file needs from its project, laid out as in the project.
    ``read_files`` are files a traced run read (opened.py); those under the root travel too."""
    notebook_dir = Path(notebook_path).resolve().parent
    root = project_root(notebook_dir, context)
    outside: list[str] = []
    wanted = referenced_paths(sources, notebook_dir, root, outside)
    wanted |= {Path(f).resolve() for f in read_files
               if root in Path(f).resolve().parents and Path(f).resolve().is_file()
               and Path(f).resolve() != Path(notebook_path).resolve()}
    modules = [Path(module) for module in local_modules]
    for module in modules:
        if root in module.resolve().parents:
            wanted.add(module.resolve())
        elif root in module.absolute().parents:
            # a link in the project to a module elsewhere: its content travels, at the place
            # of the link, which is where the notebook imports it from
            wanted.add(module.absolute())
    linked = {path.resolve() for path in wanted}
    for module in modules:
        if root not in module.resolve().parents and root not in module.absolute().parents \
                and module.resolve() not in linked \
                and not any(target in module.resolve().parents for target in linked):
            outside.append(str(module))
    relative = notebook_dir.relative_to(root).as_posix()
    warnings = [f"{name} is outside the project root {root} and does not travel into the "
                f"container; --context DIR (a folder holding both) ships it"
                for name in outside]
    skipped: list[str] = []
    files = collect_files(wanted, root, skipped=skipped)
    if skipped:
        listed = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5
                                          else "")
        warnings.append(f"not shipped, as they look like credentials: {listed} (in a folder the "
                        f"notebook names); name a file by its exact path in the code to ship "
                        f"it, or list it in .mlboxignore to silence this")
    return Project(root, "" if relative == "." else relative, files, warnings)

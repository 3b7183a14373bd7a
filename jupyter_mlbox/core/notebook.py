"""Reading, parsing and writing notebooks.

Cells are made parseable with IPython's own input transformation (magics, ``!shell`` and ``?help``
become plain Python), so inference sees exactly what the kernel would run. Only the pure text
transformer is used; nothing here talks to an interactive shell.
"""
from __future__ import annotations

import ast
import json
import os
import tempfile
import uuid
import warnings as _warnings
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from ..errors import NotebookError

#: Cell magics whose body is Python that runs in the kernel (so its imports count).
PYTHON_CELL_MAGICS = {"mlbox", "time", "timeit", "capture", "prun"}


def read_notebook(path: str | os.PathLike, warnings: list[str] | None = None) -> NotebookNode:
    """Read a notebook as Jupyter would open it, or raise a NotebookError that says what is
    wrong. What nbformat can repair is repaired, and said in ``warnings``."""
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path}: no such notebook")
    if path.is_dir():
        raise NotebookError(f"{path}: is a directory, not a notebook")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise NotebookError(f"{path}: cannot be read ({err})") from err
    return notebook_from_string(text, source=str(path), warnings=warnings)


#: Keys a cell of each type may have in nbformat 4.5 (others are dropped when repairing).
_CELL_KEYS = {"code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
              "markdown": {"id", "cell_type", "metadata", "source", "attachments"},
              "raw": {"id", "cell_type", "metadata", "source", "attachments"}}


def _repaired(nb: NotebookNode) -> list[str]:
    """Repair what Jupyter tolerates but the schema refuses; return what was changed.

    Cell ids in a 4.0–4.4 notebook (jupytext writes them) make it 4.5; keys a cell type may
    not have are dropped; missing ids are added."""
    changes = []
    if nb.nbformat == 4 and nb.nbformat_minor < 5 and any("id" in c for c in nb.cells):
        nb.nbformat_minor = 5
        changes.append("cell ids in an nbformat 4.4 file: read as 4.5")
    for cell in nb.cells:
        extra = set(cell) - _CELL_KEYS.get(cell.get("cell_type"), set(cell))
        for key in sorted(extra):
            del cell[key]
        if extra:
            changes.append(f"dropped {', '.join(sorted(extra))} from a "
                           f"{cell.get('cell_type')} cell")
        if nb.nbformat_minor >= 5 and not cell.get("id"):
            cell["id"] = uuid.uuid4().hex[:8]
    return changes


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def notebook_from_string(text: str, *, source: str = "notebook",
                         warnings: list[str] | None = None) -> NotebookNode:
    """Parse notebook JSON, upgrading old formats and repairing what Jupyter tolerates, with one
    clear error for what Jupyter itself could not open."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(f"{source}: not a notebook, the JSON is malformed "
                            f"(line {err.lineno}, column {err.colno}: {err.msg})") from err
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise NotebookError(f"{source}: not a notebook (no 'cells')")
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")  # nbformat warns about what _repaired fixes
            nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
        return nb
    except nbformat.ValidationError as err:
        if "nb" not in locals():  # nbformat could not even read it: Jupyter cannot open it
            raise NotebookError(f"{source}: not a valid notebook ({_first_line(err)})") from err
        first_error = _first_line(err)
    except Exception as err:  # nbformat raises several unrelated types here
        raise NotebookError(f"{source}: not a valid notebook ({_first_line(err)})") from err
    changes = _repaired(nb)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError:
        changes.append(f"it does not follow the notebook schema ({first_error}); "
                       f"read as Jupyter would")
    if warnings is not None:
        warnings.extend(f"{Path(source).name}: {change}" for change in changes)
    return nb


def code_cell_sources(nb: NotebookNode) -> list[str]:
    """The source of every code cell, in order."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def new_notebook_from_cells(sources: Iterable[str], *, metadata: Mapping[str, Any] | None = None
                            ) -> NotebookNode:
    """A v4 notebook whose code cells are ``sources``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}})
    if metadata:
        nb.metadata.update(metadata)
    return nb


def python_source(cell_source: str) -> str:
    """The cell as the kernel would run it: IPython syntax turned into plain Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


@dataclass
class ParsedCell:
    """A code cell after transformation: its AST, or why it could not be parsed."""

    index: int
    tree: ast.Module | None
    error: str | None = None


#: A statement nested deeper than this is not read: the syntax-tree walkers of inference are
#: recursive, and a 2000-term expression (``1+1+…``) exceeded Python's recursion limit.
MAX_DEPTH = 200


def _depth(node: ast.AST, limit: int = MAX_DEPTH) -> int:
    """How deep ``node``'s tree goes (counted without recursion; stops past ``limit``)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _without_deep_statements(node: ast.AST, skipped: list[int]) -> None:
    """Replace, in place, each statement nested deeper than MAX_DEPTH by ``pass`` (a compound
    statement keeps what in its body is not too deep); their line numbers go to ``skipped``."""
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        statements = getattr(node, name, None)
        if not isinstance(statements, list):
            continue
        for position, statement in enumerate(statements):
            if not isinstance(statement, ast.AST) or _depth(statement) <= MAX_DEPTH:
                continue
            _without_deep_statements(statement, skipped)
            if _depth(statement) > MAX_DEPTH:
                skipped.append(getattr(statement, "lineno", 0))
                statements[position] = ast.copy_location(ast.Pass(), statement)


def parse_cells(sources: Iterable[str]) -> list[ParsedCell]:
    """Parse every cell; a cell with a syntax error is kept with its error, never fatal. A
    statement too deeply nested to walk is left out, with a note in ``error`` (the rest of the
    cell is read; the notebook itself runs as it is)."""
    parsed = []
    for index, source in enumerate(sources):
        try:
            tree = ast.parse(python_source(source))
        except SyntaxError as err:
            parsed.append(ParsedCell(index, None, f"cell {index + 1}: syntax error on line "
                                                  f"{err.lineno}: {err.msg}"))
            continue
        except (RecursionError, MemoryError):
            parsed.append(ParsedCell(index, None, f"cell {index + 1}: too deeply nested for "
                                                  f"Python's parser to read here"))
            continue
        skipped: list[int] = []
        _without_deep_statements(tree, skipped)
        note = (f"cell {index + 1}: line{'s' if len(skipped) > 1 else ''} "
                f"{', '.join(map(str, sorted(skipped)))} nested more than {MAX_DEPTH} levels "
                f"deep, too deep to read (the cell still runs)") if skipped else None
        parsed.append(ParsedCell(index, tree, note))
        for body in _python_cell_magic_bodies(tree):
            parsed.extend(ParsedCell(index, cell.tree) for cell in parse_cells([body])
                          if cell.tree is not None)  # the index of the cell it came from
    return parsed


def _python_cell_magic_bodies(tree: ast.Module) -> list[str]:
    """Bodies of ``%%mlbox`` / ``%%time`` … cells, which are Python run by the kernel."""
    bodies = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run_cell_magic" and len(node.args) == 3
                and all(isinstance(a, ast.Constant) for a in node.args)
                and node.args[0].value in PYTHON_CELL_MAGICS):
            bodies.append(node.args[2].value)
    return bodies


#: Where a notebook is never written: kernel and device file systems (``-o /dev/null`` as root
#: once replaced the device with a regular file).
_SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _mode_for(path: Path) -> int:
    """The mode a new file gets from open(2) under this process's umask (0666 & ~umask); an
    existing regular file keeps its own. mkstemp's 0600 would hide the result from the group."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        pass
    try:  # Linux says it without changing it (os.umask would, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _refuse_special(path: Path) -> None:
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file (a device, pipe or socket)"
        raise NotebookError(f"{path} is {kind}; the executed notebook is only written to a "
                            f"regular file or a new path: name one, e.g. -o out.ipynb")


def source_id(path: str | os.PathLike) -> str:
    """Which notebook file this is, as a label may say without naming it: a hash of the host
    and the absolute path (two ``analysis.ipynb`` in two folders are different notebooks)."""
    import hashlib
    import socket

    where = f"{socket.gethostname()}:{Path(path).resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def _temp_prefix(path: Path, pid: int) -> str:
    return f".{path.name[:64]}.{pid}."


def _remove_stale_temp_files(path: Path) -> None:
    """The temp files of earlier writes of ``path`` whose writer process is gone (SIGKILL or
    a power cut mid-write); a live writer's is left alone."""
    for stale in path.parent.glob(f".{glob_escape(path.name[:64])}.*.tmp"):
        pid = stale.name[len(path.name[:64]) + 2:].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (PermissionError, OverflowError):
            pass


def write_notebook_atomic(nb: NotebookNode, path: str | os.PathLike) -> Path:
    """Write ``nb`` to ``path`` through a temp file and a rename: never a half-written file.

    Only a regular file or a new path is replaced (a symlink: the file it points at); the mode
    follows the umask, or the replaced file's mode."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    _refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    _remove_stale_temp_files(path)
    # a short temp name (any name the file system takes for the result also fits), with the
    # writer's pid: a writer killed with SIGKILL leaves it, and the next write removes it
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path, os.getpid()), suffix=".tmp",
                               dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        _refuse_special(path)  # made special since the check above: still not replaced
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_path(path: str | os.PathLike, flag: str = "-o") -> Path:
    """Refuse, before anything is built or run, a path the executed notebook could not be
    written to, with the fix; return it. A directory, a special file, a path under /proc, /sys
    or /dev, a folder that cannot be written, a name the file system refuses."""
    from ..errors import OptionError

    path = Path(path).expanduser()
    target = path.resolve()

    def refuse(why: str, fix: str) -> OptionError:
        return OptionError(f"{flag} {path}: {why}; {fix}")

    for root in _SPECIAL_ROOTS:
        if target == root or root in target.parents:
            raise refuse(f"is under {root}, where no notebook can be written",
                         "name a file in a regular folder, e.g. -o out.ipynb")
    try:
        folder = target.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise refuse(f"{folder} is not a folder", "choose a path in a folder")
        try:
            name_max = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            name_max = 255
        if len(target.name.encode()) > name_max:
            raise refuse(f"the file name is {len(target.name.encode())} bytes, over the "
                         f"{name_max} this file system allows", "choose a shorter name")
        if target.is_dir():
            raise refuse("is a directory", f"name a file in it, e.g. -o {path / 'out.ipynb'}")
        if target.exists() and not target.is_file():
            raise refuse("is not a regular file (a device, pipe or socket)",
                         "name a regular file or a new path, e.g. -o out.ipynb")
    except OSError as err:
        raise refuse(f"cannot be used ({err.strerror})", "choose another path") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise refuse(f"{folder} is not writable by this user", "choose a folder you can write")
    if folder == target.parent:  # what the write will do: a temp file there (root too)
        try:
            fd, probe = tempfile.mkstemp(prefix=".mlbox-probe.", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise refuse(f"cannot create a file in {folder} ({err.strerror})",
                         "choose a folder you can write") from None
    return path


def write_notebook_or_beside(nb: NotebookNode, path: str | os.PathLike,
                             notebook_path: str | os.PathLike) -> tuple[Path, str | None]:
    """Write the result to ``path``; if that fails anyway (the folder went away, the disk
    filled), save it beside the input notebook rather than lose it. Returns where it went and,
    when it is not ``path``, a sentence that says so."""
    try:
        return write_notebook_atomic(nb, path), None
    except (OSError, NotebookError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        fallback = default_output_path(notebook_path)
        count = 1
        while fallback.exists() or fallback.resolve() == Path(path).resolve():
            fallback = Path(notebook_path).with_name(f"{Path(notebook_path).stem}.mlbox-{count}"
                                                     f".ipynb")
            count += 1
        written = write_notebook_atomic(nb, fallback)
        return written, (f"could not write {path} ({reason}); the executed notebook was saved "
                         f"beside the input as {written} instead")


def default_output_path(notebook_path: str | os.PathLike) -> Path:
    """``analysis.ipynb`` → ``analysis.mlbox.ipynb``, next to the input."""
    path = Path(notebook_path)
    return path.with_name(f"{path.stem}.mlbox.ipynb")

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


def parse_cells(sources: Iterable[str]) -> list[ParsedCell]:
    """Parse every cell; a cell with a syntax error is kept with its error, never fatal."""
    parsed = []
    for index, source in enumerate(sources):
        try:
            tree = ast.parse(python_source(source))
        except SyntaxError as err:
            parsed.append(ParsedCell(index, None, f"cell {index + 1}: syntax error on line "
                                                  f"{err.lineno}: {err.msg}"))
            continue
        parsed.append(ParsedCell(index, tree))
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


def write_notebook_atomic(nb: NotebookNode, path: str | os.PathLike) -> Path:
    """Write ``nb`` to ``path`` through a temp file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_output_path(notebook_path: str | os.PathLike) -> Path:
    """``analysis.ipynb`` → ``analysis.mlbox.ipynb``, next to the input."""
    path = Path(notebook_path)
    return path.with_name(f"{path.stem}.mlbox.ipynb")

"""Small helpers for integration tests: make notebooks, run the CLI as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from jupyter_mlbox.core.notebook import new_notebook_from_cells


def make_notebook(directory: Path, cells: list[str], name: str = "t.ipynb",
                  parameters_cell: int | None = None) -> Path:
    nb = new_notebook_from_cells(cells)
    if parameters_cell is not None:
        nb.cells[parameters_cell].metadata["tags"] = ["parameters"]
    path = directory / name
    nbformat.write(nb, path)
    return path


def cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``jupyter mlbox ARGS`` in a subprocess, as a terminal user runs it."""
    return subprocess.run([sys.executable, "-m", "jupyter_mlbox.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def outputs(nb) -> list[dict]:
    return [o for cell in nb.cells for o in cell.get("outputs", [])]

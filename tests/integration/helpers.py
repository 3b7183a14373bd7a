"""Small helpers for integration tests: run the CLI as a user would, read outputs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..conftest import write_notebook


def make_notebook(directory: Path, cells, name: str = "t.ipynb") -> Path:
    """``write_notebook(directory, cells, name=name)``: kept for the magics tests that import
    it; new tests call tests.conftest.write_notebook."""
    return write_notebook(directory, cells, name=name)


def cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``jupyter mlbox ARGS`` in a subprocess, as a terminal user runs it."""
    return subprocess.run([sys.executable, "-m", "jupyter_mlbox.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def outputs(nb) -> list[dict]:
    return [o for cell in nb.cells for o in cell.get("outputs", [])]

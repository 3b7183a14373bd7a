"""Issue 16 item 2: a project's declared environment is what the container gets.

Real parts: a project made by a real ``uv lock`` (pyproject.toml dependencies, six==1.16.0),
a notebook in its notebooks/ folder, the CLI run by this kernel's python — which has six
1.17.0, so inference alone would pin 1.17.0 — the real index for the kernel stack the lock
lacks, a real daemon for the build and the run."""
from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys

import nbformat
import pytest

from jupyter_mlbox.core.lock import _uv

from tests.conftest import write_notebook

pytestmark = pytest.mark.docker

LOCKED = "1.16.0"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "jupyter_mlbox.cli", *args],
                          capture_output=True, text=True, timeout=900)


def test_a_uv_lock_project_runs_with_exactly_the_locked_versions(tmp_path, engine):
    assert metadata.version("six") != LOCKED  # else the test could not tell the two apart
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "acme-analysis"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["six=={LOCKED}"]\n')
    locking = subprocess.run([_uv(), "lock", "--directory", str(root)], capture_output=True,
                             text=True, timeout=300)
    assert locking.returncode == 0, locking.stderr
    notebook = write_notebook(root / "notebooks" / "uses.ipynb",
                              ["import six\nprint('six', six.__version__)"])

    explained = _cli("requirements", str(notebook), "--explain")
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert "# environment: declared by pyproject.toml [project] dependencies, locked by " \
           "uv.lock, not inferred (precedence: --pip, -r, --base > .mlbox.lock > declared " \
           "files > inference)" in lines
    assert any(line.startswith("# lock: uv.lock pins ") for line in lines)
    assert f"six=={LOCKED}  # file (pyproject.toml [project] dependencies, locked by " \
           f"uv.lock)" in lines

    out = tmp_path / "out.ipynb"
    ran = _cli("run", str(notebook), "-o", str(out))
    assert ran.returncode == 0, ran.stderr[-3000:]
    text = "".join(o.get("text", "") for cell in nbformat.read(out, 4).cells
                   for o in cell.get("outputs", []))
    assert f"six {LOCKED}" in text
    dockerfile = _cli("dockerfile", str(notebook))
    assert "--require-hashes --no-deps" in dockerfile.stdout  # the lock, installed exactly

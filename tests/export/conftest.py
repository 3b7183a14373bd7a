"""Fixtures for exported images: tiny notebooks (the real local registry, ``local_registry``,
is in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import write_notebook


@pytest.fixture
def stdlib_notebook(tmp_path) -> Path:
    """Stdlib only (quick to build), a parameters cell, and a local data file it reads."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "greeting.txt").write_text("hello from the image\n")
    return write_notebook(folder / "params.ipynb", [
        ("n = 2\nword = 'x'", ["parameters"]),
        "import json, pathlib\ntext = pathlib.Path('greeting.txt').read_text().strip()\n"
        "print(text)",
        "print(json.dumps({'n': n, 'word': word, 'square': n * n}))",
    ])


@pytest.fixture
def failing_notebook(tmp_path) -> Path:
    folder = tmp_path / "failing"
    folder.mkdir()
    return write_notebook(folder / "boom.ipynb", [
        "print('before')",
        "raise ValueError('exported boom')",
        "print('never')",
    ])


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """A folder to bind-mount as /out: the image runs as uid 1000, so it must be writable."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    return out

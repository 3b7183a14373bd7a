"""Reading, writing and parameterising notebooks (no Docker)."""
from __future__ import annotations

import os

import nbformat
import pytest

from jupyter_mlbox.core.container_runner import inject_parameters, parse_parameter_value
from jupyter_mlbox.core.notebook import (default_output_path, new_notebook_from_cells,
                                         read_notebook, write_notebook_atomic)
from jupyter_mlbox.errors import NotebookError


@pytest.mark.parametrize("content,expected", [
    ("{not json", "JSON is malformed"),
    ('{"hello": 1}', "no 'cells'"),
    ('{"cells": "x", "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a valid notebook"),
])
def test_malformed_notebooks_give_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match=expected):
        read_notebook(path)


def test_missing_notebook(tmp_path):
    with pytest.raises(NotebookError, match="no such notebook"):
        read_notebook(tmp_path / "nope.ipynb")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.ipynb"
    good = new_notebook_from_cells(["1"])
    write_notebook_atomic(good, path)
    before = path.read_text()
    bad = new_notebook_from_cells(["2"])
    bad.metadata["unserialisable"] = object()
    with pytest.raises(TypeError):  # not JSON-serialisable: the write fails midway
        write_notebook_atomic(bad, path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["out.ipynb"]  # no temp file left


def test_parameters_go_after_the_parameters_cell():
    nb = new_notebook_from_cells(["import x", "a = 1", "print(a)"])
    nb.cells[1].metadata["tags"] = ["parameters"]
    out = inject_parameters(nb, {"a": 5, "name": "b"})
    assert [c.source.splitlines()[-1] for c in out.cells][:3] == ["import x", "a = 1", "name = 'b'"]
    assert out.cells[2].metadata["tags"] == ["injected-parameters"]
    assert len(nb.cells) == 3  # the input is not modified
    assert parse_parameter_value("3") == 3 and parse_parameter_value("abc") == "abc"
    assert parse_parameter_value("[1, 2]") == [1, 2]


def test_default_output_path(tmp_path):
    assert default_output_path(tmp_path / "a.ipynb") == tmp_path / "a.mlbox.ipynb"


def test_a_writer_killed_mid_write_leaves_a_temp_file_the_next_write_removes(tmp_path):
    """SIGKILL cannot be handled: the temp file stays, named with the dead writer's pid, and
    the next write of the same notebook removes it (a live writer's is kept)."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "result.ipynb"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time, nbformat
from jupyter_mlbox.core import notebook
def slow_write(nb, handle):
    handle.write('{{"half": ')
    handle.flush()
    time.sleep(60)
notebook.nbformat.write = slow_write
notebook.write_notebook_atomic(nbformat.v4.new_notebook(), {str(out)!r})
"""])
    try:
        for _ in range(200):
            if list(tmp_path.glob(".result.ipynb.*.tmp")):
                break
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    [stale] = tmp_path.glob(".result.ipynb.*.tmp")
    live = tmp_path / f".result.ipynb.{os.getppid()}.abcd.tmp"  # a writer still alive
    live.write_text("{")

    write_notebook_atomic(nbformat.v4.new_notebook(), out)

    assert not stale.exists()
    assert live.exists()
    assert nbformat.read(str(out), as_version=4).cells == []

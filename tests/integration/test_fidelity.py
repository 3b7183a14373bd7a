"""What comes back is what the container did: no stale outputs, every error when asked, notebooks
Jupyter opens are read, and runs get room in /dev/shm. CLI on a real daemon (issue 8, items
6-9)."""
from __future__ import annotations

import json

import nbformat

from tests.conftest import write_notebook
from tests.integration.helpers import cli


def _with_stale_outputs(path):
    """Give every code cell an output and an execution count, as a saved notebook has."""
    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate(nb.cells, start=1):
        cell.execution_count = number
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="STALE\n")]
    nb.cells[-1].outputs.append(nbformat.v4.new_output(
        "error", ename="OldError", evalue="from years ago", traceback=["OldError"]))
    nbformat.write(nb, path)
    return path


def test_a_failed_run_shows_no_stale_output_and_names_the_cell_that_failed(tmp_path,
                                                                           engine):
    path = _with_stale_outputs(write_notebook(tmp_path / "stale.ipynb", [
        "print('fresh')", "raise ValueError('now')", "print('never')",
        "print('never either')"]))
    result = cli("run", str(path))
    assert result.returncode == 1, result.stderr
    assert "cell 2 raised ValueError: now" in result.stderr
    assert "cell 4" not in result.stderr and "OldError" not in result.stderr
    executed = nbformat.read(tmp_path / "stale.mlbox.ipynb", as_version=4)
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in executed.cells]
    assert texts[0] == "fresh\n"
    assert "STALE" not in json.dumps([c.outputs for c in executed.cells])
    assert executed.cells[2].outputs == [] and executed.cells[3].outputs == []
    assert executed.cells[2].execution_count is None
    assert [c.metadata.get("mlbox", {}).get("status") for c in executed.cells] == \
        [None, None, "not-run", "not-run"]


def test_allow_errors_runs_to_the_end_and_lists_every_error(tmp_path, engine):
    path = write_notebook(tmp_path / "teaching.ipynb", [
        "print('start')", "raise ValueError('first')", "print('went on')",
        ("1 / 0", ["raises-exception"]), "raise KeyError('second')", "print('the end')"])
    result = cli("run", str(path), "--allow-errors")
    assert result.returncode == 1, result.stderr
    assert "2 cells raised" in result.stderr
    assert "cell 2 ValueError" in result.stderr and "cell 5 KeyError" in result.stderr
    assert "ZeroDivisionError" not in result.stderr  # tagged raises-exception: intended
    executed = nbformat.read(tmp_path / "teaching.mlbox.ipynb", as_version=4)
    assert executed.cells[5].outputs[0]["text"] == "the end\n"


def test_a_cell_tagged_raises_exception_does_not_fail_the_run(tmp_path, engine):
    path = write_notebook(tmp_path / "intended.ipynb", [
        ("raise RuntimeError('on purpose')", ["raises-exception"]), "print('after')"])
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "intended.mlbox.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["ename"] == "RuntimeError"
    assert executed.cells[1].outputs[0]["text"] == "after\n"


def test_a_jupytext_style_notebook_with_ids_in_nbformat_4_4_is_read(tmp_path, engine):
    """Jupyter opens it; the schema of 4.4 has no cell ids."""
    path = tmp_path / "jupytext.ipynb"
    path.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 4, "metadata": {"jupytext": {"formats": "ipynb,py"}},
        "cells": [{"cell_type": "markdown", "id": "a1", "metadata": {}, "source": "# Title"},
                  {"cell_type": "code", "id": "b2", "metadata": {}, "execution_count": None,
                   "outputs": [], "source": "print('read', 6 * 7)"}]}))
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    assert "cell ids in an nbformat 4.4 file" in result.stderr  # said, not refused
    executed = nbformat.read(tmp_path / "jupytext.mlbox.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "read 42\n"


def test_dev_shm_is_large_enough_for_dataloader_workers_and_can_be_set(tmp_path, engine):
    path = write_notebook(tmp_path / "shm.ipynb", [
        "import os\nst = os.statvfs('/dev/shm')\nprint(st.f_blocks * st.f_frsize)"])

    def shm_bytes(*flags):
        result = cli("run", str(path), *flags)
        assert result.returncode == 0, result.stderr
        executed = nbformat.read(tmp_path / "shm.mlbox.ipynb", as_version=4)
        return int(executed.cells[0].outputs[0]["text"])

    assert shm_bytes() == 2 ** 30  # Docker's own default is 64 MB
    assert shm_bytes("--shm-size", "256m") == 256 * 2 ** 20
    result = cli("run", str(path), "--shm-size", "lots")
    assert result.returncode == 2 and "--shm-size" in result.stderr


IMPLIED = [
    "%matplotlib inline",  # matplotlib, with no import statement
    "from sklearn.datasets import load_iris, load_sample_image\n"
    "frame = load_iris(as_frame=True).frame  # pandas, which no cell imports\n"
    "print(type(frame).__name__, frame.shape)",
    "print(load_sample_image('china.jpg').shape)  # Pillow",
    "frame.to_parquet('iris.parquet')  # pyarrow\n"
    "print(frame.equals(type(frame).__module__ and frame))",
    "ax = frame.plot.scatter(x='sepal length (cm)', y='petal length (cm)')\n"
    "print(type(ax).__module__)",
]


def test_dependencies_no_import_shows_reach_the_container(tmp_path, engine):
    """Issue 8 item 1 on a real daemon: sklearn is the only import; pandas (as_frame), Pillow
    (sample images), pyarrow (to_parquet) and matplotlib (%matplotlib) are implied, pinned to
    this kernel's versions, and the notebook runs unmodified."""
    import importlib.metadata as metadata

    path = write_notebook(tmp_path / "implied.ipynb", IMPLIED)
    planned = cli("requirements", str(path))
    assert planned.returncode == 0, planned.stderr
    for name in ("pandas", "pillow", "pyarrow", "matplotlib"):
        assert f"{name}=={metadata.version(name)}" in planned.stdout.splitlines(), planned.stdout
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    executed = nbformat.read(tmp_path / "implied.mlbox.ipynb", as_version=4)
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in executed.cells]
    assert texts[1] == "DataFrame (150, 5)\n"
    assert texts[2] == "(427, 640, 3)\n"
    assert (tmp_path / "implied.ipynb").exists() and texts[3] == "True\n"
    assert texts[4] == "matplotlib.axes._axes\n"

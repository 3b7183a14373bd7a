"""A submodule that needs its distribution's extra gets it (issue 13, item 5): ``import
dask.dataframe`` needs ``dask[dataframe]`` (pandas, pyarrow), which plain ``dask`` lacks. Real
kernel metadata (the test venv has dask[dataframe]), real index, real daemon."""
from __future__ import annotations

import importlib.metadata as metadata
import json

import nbformat
import pytest

from tests.conftest import write_notebook
from tests.integration.helpers import cli

pytest.importorskip("dask.dataframe", reason="the test extra installs dask[dataframe]")

CELLS = ["import dask.dataframe as dd",
         "frame = dd.from_dict({'x': [1, 2, 3, 4]}, npartitions=2)\n"
         "print(int(frame.x.sum().compute()))",
         "import importlib.metadata as m, json\n"
         "print(json.dumps({d: m.version(d) for d in ['dask', 'pandas', 'pyarrow']}))"]


def test_import_dask_dataframe_runs_in_the_container_with_the_extras_packages(tmp_path,
                                                                             engine):
    path = write_notebook(tmp_path / "frames.ipynb", CELLS)
    listed = cli("requirements", str(path))
    assert listed.returncode == 0, listed.stderr
    assert f"dask[dataframe]=={metadata.version('dask')}" in listed.stdout.split()
    assert f"pyarrow=={metadata.version('pyarrow')}" in listed.stdout.split()
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "frames.mlbox.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "10\n"
    inside = json.loads(executed.cells[2].outputs[0]["text"])
    assert inside == {d: metadata.version(d) for d in inside}  # the kernel's versions


def test_the_extra_locks_to_the_kernels_versions(tmp_path):
    """uv resolves ``dask[dataframe]==…`` with the kernel's versions as constraints."""
    path = write_notebook(tmp_path / "locked.ipynb", CELLS[:1])
    made = cli("lock", str(path))
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "locked.mlbox.lock").read_text()
    for dist in ("dask", "pandas", "pyarrow", "numpy"):
        assert f"{dist}=={metadata.version(dist)} \\" in text, dist

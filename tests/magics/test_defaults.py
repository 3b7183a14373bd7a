"""``c.MlboxDefaults`` in a Jupyter config file reaches ``%%mlbox`` and ``%mlbox`` (it used to
reach only the CLI), and ``%mlbox config`` changes those defaults for one kernel: a real kernel
whose JUPYTER_CONFIG_DIR is a test folder, and the real daemon."""
from __future__ import annotations

import json

import pytest

from ..conftest import write_notebook
from .helpers import COMMON_IMPORTS, execute_notebook, of_type, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]

LOAD = "%load_ext jupyter_mlbox"


@pytest.fixture(scope="module")
def gpus_auto_says(engine, shared_image) -> str:
    """What ``--gpus auto`` reports on this daemon (these tests' daemons have no NVIDIA
    support: it falls back to the CPU)."""
    if engine.gpu_support(shared_image):
        return "GPU support found: running with GPUs"
    return "no GPU support on this Docker daemon: running on CPU"


def config_dir(tmp_path, defaults: dict | None):
    """A Jupyter config directory holding ``jupyter_mlbox_config.json`` (when ``defaults``)."""
    directory = tmp_path / "jupyter-config"
    directory.mkdir()
    if defaults is not None:
        (directory / "jupyter_mlbox_config.json").write_text(
            json.dumps({"MlboxDefaults": defaults}))
    return str(directory)


def test_configured_gpus_auto_reaches_cell_and_line_magics(tmp_path, shared_image,
                                                          gpus_auto_says):
    work = tmp_path / "work"
    work.mkdir()
    other = write_notebook(work, [COMMON_IMPORTS, "print('whole notebook', 2 + 2)"],
                           name="magics-defaults.ipynb")
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%mlbox config",
        "%%mlbox\nprint('in the cell', 6 * 7)",
        f"%mlbox run {other.name}",
    ], work, JUPYTER_CONFIG_DIR=config_dir(tmp_path, {"gpus": "auto"}))
    for cell in nb.cells:
        assert not of_type(cell, "error"), of_type(cell, "error")
    cell = nb.cells[3]
    assert streams(cell, "stdout") == "in the cell 42\n"
    assert "with --gpus auto" in streams(cell, "stderr")  # text progress: the request was made
    assert gpus_auto_says in streams(cell, "stderr")
    assert "%mlbox defaults: --gpus auto" in streams(nb.cells[2], "stdout")
    run = nb.cells[4]
    assert "with --gpus auto" in streams(run, "stderr") and gpus_auto_says in streams(run, "stderr")
    assert "wrote magics-defaults.mlbox.ipynb" in streams(run, "stdout")


def test_config_magic_validates_sets_and_resets(tmp_path, shared_image, gpus_auto_says):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%mlbox config --gpus lots",
        "%mlbox config",
        "%mlbox config --gpus auto --timeout 300",
        "%mlbox config",
        "%%mlbox\nprint('in the cell', 6 * 7)",
        "%mlbox config --in df",
        "%mlbox config --reset",
    ], tmp_path, JUPYTER_CONFIG_DIR=config_dir(tmp_path, None))
    # IPython prints a UsageError as one line on stderr, without a traceback
    bad = streams(nb.cells[2], "stderr")
    assert "UsageError: argument --gpus:" in bad and "expected all, none, auto" in bad
    assert "Traceback" not in bad and not streams(nb.cells[2], "stdout")
    assert "%mlbox defaults: (none)" in streams(nb.cells[3], "stdout")  # nothing was set
    assert "%mlbox defaults: --gpus auto --timeout 300" in streams(nb.cells[5], "stdout")
    cell = nb.cells[6]
    assert not of_type(cell, "error"), of_type(cell, "error")
    assert streams(cell, "stdout") == "in the cell 42\n"
    assert gpus_auto_says in streams(cell, "stderr")
    assert "UsageError: --in is per cell; it cannot be a default" in streams(nb.cells[7], "stderr")
    assert "%mlbox defaults: (none)" in streams(nb.cells[8], "stdout")  # back to the files

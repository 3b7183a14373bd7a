"""`papermill in.ipynb out.ipynb --engine mlbox` with the real papermill CLI and the real daemon:
papermill's parameters, metadata and error marker, the cells executed in the built container."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from ..conftest import write_notebook

pytest.importorskip("papermill", reason="papermill is a test extra: pip install -e '.[test]'")



def in_container(test):
    """A test against the real daemon that must leave no container behind."""
    return pytest.mark.docker(pytest.mark.usefixtures("no_leftover_containers")(test))


#: Prints only the container can: the runner the image carries, and no network when the
#: configured defaults say --network none.
PROBE = ("import os, numpy\nprint(alpha * 10)\n"
         "print('runner', os.path.exists('/opt/mlbox/runner.py'))\n"
         "print('interfaces', sorted(os.listdir('/sys/class/net')))")


def papermill(*args: str, config_dir, cwd=None, stdin=None) -> subprocess.CompletedProcess:
    """The papermill CLI in a subprocess, with jupyter_mlbox's config read from ``config_dir``."""
    return subprocess.run([sys.executable, "-m", "papermill", *args, "--engine", "mlbox"],
                          capture_output=True, text=True, timeout=600, cwd=cwd, input=stdin,
                          env={**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir)})


def texts(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@in_container
def test_parameters_run_in_the_container_with_papermills_metadata(tmp_path, engine):
    (tmp_path / "jupyter_mlbox_config.json").write_text(
        json.dumps({"MlboxDefaults": {"network_mode": "none"}}))
    source = write_notebook(tmp_path / "in.ipynb", [("alpha = 1.0", ["parameters"]), PROBE])
    out = tmp_path / "out.ipynb"
    result = papermill(str(source), str(out), "-p", "alpha", "0.1", config_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out, as_version=4)
    assert [c.metadata.get("tags") or [] for c in nb.cells] == [
        ["parameters"], ["injected-parameters"], []]  # papermill's own injection
    assert "alpha = 0.1" in nb.cells[1].source
    printed = texts(nb.cells[2])
    assert printed.splitlines()[0] == "1.0"
    assert "runner True" in printed  # the image's runner: it ran in the container
    assert "interfaces ['lo']" in printed  # the configured default reached the container
    assert nb.metadata["mlbox"]["image"].startswith("mlbox/")
    assert nb.metadata.papermill["parameters"] == {"alpha": 0.1}
    assert nb.metadata.papermill["exception"] is None and nb.metadata.papermill["duration"] > 0
    for index, cell in enumerate(nb.cells):
        assert cell.metadata.papermill["status"] == "completed", index
        assert cell.metadata.papermill["duration"] is not None, index
        assert cell.execution_count == index + 1
    assert "Executing" in result.stderr  # papermill's progress bar, over the copied cells


@in_container
def test_failing_cell_gets_papermills_error_marker_and_the_containers_traceback(
        tmp_path, engine):
    source = write_notebook(tmp_path / "in.ipynb", [
        ("alpha = 1", ["parameters"]),
        "import os\ndef f():\n    raise ValueError(f'boom {alpha} {os.getuid()}')\nf()",
        "print('never')"])
    out = tmp_path / "out.ipynb"
    result = papermill(str(source), str(out), "-p", "alpha", "7", config_dir=tmp_path)
    assert result.returncode != 0
    assert "PapermillExecutionError" in result.stderr and "boom 7 1000" in result.stderr
    nb = nbformat.read(out, as_version=4)
    markers = [c for c in nb.cells if "papermill-error-cell-tag" in c.metadata.get("tags", [])]
    assert len(markers) == 2  # the banner at the top and the anchor before the failing cell
    failed = next(c for c in nb.cells if c.get("outputs") and
                  c.outputs[-1].output_type == "error")
    assert failed.outputs[-1].ename == "ValueError"
    assert "boom 7 1000" in failed.outputs[-1].evalue  # uid 1000: the container's user
    assert any("f()" in line for line in failed.outputs[-1].traceback)
    assert failed.metadata.papermill["status"] == "failed"
    assert nb.metadata.papermill["exception"] is True
    never = next(c for c in nb.cells if c.source == "print('never')")
    assert never.metadata.papermill["status"] == "pending" and not never.outputs


@in_container
def test_execution_timeout_stops_the_cell_and_marks_it(tmp_path, engine):
    source = write_notebook(tmp_path / "in.ipynb", ["print('printed-before-the-timeout')",
                                                    "import time\ntime.sleep(120)"])
    out = tmp_path / "out.ipynb"
    result = papermill(str(source), str(out), "--execution-timeout", "3", "--log-output",
                       config_dir=tmp_path)
    assert result.returncode != 0
    assert "PapermillExecutionError" in result.stderr
    assert "RunTimeoutError: cell 2 exceeded the timeout of 3 s" in result.stderr
    assert "time.sleep(120)" in result.stderr  # where the container's kernel was stopped
    # --log-output: the cell's print, streamed from the container into papermill's log
    assert result.stderr.count("printed-before-the-timeout") == 1
    nb = nbformat.read(out, as_version=4)
    slept = next(c for c in nb.cells if "sleep" in c.source)
    assert slept.metadata.papermill["status"] == "failed"
    assert "timeout of 3 s" in slept.outputs[-1].evalue
    first = next(c for c in nb.cells if "printed-before" in c.source)
    assert texts(first) == "printed-before-the-timeout\n"


@in_container
def test_dead_kernel_is_a_failed_cell_that_says_so(tmp_path, engine):
    source = write_notebook(tmp_path / "in.ipynb", ["import os\nos._exit(1)", "print('never')"])
    out = tmp_path / "out.ipynb"
    result = papermill(str(source), str(out), config_dir=tmp_path)
    assert result.returncode != 0
    assert "KernelDiedError: the kernel died while executing cell 1" in result.stderr
    nb = nbformat.read(out, as_version=4)
    died = next(c for c in nb.cells if "_exit" in c.source)
    assert died.metadata.papermill["status"] == "failed"
    assert died.outputs[-1].ename == "KernelDiedError"
    assert nb.metadata["mlbox"]["status"] == "kernel-died"


@in_container
def test_notebook_from_stdin_takes_papermills_working_directory_as_its_project(tmp_path, engine):
    (tmp_path / "helpers.py").write_text("def greet():\n    return 'hello from helpers.py'\n")
    source = write_notebook(tmp_path / "in.ipynb", [("alpha = 1", ["parameters"]),
                                                    "import helpers\nprint(helpers.greet(), alpha)"])
    result = papermill("-", "out.ipynb", "-p", "alpha", "5", config_dir=tmp_path, cwd=tmp_path,
                       stdin=source.read_text())
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert texts(nb.cells[-1]) == "hello from helpers.py 5\n"  # the local module went along
    assert nb.metadata["mlbox"]["status"] == "ok"


def test_papermill_finds_the_engine_and_jupyter_mlbox_does_not_import_papermill():
    """The entry point is registered (an editable install too), and papermill stays optional:
    the package, its CLI and its core load without it."""
    from papermill.engines import papermill_engines

    from jupyter_mlbox.papermill_engine import MlboxEngine

    assert papermill_engines.get_engine("mlbox") is MlboxEngine
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, jupyter_mlbox, jupyter_mlbox.cli, "
         "jupyter_mlbox.config, jupyter_mlbox.core.run; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] == 'papermill'))"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"

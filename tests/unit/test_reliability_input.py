"""Issue 14 §1, §4–§6 without a daemon: bad input is refused up front with one sentence that
names the fix, results are written only where they belong, container text is made safe for a
terminal. The runner's timeouts run a real local kernel (nbclient), as in the image."""
from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_mlbox import cli
from jupyter_mlbox.core import container_runner
from jupyter_mlbox.core import notebook as notebooks
from jupyter_mlbox.core.events import ProgressEvent
from jupyter_mlbox.core.inference import infer_requirements, read_requirements_file
from jupyter_mlbox.core.notebook import parse_cells, write_notebook_atomic
from jupyter_mlbox.core.options import RunOptions, resolve_options
from jupyter_mlbox.core.project import project_for
from jupyter_mlbox.errors import NotebookError, OptionError, RequirementError

from ..conftest import notebook_node, write_notebook


@contextlib.contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def check_output_path(path):
    return notebooks.check_output_path(path)


def write_notebook_or_beside(*args):
    return notebooks.write_notebook_or_beside(*args)


def interrupted_during(phase):
    from jupyter_mlbox.core.events import interrupted_during

    return interrupted_during(phase)


def terminal_safe(text):
    from jupyter_mlbox.core.events import terminal_safe

    return terminal_safe(text)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- §1 the output path: checked before anything runs, written only where it belongs -------------

@pytest.mark.parametrize("make, expected", [
    (lambda tmp: tmp, "is a directory; name a file in it"),
    (lambda tmp: Path("/dev/null"), "is under /dev"),
    (lambda tmp: Path("/proc/self/x.ipynb"), "is under /proc"),
    (lambda tmp: tmp / ("n" * 300 + ".ipynb"), "choose a shorter name"),
])
def test_an_unusable_output_path_is_refused_with_the_fix(tmp_path, make, expected):
    with pytest.raises(OptionError) as caught:
        check_output_path(make(tmp_path))
    assert expected in one_line(caught.value)


def test_a_special_file_is_refused_as_output(tmp_path):
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(OptionError, match="not a regular file"):
        check_output_path(fifo)
    with pytest.raises(NotebookError, match="not a regular file"):
        write_notebook_atomic(notebook_node(["1"]), fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the pipe, not replaced


def test_an_unwritable_folder_is_refused_before_the_run(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through 0555: make it immutable instead
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(OptionError, match="choose a folder you can write"):
            check_output_path(folder / "out.ipynb")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_new_path_in_a_new_folder_passes(tmp_path):
    assert check_output_path(tmp_path / "new" / "out.ipynb") == tmp_path / "new" / "out.ipynb"


def test_an_executed_notebook_follows_the_umask(tmp_path):
    with umask(0o022):
        path = write_notebook_atomic(notebook_node(["1"]), tmp_path / "out.ipynb")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)  # replacing a file keeps its mode
    write_notebook_atomic(notebook_node(["2"]), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_long_name_that_the_file_system_takes_is_written(tmp_path):
    name = "n" * 240 + ".ipynb"  # 246 bytes: fits, but ".NAME.XXXXXXXX.tmp" would not
    assert write_notebook_atomic(notebook_node(["1"]), tmp_path / name).is_file()


def test_a_write_that_fails_at_the_end_saves_the_result_beside_the_input(tmp_path):
    notebook = write_notebook(tmp_path / "nb" / "a.ipynb", ["1"])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder was expected")
    written, said = write_notebook_or_beside(notebook_node(["1"]), blocker / "out.ipynb",
                                             notebook)
    assert written == notebook.with_name("a.mlbox.ipynb") and written.is_file()
    assert str(written) in said and "could not write" in said


# --- §5 bad input: one sentence, before any build ---------------------------------------------------

def test_a_requirements_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes("numpy  # café\n".encode("latin-1"))
    with pytest.raises(RequirementError, match="not UTF-8 text.*save it as UTF-8") as caught:
        read_requirements_file(path)
    one_line(caught.value)


@pytest.mark.parametrize("options, expected", [
    ({"memory": "abc"}, "--memory: expected a size like 512m"),
    ({"memory": "12"}, "below Docker's minimum of 6m"),
    ({"base_image": "python:3.11-slim\nRUN echo hi"}, "is not an image reference"),
    ({"parameters": {"import os;print(1);y": 1}}, "must be a Python identifier"),
    ({"parameters": {"class": 1}}, "must be a Python identifier"),
    ({"network_mode": "a b"}, "expected none, bridge, host"),
    ({"inactivity": -1}, "0 (off) or more"),
])
def test_bad_values_are_refused_by_the_one_options_model(options, expected):
    with pytest.raises(OptionError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve_options(options)


@pytest.mark.parametrize("argv, expected", [
    (["--memory", "12"], "below Docker's minimum"),
    (["-p", "class=1"], "must be a Python identifier"),
    (["--base", "python:3.11-slim\nRUN echo hi"], "is not an image reference"),
])
def test_the_cli_refuses_them_with_exit_2(tmp_path, capsys, argv, expected):
    notebook = write_notebook(tmp_path / "a.ipynb", ["1"])
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", str(notebook), *argv])
    assert caught.value.code == cli.EXIT_USAGE
    assert expected in capsys.readouterr().err


def test_a_float_timeout_and_the_network_and_inactivity_options_resolve():
    _, run = resolve_options({"timeout": 2.5, "network_mode": "none", "inactivity": 0})
    assert (run.timeout, run.network_mode, run.inactivity) == (2.5, "none", 0)
    assert RunOptions().inactivity == 30  # a stalled kernel no longer hangs a run forever


def test_the_runner_refuses_parameter_names_that_are_not_identifiers():
    with pytest.raises(ValueError, match="not a Python identifier"):
        container_runner.inject_parameters(notebook_node(["1"]), {"x=1\nimport os;y": 2})


def test_a_2000_term_expression_is_a_warning_and_the_rest_is_read():
    sources = ["import json\nx = " + "+".join(["1"] * 2000) + "\nimport requests"]
    [cell] = parse_cells(sources)
    assert cell.tree is not None and "too deep to read" in cell.error
    result = infer_requirements(sources)
    assert any("line 2 nested more than" in w for w in result.warnings), result.warnings
    assert "requests" in {r.name for r in result.requirements}


def runner(tmp_path, cells, *args):
    """The in-image runner, as the image runs it, on a real local kernel."""
    source = tmp_path / "in.ipynb"
    nbformat.write(notebook_node(cells), source)
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([sys.executable, container_runner.__file__, str(source), str(out),
                           *args], capture_output=True, text=True, timeout=300)
    return proc, (nbformat.read(out, as_version=4) if out.exists() else None)


def stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_a_float_timeout_stops_the_cell_and_keeps_what_it_printed(tmp_path):
    proc, nb = runner(tmp_path, ["print('before', flush=True)\nimport time\ntime.sleep(60)"],
                      "--cell-timeout", "2.5", "--run-timeout", "2.5")
    assert proc.returncode == container_runner.EXIT_TIMEOUT, proc.stderr
    assert nb.metadata["mlbox"]["status"] == "timeout"
    assert stream(nb.cells[0]).strip() == "before"
    assert nb.cells[0].metadata["mlbox"]["status"] == "timed-out"


def test_the_run_timeout_bounds_all_the_cells_together(tmp_path):
    """Four cells of 1.5 s, 60 s allowed per cell, 4 s for the run: no cell can reach its own
    limit, so the run's limit stops it before the last cell. Which cell it stops depends on
    how long the kernel took to start on a busy machine (it counts), so any before the last."""
    cells = ["import time\ntime.sleep(1.5)\nprint('one')"] * 4
    proc, nb = runner(tmp_path, cells, "--cell-timeout", "60", "--run-timeout", "4")
    assert proc.returncode == container_runner.EXIT_TIMEOUT, proc.stderr
    failed = nb.metadata["mlbox"]["failed_cell"]
    assert failed in (0, 1, 2)
    assert nb.cells[failed].metadata["mlbox"]["status"] == "timed-out"
    assert all(stream(cell).strip() == "one" for cell in nb.cells[:failed])


def test_a_cell_without_output_for_the_inactivity_limit_is_stalled_and_named(tmp_path):
    proc, nb = runner(tmp_path, ["print('ok')", "print('working', flush=True)\n"
                                 "import time\ntime.sleep(120)", "print('never')"],
                      "--inactivity", "2")
    assert proc.returncode == container_runner.EXIT_TIMEOUT, proc.stderr
    assert "cell 2 made no output" in proc.stderr
    assert nb.metadata["mlbox"]["status"] == "stalled"
    assert nb.metadata["mlbox"]["failed_cell"] == 1
    assert stream(nb.cells[1]).strip() == "working"
    assert nb.cells[1].metadata["mlbox"]["status"] == "stalled"
    assert nb.cells[2].metadata["mlbox"]["status"] == "not-run"


# --- Ctrl-C names the phase it stopped ------------------------------------------------------------

def test_an_interrupt_names_the_phase_it_came_in():
    assert "build was stopped" in interrupted_during("building")
    assert "while the notebook executed" in interrupted_during("running")
    assert "build" not in interrupted_during("running")


def test_the_cli_says_the_run_was_stopped_not_the_build(tmp_path, capsys, monkeypatch):
    def interrupted_while_running(args, progress):
        progress(ProgressEvent("running", "phase", "executing a.ipynb"))
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "run", interrupted_while_running)
    notebook = write_notebook(tmp_path / "a.ipynb", ["1"])
    assert cli.main(["run", str(notebook)]) == cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "the run was stopped while the notebook executed" in err
    assert "the build was stopped" not in err


# --- §6 what crosses the boundary ---------------------------------------------------------------

def test_credentials_in_a_named_folder_stay_here_with_a_warning(tmp_path):
    (tmp_path / "secrets" / ".ssh").mkdir(parents=True)
    for name in ("secrets/id_rsa", "secrets/.ssh/config", "secrets/.env", "secrets/data.csv",
                 "secrets/server.key", "client.pem"):
        (tmp_path / name).write_text("x")
    notebook = write_notebook(tmp_path / "a.ipynb", ["x = 'secrets'\nc = open('client.pem')"])
    sources = [c.source for c in nbformat.read(notebook, as_version=4).cells]
    project = project_for(notebook, sources, [])
    assert sorted(project.files) == ["client.pem", "secrets/data.csv"]  # client.pem: named
    [warning] = [w for w in project.warnings if "credentials" in w]
    for name in ("secrets/id_rsa", "secrets/.ssh/config", "secrets/.env", "secrets/server.key"):
        assert name in warning


def test_container_text_keeps_colours_and_loses_other_escapes():
    text = ("ValueError: \x1b]0;owned title\x07boom \x1b]52;c;ZWNobyBoaQ==\x1b\\"
            "\x1b[31mred\x1b[0m\x1b[2J\x1b[10;1H\x9d0;t\x07 done\x07")
    assert terminal_safe(text) == "ValueError: boom \x1b[31mred\x1b[0m done"


def test_the_cli_prints_a_container_error_without_its_escape_sequences(capsys, tmp_path,
                                                                       monkeypatch):
    from jupyter_mlbox.errors import CellExecutionError

    def failing(args, progress):
        raise CellExecutionError("cell 1 raised ValueError: \x1b]0;pwned\x07\x1b[31mx\x1b[0m")

    monkeypatch.setitem(cli.COMMANDS, "build", failing)
    notebook = write_notebook(tmp_path / "a.ipynb", ["1"])
    assert cli.main(["build", str(notebook)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "\x1b]" not in err and "pwned" not in err and "\x1b[31mx" in err


def test_missing_imports_are_the_cells_required_imports_the_image_lacks(tmp_path):
    from jupyter_mlbox.core.image_modules import importable_top_level, missing_imports

    (tmp_path / "helpers.py").write_text("x = 1\n")
    cell = ("import numpy as np, os\nfrom sklearn.linear_model import Ridge\nimport helpers\n"
            "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n%time y = 1")
    assert missing_imports([cell], ["os", "numpy"], tmp_path) == ["sklearn"]
    assert missing_imports([cell], ["os", "numpy", "sklearn"], tmp_path) == []
    here = importable_top_level()
    assert {"os", "json", "sys", "pytest"} <= set(here)

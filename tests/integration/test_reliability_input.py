"""Issue 14 §1, §4–§6 on the real daemon, through the CLI as a user types it: tags that are
not ours are never moved, results are never lost or written over a device, limits hold by
default, bad input stops before the build with one sentence, Ctrl-C names what it stopped."""
from __future__ import annotations

import os
import stat
import subprocess

import nbformat
import pytest

from jupyter_mlbox.core.dockerfile import default_base_image
from jupyter_mlbox.core.export import export_image
from jupyter_mlbox.errors import ConflictError, MlboxError

from ..conftest import write_notebook
from .helpers import cli
from .test_interrupt import interrupt_when

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

#: Every run here uses notebooks named so, all stdlib: one image, built once, reused.
NAME = "reliable.ipynb"


def image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                          capture_output=True, text=True, check=True).stdout.strip()


def no_build_and_one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "[building]" not in proc.stderr, proc.stderr  # refused before anything was built
    return proc.stderr


def stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


# --- §1 never overwrite what is not ours --------------------------------------------------------

@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_never_moves_the_base_image_tag(tmp_path, engine, force):
    base = default_base_image()
    before = image_id(base)
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    proc = cli("export", str(path), "-t", base, *force)
    assert proc.returncode == 3, proc.stderr
    assert "base image" in no_build_and_one_line(proc) and "choose another tag" in proc.stderr
    assert image_id(base) == before


def test_export_never_takes_a_content_hash_tag(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    proc = cli("export", str(path), "-t", "mlbox/reliable:0123456789ab", "--force")
    assert proc.returncode == 3, proc.stderr
    assert "content-hash tag" in no_build_and_one_line(proc)
    assert not engine.image_exists("mlbox/reliable:0123456789ab")


def test_export_refuses_another_notebooks_tag_unless_forced(tmp_path, engine):
    tag = "mlbox-test/reliability-export:1"
    other = write_notebook(tmp_path / "other" / "other.ipynb", ["print('other')"])
    mine = write_notebook(tmp_path / "mine" / NAME, ["print('mine')"])
    try:
        first = export_image(engine, other, tag)
        with pytest.raises(ConflictError, match="export of other.ipynb, not an export of "
                                                "reliable.ipynb.*--force"):
            export_image(engine, mine, tag)
        assert image_id(tag) == image_id(first.content_tag)  # not moved
        again = export_image(engine, other, tag)  # its own earlier export: moved freely
        namesake = write_notebook(tmp_path / "elsewhere" / "other.ipynb", ["print('not it')"])
        with pytest.raises(ConflictError, match="export of other.ipynb from another folder"):
            export_image(engine, namesake, tag)  # the same name is not the same notebook
        assert image_id(tag) == image_id(again.content_tag)
        forced = export_image(engine, mine, tag, force=True)
        assert image_id(tag) == image_id(forced.content_tag) != image_id(again.content_tag)
    finally:
        try:
            engine.remove_image(tag)
        except MlboxError:
            pass


@pytest.mark.parametrize("output, expected", [
    ("/dev/null", "is under /dev"),
    ("{tmp}", "is a directory"),
    ("/proc/self/out.ipynb", "is under /proc"),
    ("{tmp}/" + "n" * 300 + ".ipynb", "choose a shorter name"),
])
def test_run_refuses_an_unusable_output_before_the_build(tmp_path, engine, output, expected):
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    proc = cli("run", str(path), "-o", output.format(tmp=tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert expected in no_build_and_one_line(proc)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_the_executed_notebook_follows_the_umask(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    path.chmod(0o644)
    old = os.umask(0o022)
    try:
        proc = cli("run", str(path), "-q")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "reliable.mlbox.ipynb").stat().st_mode) == 0o644


# --- §4 limits by default ------------------------------------------------------------------------

def test_runs_have_a_pids_limit_and_network_none_takes_the_network_away(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, [
        "import os\nlimit = next(p for p in ('/sys/fs/cgroup/pids.max', "
        "'/sys/fs/cgroup/pids/pids.max') if os.path.exists(p))  # cgroup v2, v1\n"
        "print(open(limit).read().strip())\n"
        "print(sorted(os.listdir('/sys/class/net')))"])
    proc = cli("run", str(path), "-q", "--network", "none")
    assert proc.returncode == 0, proc.stderr
    nb = nbformat.read(tmp_path / "reliable.mlbox.ipynb", as_version=4)
    pids, interfaces = stream(nb.cells[0]).split("\n")[:2]
    assert pids == "2048"
    assert interfaces == "['lo']"


# --- §5 bad input --------------------------------------------------------------------------------

def test_a_requirements_file_that_is_not_utf8_stops_before_the_build(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    (tmp_path / "requirements.txt").write_bytes("requests  # für\n".encode("latin-1"))
    proc = cli("run", str(path))
    assert proc.returncode == 3, proc.stderr
    assert "not UTF-8 text" in no_build_and_one_line(proc)


def test_memory_below_dockers_minimum_stops_before_the_build(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["print(1)"])
    proc = cli("run", str(path), "--memory", "12")
    assert proc.returncode == 2, proc.stderr
    assert "below Docker's minimum of 6m" in no_build_and_one_line(proc)


def test_a_float_timeout_keeps_the_output_made_before_it(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, [
        "print('first')", "import time\nprint('before', flush=True)\ntime.sleep(120)",
        "print('never')"])
    proc = cli("run", str(path), "--timeout", "2.5")
    assert proc.returncode == 3, proc.stderr
    assert "cell 2 exceeded the timeout of 2.5 s" in proc.stderr, proc.stderr
    nb = nbformat.read(tmp_path / "reliable.mlbox.ipynb", as_version=4)
    assert stream(nb.cells[1]).strip() == "before"
    assert nb.cells[1].metadata["mlbox"]["status"] == "timed-out"
    assert nb.cells[2].metadata["mlbox"]["status"] == "not-run"


def test_the_timeout_is_for_the_whole_run_too(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["import time\ntime.sleep(2)\nprint('one')"] * 4)
    proc = cli("run", str(path), "--timeout", "5")  # each cell ≈2 s, together ≈8 s
    assert proc.returncode == 3, proc.stderr
    assert "exceeded the timeout of 5 s (per cell and for the whole run)" in proc.stderr


def test_a_stalled_cell_is_named_and_its_output_kept(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, [
        "print('ok')", "import time\nprint('working', flush=True)\ntime.sleep(300)"])
    proc = cli("run", str(path), "--inactivity", "0.05")  # 3 s
    assert proc.returncode == 3, proc.stderr
    assert "cell 2 stalled" in proc.stderr and "--inactivity" in proc.stderr, proc.stderr
    nb = nbformat.read(tmp_path / "reliable.mlbox.ipynb", as_version=4)
    assert stream(nb.cells[1]).strip() == "working"
    assert nb.metadata["mlbox"]["status"] == "stalled"


def test_a_local_module_symlinked_from_outside_travels_at_the_links_place(tmp_path, engine):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "helper.py").write_text("X = 41\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "helper.py").symlink_to(elsewhere / "helper.py")
    path = write_notebook(project / NAME, ["import helper\nprint(helper.X + 1)"])
    proc = cli("run", str(path), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "outside the project root" not in proc.stderr
    nb = nbformat.read(project / "reliable.mlbox.ipynb", as_version=4)
    assert stream(nb.cells[0]).strip() == "42"


def test_ctrl_c_while_the_notebook_runs_names_the_run_not_the_build(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, ["import time\nprint('sleeping')\ntime.sleep(300)"])
    result = interrupt_when(["run", str(path)], f"executing {NAME}")
    assert result.returncode == 130, result.stderr
    assert "the run was stopped while the notebook executed" in result.stderr
    assert "the build was stopped" not in result.stderr


# --- §6 what crosses the boundary ---------------------------------------------------------------

def test_credentials_in_a_named_folder_do_not_travel(tmp_path, engine):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "id_rsa").write_text("PRIVATE KEY")
    (secrets / "notes.txt").write_text("fine")
    path = write_notebook(tmp_path / NAME, [
        "import os\nx = 'secrets'\nprint(sorted(os.listdir(x)))"])
    proc = cli("run", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "look like credentials: secrets/id_rsa" in proc.stderr
    nb = nbformat.read(tmp_path / "reliable.mlbox.ipynb", as_version=4)
    assert stream(nb.cells[0]).strip() == "['notes.txt']"


def test_escape_sequences_from_the_container_do_not_reach_the_terminal(tmp_path, engine):
    path = write_notebook(tmp_path / NAME, [
        "raise ValueError('\\x1b]0;owned\\x07\\x1b]52;c;ZWNobw==\\x07boom')"])
    proc = cli("run", str(path))
    assert proc.returncode == 1, proc.stderr
    assert "boom" in proc.stderr
    assert "\x1b]" not in proc.stderr and "\x07" not in proc.stderr

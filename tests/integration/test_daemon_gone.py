"""The Docker daemon killed under a run (issue 14): one sentence, not a chain of tracebacks,
and nothing left once it is back. A second, real dockerd is killed with SIGKILL
(second_daemon.py); the run is the CLI, as a user starts it."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from jupyter_mlbox.core.docker_engine import DockerEngine
from jupyter_mlbox.core.dockerfile import MANAGED_LABEL

from ..conftest import write_notebook
from .helpers import cli
from .second_daemon import SecondDaemon

pytestmark = pytest.mark.docker

SLOW = "import time\nprint('started', flush=True)\ntime.sleep(300)"


@pytest.fixture
def killable_daemon(tmp_path):
    """A second dockerd holding the image of a slow notebook built on the main daemon."""
    notebook = write_notebook(tmp_path, [SLOW], name="slow.ipynb")
    built = cli("build", str(notebook), "-q")
    assert built.returncode == 0, built.stderr
    tag = next(word for word in built.stdout.split() if word.startswith("mlbox/slow:"))
    daemon = SecondDaemon()
    try:
        daemon.start()
        daemon.load(tag)
        yield daemon, notebook
    finally:
        daemon.stop()


def _ours(engine):
    return engine.list_containers(f"{MANAGED_LABEL}=true")


def test_a_daemon_killed_mid_run_is_one_sentence_and_its_container_goes_when_it_is_back(
        killable_daemon):
    daemon, notebook = killable_daemon
    engine = DockerEngine.connect(daemon.socket)
    run = subprocess.Popen([sys.executable, "-m", "jupyter_mlbox.cli", "run", str(notebook),
                            "--host", daemon.socket, "--network", "none"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(240):
        if _ours(engine):
            break
        time.sleep(0.5)
    else:
        run.kill()
        pytest.fail("the run never started a container")
    time.sleep(3)  # the kernel is in the cell's sleep
    daemon.kill()
    _, stderr = run.communicate(timeout=120)

    assert run.returncode == 3, stderr
    assert "the Docker daemon at unix://" in stderr and "went away" in stderr, stderr
    assert "start it again" in stderr
    assert "Traceback" not in stderr and "IncompleteRead" not in stderr, stderr

    engine = daemon.start()  # dockerd is back; the run's container is still there, stopped
    assert _ours(engine), "dockerd kept no container: nothing to prove"
    listed = cli("images", "--host", daemon.socket)  # any next command reaps it
    assert listed.returncode == 0, listed.stderr
    assert not _ours(engine)


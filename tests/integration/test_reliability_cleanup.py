"""Issue 14 §2 on the real daemon: a CLI run ended by SIGTERM, SIGHUP or SIGKILL leaves
nothing behind — the first two clean up like Ctrl-C (exit 130); after SIGKILL the container
stops itself, and the next `jupyter mlbox` command removes it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import write_notebook
from .helpers import cli

pytestmark = pytest.mark.docker

OWNER_PID = "io.jupyter-mlbox.owner-pid"


def start_run(path, marker: str, timeout: float = 600) -> tuple[subprocess.Popen, list[str]]:
    """``jupyter mlbox run PATH`` in its own process, returned once ``marker`` is on stderr."""
    process = subprocess.Popen([sys.executable, "-m", "jupyter_mlbox.cli", "run", str(path)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env={**os.environ},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            pytest.fail(f"{marker!r} never appeared: {''.join(seen)[-2000:]}")
        seen.append(line)
        if marker in line:
            return process, seen
    process.kill()
    pytest.fail(f"{marker!r} never appeared: {''.join(seen)[-2000:]}")


def containers_of(engine, pid: int):
    return engine.list_containers(f"{OWNER_PID}={pid}")


def wait_for_container(engine, pid: int, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = containers_of(engine, pid)
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"no container with {OWNER_PID}={pid}")


def status_of(container_id: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", container_id],
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def sleepy(tmp_path):
    return write_notebook(tmp_path / "sleepy.ipynb",
                          ["import time\nprint('sleeping', flush=True)\ntime.sleep(300)"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(sleepy, engine, signum):
    process, seen = start_run(sleepy, "executing sleepy.ipynb")
    [container] = wait_for_container(engine, process.pid)
    time.sleep(1)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + err
    assert "interrupted" in err and "Traceback" not in err
    assert containers_of(engine, process.pid) == []
    assert status_of(container.id) == ""  # removed, not just stopped
    assert sorted(p.name for p in sleepy.parent.iterdir()) == ["sleepy.ipynb"]  # no temp file


def test_after_kill_9_the_container_stops_itself_and_the_next_command_removes_it(
        sleepy, engine):
    process, _ = start_run(sleepy, "executing sleepy.ipynb")
    [container] = wait_for_container(engine, process.pid)
    time.sleep(1)
    process.kill()  # SIGKILL: no handler runs, nothing of the CLI cleans up
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while status_of(container.id) == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    # its runner saw its owner go ("stopped": Podman's word for exited, not yet cleaned up)
    assert status_of(container.id) in {"exited", "stopped"}
    result = cli("doctor")
    assert "Traceback" not in result.stderr
    assert status_of(container.id) == ""  # removed by the next command
    assert containers_of(engine, process.pid) == []


def test_the_reaper_leaves_a_live_owners_container_alone(sleepy, engine):
    process, _ = start_run(sleepy, "executing sleepy.ipynb")
    try:
        [container] = wait_for_container(engine, process.pid)
        result = cli("images")
        assert result.returncode == 0, result.stderr
        assert status_of(container.id) == "running"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    assert containers_of(engine, process.pid) == []

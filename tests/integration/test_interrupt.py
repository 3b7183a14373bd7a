"""Ctrl-C in the middle of a build or a run: nothing left behind, nothing half-written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import write_notebook

pytestmark = pytest.mark.docker


def all_containers() -> set[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def sigint_as_in_a_terminal() -> None:
    """Runs in the child before exec: SIGINT back to its default, which Python turns into
    KeyboardInterrupt. A suite started in the background (``cmd &``, nohup, some CI runners)
    runs with SIGINT ignored, children inherit that, and Ctrl-C would never reach the CLI."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(args, marker: str, timeout: float = 300,
                   env: dict | None = None, delay: float = 1.0) -> subprocess.CompletedProcess:
    """Start ``jupyter mlbox ARGS`` (``env`` added to the environment), send SIGINT once
    ``marker`` appears on stderr."""
    process = subprocess.Popen([sys.executable, "-m", "jupyter_mlbox.cli", *args],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})},
                               preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            break
    else:
        process.kill()
        pytest.fail(f"{marker!r} never appeared: {''.join(seen)[-2000:]}")
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()  # ignored the interrupt: do not leave it running past the test
        out, err = process.communicate()
        pytest.fail(f"still running 120 s after SIGINT: {(''.join(seen) + err)[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out,
                                       "".join(seen) + err)


def test_ctrl_c_during_run_removes_the_container_and_writes_nothing(tmp_path, engine):
    before = all_containers()
    path = write_notebook(tmp_path / "t.ipynb", ["import numpy", "import time\nprint('sleeping')\n"
                                                 "time.sleep(300)"])
    result = interrupt_when(["run", str(path)], "executing t.ipynb")
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "t.mlbox.ipynb").exists()
    assert list(tmp_path.iterdir()) == [path]  # no temp file either
    time.sleep(1)
    assert all_containers() - before == set()


def test_ctrl_c_during_build_stops_it_and_leaves_no_container(tmp_path, engine):
    before = all_containers()
    path = write_notebook(tmp_path / "t.ipynb", ["import numpy"])
    # --rebuild forces a real build; the marker is the dependency step (the package cache's
    # install container: a few seconds at most here, so the interrupt follows at once)
    result = interrupt_when(["build", str(path), "--rebuild", "--pip", "tqdm"],
                            "installing the requirements", delay=0.2)
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr
    for _ in range(30):  # dockerd removes the build container once it notices the disconnect
        if all_containers() - before == set():
            break
        time.sleep(1)
    assert all_containers() - before == set()


def test_cancel_at_the_start_of_a_build_step_leaves_no_step_container(tmp_path, engine):
    """Cancelled right when dockerd announces the dependency step, before the step's container
    has a name on the stream: dockerd keeps that container, the engine must find it anyway."""
    from jupyter_mlbox.core.build import plan_image
    from jupyter_mlbox.core.events import CancelToken
    from jupyter_mlbox.errors import UserCancelledError

    before = all_containers()
    plan = plan_image(["import numpy"], notebook_name="cancel-step.ipynb", search_dir=tmp_path)
    cancel = CancelToken()

    def on_step(number, total, text):
        if "uv pip install" in text:
            cancel.cancel()

    # the standalone Dockerfile (what engines without the package cache build, and what the
    # package cache's own small builds go through)
    with pytest.raises(UserCancelledError):
        engine.build(plan.context.tar_bytes(), plan.tag, on_line=lambda line: None,
                     on_step=on_step, cancel=cancel, nocache=True,
                     step_label=plan.context.step_label)
    label = "=".join(plan.context.step_label)
    assert not engine.list_containers(label)
    assert all_containers() - before == set()
    # The build really stopped: it does not finish in the background later.
    time.sleep(45)
    assert not engine.image_exists(plan.tag)
    assert all_containers() - before == set()

"""GPU requests. No GPU exists on these machines: a stand-in ``nvidia-container-runtime-hook``
on a second dockerd's PATH makes dockerd register its NVIDIA device driver, and the stand-in
records that runc called it. This proves a ``--gpus`` request reaches the runtime with
NVIDIA_VISIBLE_DEVICES set; it does not prove that CUDA works, since no real GPU ran it."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.docker_engine import DockerEngine
from jupyter_mlbox.core.notebook import new_notebook_from_cells
from jupyter_mlbox.core.run import RunOptions, run_notebook
from jupyter_mlbox.errors import GPUUnavailableError

from .helpers import outputs

pytestmark = pytest.mark.docker

PROBE = "import os\nprint('visible:', os.environ.get('NVIDIA_VISIBLE_DEVICES'))"

HOOK = """#!/usr/bin/env python3
# Stand-in for the NVIDIA hook: record the call and the container's NVIDIA variables.
import json, sys
state = json.load(sys.stdin)
with open(state["bundle"] + "/config.json") as f:
    env = json.load(f)["process"].get("env", [])
with open({record!r}, "a") as out:
    out.write(json.dumps({{"args": sys.argv[1:],
                          "nvidia": [e for e in env if e.startswith("NVIDIA_")]}}) + "\\n")
"""


@pytest.fixture(scope="module")
def image(engine):
    plan = plan_image([PROBE], notebook_name="gpu-probe.ipynb", search_dir=None)
    return build_image(engine, plan).tag


@pytest.fixture(scope="module")
def gpu_daemon(image):
    """A second dockerd whose PATH has the stand-in hook; the image is loaded into it.

    It runs in a network namespace of its own with no bridge, so containers there use
    ``--network none``."""
    root = Path(tempfile.mkdtemp(prefix="/tmp/mlbox-gpu-"))
    (root / "bin").mkdir()
    record = root / "hook-calls.jsonl"
    hook = root / "bin" / "nvidia-container-runtime-hook"
    hook.write_text(HOOK.format(record=str(record)))
    hook.chmod(0o755)
    socket = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "w")
    # Its own network namespace: a second dockerd must not touch the host's docker0 bridge.
    daemon = subprocess.Popen(
        ["unshare", "--net", "--", "dockerd", "--host", socket, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
         "--bridge", "none", "--iptables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PATH": f"{root / 'bin'}:{os.environ['PATH']}"})
    try:
        for _ in range(60):
            try:
                second = DockerEngine.connect(socket)
                break
            except Exception:
                time.sleep(0.5)
        else:
            pytest.fail("the second dockerd did not start: " + (root / "dockerd.log").read_text())
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", socket, "load", "-q"], stdin=saved.stdout, check=True,
                       capture_output=True)
        saved.wait()
        yield second, record
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def printed(result) -> str:
    return "".join(o.get("text", "") for o in outputs(result.notebook))


def test_gpus_all_reaches_the_nvidia_runtime_hook(gpu_daemon, image):
    second, record = gpu_daemon
    result = run_notebook(second, image, new_notebook_from_cells([PROBE]),
                          options=RunOptions(gpus="all", network_mode="none"))
    assert result.gpu is True
    assert "visible: all" in printed(result)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls and calls[-1]["args"] == ["prestart"]
    assert "NVIDIA_VISIBLE_DEVICES=all" in calls[-1]["nvidia"]
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in calls[-1]["nvidia"]
    assert not second.list_containers("io.jupyter-mlbox.managed")


def test_gpus_auto_uses_the_gpu_where_the_daemon_has_support(gpu_daemon, image):
    second, _ = gpu_daemon
    assert second.gpu_support(image) is True
    events = []
    result = run_notebook(second, image, new_notebook_from_cells([PROBE]),
                          options=RunOptions(gpus="auto", network_mode="none"),
                          on_event=events.append)
    assert result.gpu is True and "visible: all" in printed(result)
    assert any("GPU support found" in e.message for e in events)


def test_gpus_all_without_nvidia_support_says_what_to_do(engine, image, no_leftover_containers):
    with pytest.raises(GPUUnavailableError) as info:
        run_notebook(engine, image, new_notebook_from_cells([PROBE]),
                     options=RunOptions(gpus="all"))
    message = str(info.value)
    assert "NVIDIA Container Toolkit" in message and "--gpus none" in message
    assert "could not select device driver" not in message


def test_gpus_auto_without_support_runs_on_cpu_and_says_so(engine, image,
                                                             no_leftover_containers):
    assert engine.gpu_support(image) is False
    events = []
    result = run_notebook(engine, image, new_notebook_from_cells([PROBE]),
                          options=RunOptions(gpus="auto"), on_event=events.append)
    assert result.gpu is False
    assert "visible: None" in printed(result)
    assert any("running on CPU" in e.message for e in events)

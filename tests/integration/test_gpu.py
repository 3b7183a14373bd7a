"""GPU requests. No GPU exists on these machines: a stand-in ``nvidia-container-runtime-hook``
on a second dockerd's PATH makes dockerd register its NVIDIA device driver, and the stand-in
records that runc called it. This proves a ``--gpus`` request reaches the runtime with
NVIDIA_VISIBLE_DEVICES set; it does not prove that CUDA works, since no real GPU ran it."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.notebook import new_notebook_from_cells
from jupyter_mlbox.core.run import RunOptions, run_notebook
from jupyter_mlbox.errors import GPUUnavailableError

from ..conftest import TEST_ENGINE, skip_on_podman
from .helpers import outputs
from .second_daemon import SecondDaemon

pytestmark = pytest.mark.docker
#: the stand-in hook is registered by a second dockerd; Podman's GPUs are CDI devices, and no
#: GPU (nor CDI spec) exists here to give one
NEEDS_DOCKERD = skip_on_podman("the stand-in NVIDIA hook runs under a second dockerd; "
                               "Podman would need a CDI spec and a GPU, none here")

PROBE = "import os\nprint('visible:', os.environ.get('NVIDIA_VISIBLE_DEVICES'))"

HOOK = """#!/usr/bin/env python3
# Stand-in for the NVIDIA hook: record the call and the container's NVIDIA variables, and put
# an nvidia-smi into the container as the real hook mounts the driver's (no GPU behind it).
import json, os, sys
state = json.load(sys.stdin)
with open(state["bundle"] + "/config.json") as f:
    config = json.load(f)
env = config["process"].get("env", [])
with open({record!r}, "a") as out:
    out.write(json.dumps({{"args": sys.argv[1:],
                          "nvidia": [e for e in env if e.startswith("NVIDIA_")]}}) + "\\n")
rootfs = os.path.join(state["bundle"], config["root"]["path"])
smi = os.path.join(rootfs, "usr", "bin", "nvidia-smi")
with open(smi, "w") as f:
    f.write("#!/bin/sh\\necho 'Stand-in GPU 80GB, 550.54.15, 81559 MiB'\\n")
os.chmod(smi, 0o755)
"""


@pytest.fixture(scope="module")
def image(engine):
    plan = plan_image([PROBE], notebook_name="gpu-probe.ipynb", search_dir=None)
    return build_image(engine, plan).tag


@pytest.fixture(scope="module")
def gpu_daemon(image):
    """A second dockerd whose PATH has the stand-in hook; the image is loaded into it. It has
    no bridge (second_daemon.py), so containers there use ``--network none``."""
    bin_dir = Path(tempfile.mkdtemp(prefix="/tmp/mlbox-gpu-"))
    record = bin_dir / "hook-calls.jsonl"
    hook = bin_dir / "nvidia-container-runtime-hook"
    hook.write_text(HOOK.format(record=str(record)))
    hook.chmod(0o755)
    daemon = SecondDaemon(path_prefix=bin_dir)
    try:
        second = daemon.start()
        daemon.load(image)
        yield second, record
    finally:
        daemon.stop()
        shutil.rmtree(bin_dir, ignore_errors=True)


def printed(result) -> str:
    return "".join(o.get("text", "") for o in outputs(result.notebook))


@NEEDS_DOCKERD
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
    # what the container saw is read inside it, and the notebook and the summary say it
    seen = [{"name": "Stand-in GPU 80GB", "driver": "550.54.15", "memory": "81559 MiB"}]
    assert result.notebook.metadata["mlbox"]["gpus_seen"] == seen
    assert result.gpus_seen == seen
    assert "on GPU (1× Stand-in GPU 80GB, driver 550.54.15)" in result.summary()


@NEEDS_DOCKERD
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
    if TEST_ENGINE == "podman":  # its Docker API drops DeviceRequests: the CDI name is refused
        assert "CDI device nvidia.com/gpu=all" in message and "nvidia-ctk cdi generate" in message
    else:
        assert "NVIDIA Container Toolkit" in message
    assert "--gpus none" in message
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

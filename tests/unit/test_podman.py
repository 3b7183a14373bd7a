"""What differs when Podman's Docker-compatible service answers instead of dockerd, decided
without a daemon. tests/integration runs against a real Podman service with
MLBOX_TEST_ENGINE=podman (scripts/ensure-podman.sh)."""
from __future__ import annotations

import json

import pytest

from jupyter_mlbox.core import doctor
from jupyter_mlbox.core.container_runner import oom_kills
from jupyter_mlbox.core.docker_engine import _STEP
from jupyter_mlbox.core.podman import (build_extra_hosts, engine_name_of, familiar_tag,
                                       gpu_cdi_devices)
from jupyter_mlbox.core.options import GpuRequest, RunOptions
from jupyter_mlbox.core.run import run_notebook
from jupyter_mlbox.errors import KernelDiedError

from ..conftest import notebook_node
from .memory_engine import Behaviour, MemoryEngine

#: /version answers as the two services here gave them (trimmed to what is read)
DOCKER_VERSION = {"Version": "20.10.24+dfsg1", "Components": [
    {"Name": "Engine", "Version": "20.10.24+dfsg1"}, {"Name": "containerd", "Version": "1.6.20"},
    {"Name": "runc", "Version": "1.1.5"}, {"Name": "docker-init", "Version": "0.19.0"}]}
PODMAN_VERSION = {"Version": "4.3.1", "ApiVersion": "1.41", "Components": [
    {"Name": "Podman Engine", "Version": "4.3.1"}, {"Name": "Conmon", "Version": "2.1.6"},
    {"Name": "OCI Runtime (runc)", "Version": "runc version 1.1.5+ds1"}]}


def test_the_engine_is_told_apart_by_its_version_components():
    assert engine_name_of(PODMAN_VERSION) == "Podman"
    assert engine_name_of(DOCKER_VERSION) == "Docker"
    assert engine_name_of({"Version": "24.0.7"}) == "Docker"  # no Components: an old dockerd


def test_build_extra_hosts_is_a_json_list_for_podman_and_pairs_for_dockerd():
    hosts = {"mlbox-build-abc": "127.0.0.1"}
    assert json.loads(build_extra_hosts(hosts, podman=True)) == ["mlbox-build-abc:127.0.0.1"]
    assert build_extra_hosts(hosts, podman=False) == hosts  # docker-py formats it for dockerd


@pytest.mark.parametrize("line, expected", [
    ("Step 2/9 : RUN pip install x", ("2", "9", "RUN pip install x")),  # dockerd
    ("STEP 2/9: RUN pip install x", ("2", "9", "RUN pip install x")),  # Podman (buildah)
])
def test_build_steps_are_read_in_both_builders_words(line, expected):
    assert _STEP.match(line).groups() == expected


def test_podman_gpu_requests_are_cdi_device_names():
    assert gpu_cdi_devices(GpuRequest.parse("all")) == ["nvidia.com/gpu=all"]
    assert gpu_cdi_devices(GpuRequest.parse("auto")) == ["nvidia.com/gpu=all"]
    assert gpu_cdi_devices(GpuRequest.parse("2")) == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    assert gpu_cdi_devices(GpuRequest.parse("device=1,GPU-ab12")) == [
        "nvidia.com/gpu=1", "nvidia.com/gpu=GPU-ab12"]
    assert gpu_cdi_devices(GpuRequest.parse("none")) == []


def test_podman_qualified_tags_are_shown_as_dockerd_shows_them():
    assert familiar_tag("docker.io/mlbox/np:5646918f19b2") == "mlbox/np:5646918f19b2"
    assert familiar_tag("docker.io/library/python:3.11-slim") == "python:3.11-slim"
    assert familiar_tag("localhost/python:3.11-slim") == "python:3.11-slim"
    assert familiar_tag("ghcr.io/me/x:1") == "ghcr.io/me/x:1"
    assert familiar_tag("127.0.0.1:5000/x:1") == "127.0.0.1:5000/x:1"


def test_oom_kills_are_read_from_cgroup_v1_and_v2(tmp_path):
    v1 = tmp_path / "memory.oom_control"
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    v2 = tmp_path / "memory.events"
    v2.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n")
    assert oom_kills((str(tmp_path / "missing"), str(v1))) == 1
    assert oom_kills((str(v2), str(v1))) == 2
    assert oom_kills((str(tmp_path / "missing"),)) is None


def test_a_kernel_the_runner_saw_killed_for_memory_is_reported_as_oom():
    """Podman's inspect says OOMKilled false when the OOM killer ended the kernel (a child of
    the runner); the runner's own word (metadata oom_killed) is enough."""
    engine = MemoryEngine(images=("mlbox/t:1",))
    behaviour = Behaviour.kernel_died(0)
    behaviour.outcome["oom_killed"] = True
    engine.next_run = behaviour
    with pytest.raises(KernelDiedError, match=r"ran out of memory \(limit 96m\)"):
        run_notebook(engine, "mlbox/t:1", notebook_node(["x = 1"]), name="n.ipynb",
                     options=RunOptions(memory="96m"))


class _PodmanMemoryEngine(MemoryEngine):
    engine_name = "Podman"

    def version(self) -> str:
        return "4.3.1"


@pytest.mark.parametrize("engine, named", [
    (_PodmanMemoryEngine(images=("python:3.11-slim",)), "Podman 4.3.1"),
    (MemoryEngine(images=("python:3.11-slim",)), "Docker memory"),
])
def test_doctor_names_the_engine_it_talks_to(monkeypatch, engine, named):
    monkeypatch.setattr(doctor, "connect", lambda host=None: engine)
    checks = doctor.diagnose("python:3.11-slim")
    [daemon] = [c for c in checks if c.name == doctor.DAEMON]
    assert daemon.ok and daemon.detail.startswith(f"{named} (local: memory://")
    assert daemon.facts["engine"] == named.split()[0]
    [gpu] = [c for c in checks if c.name == doctor.GPU]
    assert ("nvidia-ctk cdi generate" in gpu.detail) == (named.startswith("Podman"))


def test_loopback_registries_are_told_apart():
    from jupyter_mlbox.core.podman import loopback_registry

    assert loopback_registry("127.0.0.1:5000/mlbox/x:1")
    assert loopback_registry("localhost:5000/x")
    assert loopback_registry("[::1]:5000/x:1") and loopback_registry("127.0.0.1/x")
    assert not loopback_registry("registry.example.com/x:1")
    assert not loopback_registry("mlbox/x:1") and not loopback_registry("python:3.11-slim")

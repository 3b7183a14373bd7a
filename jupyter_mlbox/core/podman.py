"""What differs when the Docker-compatible API is Podman's (``podman system service``).

Checked against rootful Podman 4.3 on Debian 12; each difference is handled where the engine
talks to the API (docker_engine.py) with the helpers here:

- GPUs are CDI devices (``nvidia.com/gpu=all``); the compat API drops DeviceRequests silently;
- the build API reads ``extrahosts`` as a JSON list, not dockerd's ``name:ip`` form;
- image tags come back qualified (``docker.io/…``, ``localhost/…``);
- the engine's name is in ``/version``'s Components.
"""
from __future__ import annotations

from typing import Mapping

from .options import GpuRequest


#: Podman names GPUs by CDI (``podman run --device nvidia.com/gpu=all``). Its Docker-compatible
#: API (4.3, checked) drops DeviceRequests without a word, so a ``--gpus all`` run would go on
#: the CPU while saying it had GPUs; a CDI name in HostConfig.Devices is either given or refused.
CDI_GPU = "nvidia.com/gpu"
PODMAN_GPU_HELP = (
    "GPUs were requested but this Podman service did not accept the CDI device {device}: "
    "generate the NVIDIA CDI spec on the Podman host (sudo nvidia-ctk cdi generate "
    "--output=/etc/cdi/nvidia.yaml; `podman run --device nvidia.com/gpu=all …` must work), "
    "note that Podman's Docker-compatible API may not resolve CDI names at all (Podman 4.3 "
    "does not), or run with --gpus none (or --gpus auto to use a GPU only when there is one). "
    "[{reason}]")


def gpu_cdi_devices(gpus: GpuRequest) -> list[str]:
    """A GPU request as Podman's CDI device names (``auto``: all of them; a count: the first
    ones by index, as ``nvidia-ctk cdi generate`` names them)."""
    gpus = GpuRequest.parse(gpus)
    if gpus.mode in {"all", "auto"}:
        return [f"{CDI_GPU}=all"]
    if gpus.mode == "count":
        return [f"{CDI_GPU}={index}" for index in range(gpus.count)]
    if gpus.mode == "devices":
        return [f"{CDI_GPU}={device}" for device in gpus.devices]
    return []


def cdi_refused(text: str) -> bool:
    """Whether Podman refused a CDI device ("stat nvidia.com/gpu=all: no such file",
    "unresolvable CDI devices …")."""
    return CDI_GPU in text or "CDI" in text


def engine_name_of(version: dict) -> str:
    """"Podman" or "Docker", from a daemon's /version answer."""
    components = version.get("Components") or []
    if any("podman" in str(c.get("Name", "")).lower() for c in components):
        return "Podman"
    return "Docker"


def familiar_tag(tag: str) -> str:
    """``mlbox/x:1`` for Podman's fully qualified ``docker.io/mlbox/x:1``, ``localhost/…``
    or ``docker.io/library/…`` (the names dockerd and a user's commands use)."""
    for prefix in ("docker.io/library/", "docker.io/", "localhost/"):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def loopback_registry(ref: str) -> bool:
    """Whether ``ref`` names a registry on this machine's loopback (127.0.0.1:5000/x:1)."""
    first, _, rest = ref.partition("/")
    if not rest:
        return False
    host = first[:first.find("]") + 1] if first.startswith("[") else first.split(":")[0]
    return host in {"localhost", "[::1]"} or host.startswith("127.")


def build_extra_hosts(hosts: Mapping[str, str], podman: bool):
    """The build API's ``extrahosts`` parameter: dockerd reads "name:ip" values, Podman's
    compat service a JSON list (it answers 400 Bad Request to dockerd's form)."""
    import json

    pairs = [f"{name}:{ip}" for name, ip in hosts.items()]
    return json.dumps(pairs) if podman else dict(hosts)

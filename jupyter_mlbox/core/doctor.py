"""What works and what doesn't: the one set of checks behind ``jupyter mlbox doctor``,
``%mlbox status`` and the panel's status (``GET /mlbox/api/status``)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from ..errors import MlboxError
from .dockerfile import default_base_image
from .engine import Engine, connect
from .pip_settings import host_pip_settings

DAEMON, BASE_IMAGE, GPU, PIP = ("docker daemon", "base image", "GPU runtime",
                                "pip settings for builds")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None
    detail: str
    required: bool = True
    #: what a status view shows beside the sentence (host, version, image name …)
    facts: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'NO '} {self.name}: {self.detail}"


def diagnose(base_image: str | None = None, *, host: str | None = None,
             gpu_support: Callable[[Engine, str], bool] | None = None) -> list[Check]:
    """Run every check; never raises for a failed check, it reports it.

    ``host`` is the daemon to check (default: what ``DOCKER_HOST`` or the docker context
    names, else the local socket: docker_endpoint.py);
    ``gpu_support`` lets a front end use its cached GPU probe (the probe starts a container)."""
    base_image = base_image or default_base_image()
    checks = []
    where = host or os.environ.get("DOCKER_HOST")
    try:
        engine = connect(host)
    except MlboxError as err:
        checks.append(Check(DAEMON, False, str(err),
                            facts={"host": where or "unix:///var/run/docker.sock"}))
        checks.append(Check(BASE_IMAGE, None, "unknown: no daemon", facts={"name": base_image}))
        return checks + _pip_checks()
    version = engine.version()
    kind = "local" if engine.is_local else "remote"
    chosen_by = getattr(engine, "chosen_by", "")
    ssh = ""
    if engine.host.startswith("ssh://"):
        from .docker_endpoint import ssh_client

        ssh = f"; over ssh with {ssh_client() or 'no ssh client'}"
    name = engine.engine_name  # "Docker", or "Podman" behind the same API
    checks.append(Check(DAEMON, True, f"{name} {version} ({kind}: {engine.host}, chosen by "
                                      f"{chosen_by}{ssh})",
                        facts={"host": engine.host, "local": engine.is_local,
                               "engine": name, "version": version, "chosen_by": chosen_by}))
    if engine.image_exists(base_image):
        checks.append(Check(BASE_IMAGE, True, f"{base_image} is present",
                            facts={"name": base_image, "present": True}))
    else:
        pullable, why = engine.pullable(base_image)
        checks.append(Check(
            BASE_IMAGE, pullable,
            f"{base_image} is not on the daemon but its registry serves it: the first "
            f"build pulls it" if pullable else
            f"{base_image} is not on the daemon and cannot be pulled ({why}); load it, or "
            f"make one offline with scripts/ensure-base-image.sh",
            facts={"name": base_image, "present": False}))
    try:
        gpu = (gpu_support or (lambda e, image: e.gpu_support(image)))(engine, base_image)
    except MlboxError as err:
        checks.append(Check(GPU, None, str(err), required=False))
    else:
        checks.append(Check(GPU, gpu, "NVIDIA device driver registered: --gpus works" if gpu
                            else "no NVIDIA support: runs use the CPU (" + (
                                "generate the NVIDIA CDI spec, nvidia-ctk cdi generate, "
                                "for --gpus; Podman's Docker API may not take it"
                                if name == "Podman" else
                                "install the NVIDIA Container Toolkit for --gpus") + ")",
                            required=False))
    return checks + _pip_checks()


def _pip_checks() -> list[Check]:
    pip = host_pip_settings()
    return [Check(PIP, True, "; ".join(pip.describe()))] + [
        Check(PIP, False, warning, required=False) for warning in pip.warnings]


def healthy(checks: list[Check]) -> bool:
    return all(c.ok or not c.required for c in checks)


def status(checks: list[Check]) -> dict:
    """The checks as the JSON the panel shows."""
    by_name = {c.name: c for c in checks}
    daemon, base, gpu = by_name[DAEMON], by_name[BASE_IMAGE], by_name.get(GPU)
    return {
        "daemon": {"ok": bool(daemon.ok), "detail": "" if daemon.ok else daemon.detail,
                   **daemon.facts},
        "base_image": {"name": base.facts.get("name"), "present": base.facts.get("present")},
        "gpu": gpu.ok if gpu is not None else None,
        "gpu_detail": gpu.detail if gpu is not None and gpu.ok is None else "",
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "required": c.required}
                   for c in checks],
    }

"""What works and what doesn't: the checks behind ``jupyter mlbox doctor`` and status views."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import MlboxError
from .dockerfile import default_base_image
from .pip_settings import host_pip_settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def diagnose(base_image: str | None = None) -> list[Check]:
    """Run every check; never raises for a failed check, it reports it."""
    from .engine import DockerEngine

    base_image = base_image or default_base_image()
    checks = []
    where = os.environ.get("DOCKER_HOST")
    try:
        engine = DockerEngine.connect()
    except MlboxError as err:
        checks.append(Check("docker daemon", False, str(err)))
        engine = None
    else:
        kind = f"remote, DOCKER_HOST={where}" if where and not engine.is_local else "local"
        checks.append(Check("docker daemon", True, f"Docker {engine.version()} ({kind}: "
                                                   f"{engine.host})"))
    if engine is not None:
        if engine.image_exists(base_image):
            checks.append(Check("base image", True, f"{base_image} is present"))
        else:
            pullable, why = engine.pullable(base_image)
            checks.append(Check(
                "base image", pullable,
                f"{base_image} is not on the daemon but its registry serves it: the first "
                f"build pulls it" if pullable else
                f"{base_image} is not on the daemon and cannot be pulled ({why}); load it, or "
                f"make one offline with scripts/ensure-base-image.sh"))
        try:
            gpu = engine.gpu_support(base_image)
        except MlboxError as err:
            checks.append(Check("GPU runtime", False, str(err), required=False))
        else:
            checks.append(Check("GPU runtime", gpu, "NVIDIA device driver registered: --gpus "
                                "works" if gpu else "no NVIDIA support: runs use the CPU "
                                "(install the NVIDIA Container Toolkit for --gpus)",
                                required=False))
    pip = host_pip_settings()
    checks.append(Check("pip settings for builds", True, "; ".join(pip.describe())))
    for warning in pip.warnings:
        checks.append(Check("pip settings for builds", False, warning, required=False))
    return checks


def status(base_image: str | None = None) -> dict:
    """The same checks as a JSON-able dict, for the server and ``%mlbox status``."""
    checks = diagnose(base_image)
    by_name = {c.name: c for c in checks}
    daemon = by_name["docker daemon"]
    return {
        "daemon": {"ok": daemon.ok, "detail": daemon.detail,
                   "remote": bool(os.environ.get("DOCKER_HOST"))},
        "base_image": {"name": base_image or default_base_image(),
                       "ok": by_name.get("base image", Check("", False, "")).ok},
        "gpu": by_name.get("GPU runtime", Check("", False, "")).ok,
        "checks": [c.__dict__ for c in checks],
    }

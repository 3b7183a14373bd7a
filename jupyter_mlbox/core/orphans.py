"""Containers whose owner is gone: found by the owner's labels, removed at the next start.

Every run's container carries who made it (host name, pid, the process's start time) and its
own run id. A process killed with SIGKILL, or a daemon restart under a live run, leaves the
container behind (the runner inside stops once its stdin from the owner closes, see
container_runner.py); the next ``jupyter mlbox`` command, ``%load_ext jupyter_mlbox`` or server
start removes those whose owner process is really gone on this host. A container of another
host, or of a live process (even one that reused the pid: the start time tells them apart), is
never touched.
"""
from __future__ import annotations

import os
import socket
import uuid
from typing import Callable

from .dockerfile import LABEL_PREFIX, MANAGED_LABEL
from .engine import ContainerHandle, Engine

OWNER_HOST_LABEL = f"{LABEL_PREFIX}.owner-host"
OWNER_PID_LABEL = f"{LABEL_PREFIX}.owner-pid"
OWNER_START_LABEL = f"{LABEL_PREFIX}.owner-start"
#: One id per run (per container): cancelling removes this run's container, never another's.
RUN_ID_LABEL = f"{LABEL_PREFIX}.run-id"


def process_start(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); "" where there is
    no /proc, or no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    fields = text[text.rfind(")") + 2:].split()  # the name in (…) may hold spaces
    return fields[19] if len(fields) > 19 else ""


def owner_labels() -> dict[str, str]:
    """The labels that say this process made a container, and a fresh run id."""
    pid = os.getpid()
    return {OWNER_HOST_LABEL: socket.gethostname(), OWNER_PID_LABEL: str(pid),
            OWNER_START_LABEL: process_start(pid), RUN_ID_LABEL: uuid.uuid4().hex[:16]}


def owner_gone(labels: dict[str, str]) -> bool:
    """Whether the process named by ``labels`` is gone from this host (False for a container
    of another host, or one without owner labels: not ours to judge)."""
    if labels.get(OWNER_HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(OWNER_PID_LABEL, ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return labels.get(OWNER_START_LABEL, "") != process_start(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = labels.get(OWNER_START_LABEL, "")
    return bool(started) and started != process_start(pid)  # the pid was reused


def orphans(engine: Engine) -> list[ContainerHandle]:
    """jupyter_mlbox's containers on ``engine`` whose owner process on this host is gone."""
    return [container for container in engine.list_containers(f"{MANAGED_LABEL}=true")
            if owner_gone(dict(container.labels or {}))]


def reap_orphans(engine: Engine, on_removed: Callable[[ContainerHandle], None] | None = None
                 ) -> list[ContainerHandle]:
    """Remove the orphans (running or exited); return them."""
    removed = []
    for container in orphans(engine):
        engine.remove_container(container)
        removed.append(container)
        if on_removed is not None:
            on_removed(container)
    return removed


def reap_quietly(engine_factory: Callable[[], Engine] | None = None) -> int:
    """``reap_orphans`` as front ends call it at start: never an error (no daemon, a daemon
    that refuses), the number removed."""
    from ..errors import MlboxError

    try:
        if engine_factory is None:
            from .engine import connect

            engine_factory = connect
        return len(reap_orphans(engine_factory()))
    except (MlboxError, OSError):
        return 0

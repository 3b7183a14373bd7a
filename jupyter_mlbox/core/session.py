"""A session: one container with a live kernel, driven cell by cell, so state survives.

Still the nbformat round trip of run.py, over the Docker API only (no ports, no bind mounts):
each cell goes in as a one-cell notebook, session_runner.py runs it on its kernel, and the
executed notebook comes back. The notebooks travel on the container's attached stdin and
output stream (an archive copy each way costs dockerd ~40 ms, the stream ~1 ms); with an
engine that cannot write stdin they go by ``put_archive``/``get_archive``. The runner's JSON
lines carry each output live and say when a cell is done. The container
carries its owner's labels (orphans.py reaps it when the owner is gone) and stops by itself
when its stdin from here closes or after ``idle`` seconds without a cell.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import nbformat
from nbformat import NotebookNode

from ..errors import (CellExecutionError, ContainerExitError,
                      KernelDiedError, MlboxError, UserCancelledError)
from .dockerfile import LABEL_PREFIX, MANAGED_LABEL, NOTEBOOK_LABEL, RUNNER, WORKDIR
from .engine import ContainerHandle, Engine
from .events import CancelToken, ProgressCallback, ProgressEvent, ignore_progress, strip_ansi
from .options import NO_GPUS, RunOptions
from .orphans import OWNER_HOST_LABEL, OWNER_PID_LABEL, RUN_ID_LABEL, owner_labels
from .container_runner import MARK
from .run import started_or_cpu
from .session_runner import EXIT_IDLE

SESSION_LABEL = f"{LABEL_PREFIX}.session"
SESSION_KEY_LABEL = f"{LABEL_PREFIX}.session-key"
#: What ``list_sessions`` shows of a session started by any process (labels are all it reads).
SESSION_IMAGE_LABEL = f"{LABEL_PREFIX}.session-image"
SESSION_STARTED_LABEL = f"{LABEL_PREFIX}.session-started"  # epoch seconds
SESSION_GPUS_LABEL = f"{LABEL_PREFIX}.session-gpus"  # --gpus as given: none, all, 2, device=0
SESSION_IDLE_LABEL = f"{LABEL_PREFIX}.session-idle"  # the idle timeout, seconds (0: none)
SESSION_RUNNER = str(Path(RUNNER).with_name("session_runner.py"))
SESSION_DIR = f"{WORKDIR}/.mlbox-session"
#: A session stops by itself after this many seconds without a cell.
DEFAULT_IDLE = 3600
#: Seconds the kernel in a new container may take to start.
START_TIMEOUT = 120

#: Called with each output as it is made, and the index of the cell (of the cell notebook)
#: that made it; a clear is ``{"output_type": "clear_output", "wait": bool}``.
Output = Callable[[dict, int], None]


def session_key(name: str, notebook: str, owner: Mapping[str, str] | None = None) -> str:
    """Who a session belongs to: its name within one notebook of one owner process. Two
    notebooks (two kernels) never share a session by accident."""
    owner = owner or owner_labels()
    return "/".join([owner.get(OWNER_HOST_LABEL, ""), owner.get(OWNER_PID_LABEL, ""),
                     notebook, name])


@dataclass
class SessionCellResult:
    """An executed cell notebook and how it went (``metadata.mlbox`` of the runner)."""

    notebook: NotebookNode
    status: str
    seconds: float
    fresh_kernel: bool = False  # the kernel had died: this cell ran on a new one
    streamed: int = 0  # outputs the runner wrote live
    received: int = 0  # of those, how many reached on_output
    outcome: dict = field(default_factory=dict)

    @property
    def failed_cell(self) -> int | None:
        cell = self.outcome.get("failed_cell")
        return cell if isinstance(cell, int) else None

    def raise_for_status(self, image: str | None = None) -> None:
        """CellExecutionError (an interrupt too: KeyboardInterrupt in the container) or
        KernelDiedError, with the executed notebook."""
        if self.status == "ok":
            return
        where = f"cell {self.failed_cell + 1}" if self.failed_cell is not None else "a cell"
        common = dict(notebook=self.notebook, ename=self.outcome.get("ename", ""),
                      evalue=str(self.outcome.get("evalue", "")),
                      traceback=strip_ansi(self.outcome.get("traceback") or ""),
                      failed_cell=self.failed_cell, image=image)
        if self.status == "kernel-died":
            raise KernelDiedError(
                f"the session's kernel died while running {where} (os._exit, a crash or out of "
                f"memory); the next cell runs on a fresh kernel in the same container: the "
                f"state of earlier cells is lost", **common)
        raise CellExecutionError(f"{where} raised {common['ename']}: {common['evalue']}",
                                 **common)


@dataclass
class SessionInfo:
    """A session as the daemon lists it (any process's), read from its container's labels.
    ``idle_s`` is known only for a session of this process (the cells go through it)."""

    name: str
    notebook: str
    container: ContainerHandle
    image: str = ""
    created: str = ""
    status: str = ""
    idle_s: int | None = None
    #: Bytes of memory its container uses (list_sessions(memory=True)); None: not asked.
    memory: int | None = None

    def _label(self, label: str) -> str:
        return (self.container.labels or {}).get(label, "")

    @property
    def owner_pid(self) -> str:
        return self._label(OWNER_PID_LABEL)

    @property
    def owner_host(self) -> str:
        return self._label(OWNER_HOST_LABEL)

    @property
    def key(self) -> str:
        return self._label(SESSION_KEY_LABEL)

    @property
    def gpus(self) -> str:
        return self._label(SESSION_GPUS_LABEL) or "none"

    @property
    def started(self) -> float | None:
        try:
            return float(self._label(SESSION_STARTED_LABEL))
        except ValueError:
            return None

    @property
    def age_s(self) -> int | None:
        return None if self.started is None else max(0, round(time.time() - self.started))

    @property
    def idle_timeout_s(self) -> float | None:
        try:
            return float(self._label(SESSION_IDLE_LABEL)) or None
        except ValueError:
            return None

    def describe(self) -> dict:
        """The fields every front end lists (CLI, REST, panel); None where unknown."""
        return {"key": self.key, "name": self.name, "notebook": self.notebook,
                "image": self.image, "container": self.container.short_id,
                "gpus": self.gpus, "age_s": self.age_s, "idle_s": self.idle_s,
                "idle_timeout_s": self.idle_timeout_s, "owner_pid": self.owner_pid,
                "owner_host": self.owner_host, "memory_bytes": self.memory}


class _Waiter:
    def __init__(self, on_output: Output | None) -> None:
        self.on_output, self.done, self.event, self.received = on_output, None, \
            threading.Event(), 0


class Session:
    """A running session container (removed by the daemon once it exits: idle, its owner
    gone). Start one with :meth:`start`."""

    def __init__(self, engine: Engine, container: ContainerHandle, *, name: str,
                 notebook: str, image: str, gpus: bool, idle: float | None) -> None:
        self.engine, self.container, self.name, self.notebook = engine, container, name, notebook
        self.image, self.gpus, self.idle = image, gpus, idle
        self.started = time.time()
        self.last_used = self.started
        self.cells = 0
        self.ended: str | None = None  # why the container's output ended, once it did
        self.log: list[str] = []  # its lines that were not for the host (the last 200)
        #: the top-level modules its image can import (sent when ready; image_modules.py)
        self.modules: frozenset[str] = frozenset()
        self._ready = threading.Event()
        self._waiters: dict[str, _Waiter] = {}
        self._lock = threading.Lock()
        self._stop_following: Callable[[], None] = lambda: None
        _LIVE[container.id] = self

    # --- starting ------------------------------------------------------------------------------

    @classmethod
    def start(cls, engine: Engine, image: str, *, name: str, notebook: str,
              files: Mapping[str, bytes] | None = None, options: RunOptions = RunOptions(),
              idle: float | None = DEFAULT_IDLE, on_event: ProgressCallback = ignore_progress,
              cancel: CancelToken | None = None) -> "Session":
        """A container of ``image`` with a started kernel, ``files`` in its work directory.
        ``--gpus auto`` falls back to the CPU when the daemon has no GPU support."""
        runner = Path(__file__).with_name("session_runner.py").read_bytes()
        command = ["python", SESSION_RUNNER, "--dir", SESSION_DIR, "--workdir", WORKDIR,
                   "--idle", str(idle or 0)]
        owner = owner_labels()
        labels = {MANAGED_LABEL: "true", NOTEBOOK_LABEL: notebook, SESSION_LABEL: name,
                  SESSION_KEY_LABEL: session_key(name, notebook, owner),
                  SESSION_IMAGE_LABEL: image, SESSION_STARTED_LABEL: f"{time.time():.0f}",
                  SESSION_IDLE_LABEL: f"{idle or 0:g}", **owner}
        gpus = options.gpus
        while True:
            on_event(ProgressEvent("starting", "phase", f"starting session {name!r} in {image}"))
            container = engine.create_container(
                image, command, environment=options.env,
                labels={**labels, SESSION_GPUS_LABEL: str(gpus)}, gpus=gpus,
                memory=options.memory, cpus=options.cpus, shm_size=options.shm_size,
                network_mode=options.network_mode, auto_remove=True)
            session = cls(engine, container, name=name, notebook=notebook, image=image,
                          gpus=gpus.requested, idle=idle)
            try:
                modules = Path(__file__).with_name("image_modules.py").read_bytes()
                engine.put_files(container, str(Path(RUNNER).parent), {
                    Path(SESSION_RUNNER).name: runner, "image_modules.py": modules})
                if files:
                    engine.put_files(container, WORKDIR, dict(files))
                session._stop_following = engine.follow(container, session._on_line)
                if not started_or_cpu(engine, container, gpus, on_event):
                    session.stop()
                    gpus = NO_GPUS
                    continue
                session._wait_ready(cancel)
            except BaseException:
                session.stop()
                raise
            on_event(ProgressEvent("done", "phase", f"session {name!r} started"))
            return session

    def _wait_ready(self, cancel: CancelToken | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.05):
            if self.ended is not None or time.monotonic() > deadline:
                logs = self.engine.logs(self.container)
                raise ContainerExitError(
                    f"the session's kernel did not start"
                    f"{'' if self.ended else f' within {START_TIMEOUT} s'}; the container's "
                    f"last output:\n{logs.strip()[-2000:]}", logs=logs)
            if cancel is not None and cancel.cancelled:
                raise UserCancelledError("session start cancelled; the container was removed")

    # --- the runner's lines --------------------------------------------------------------------

    def _on_line(self, line: str | None) -> None:
        if line is None:  # the container's output ended: it stopped; nothing is left
            self.ended = self.ended or "the container stopped"
            try:
                self.engine.remove_container(self.container)
            except MlboxError:
                pass
            with self._lock:
                waiters = list(self._waiters.values())
            for waiter in waiters:
                waiter.event.set()
            return
        start = line.find(MARK)
        if start < 0:
            self.log = (self.log + [line])[-200:]
            return
        try:
            message = json.loads(line[start + len(MARK):])
        except ValueError:
            return
        event = message.get("event")
        if event == "ready":
            self.modules = frozenset(message.get("modules") or ())  # what its image imports
            self._ready.set()
            return
        if event == "idle-exit":
            self.ended = f"it was idle for {self.idle:g} s"
            return
        with self._lock:
            waiter = self._waiters.get(message.get("id", ""))
        if waiter is None:
            return
        if event in {"output", "clear"}:
            if event == "output":
                waiter.received += 1
            if waiter.on_output is not None:
                waiter.on_output(message.get("output") if event == "output"
                                 else {"output_type": "clear_output",
                                       "wait": message.get("wait", False)},
                                 message.get("cell", 0))
        elif event == "done":
            waiter.done = message
            waiter.event.set()

    # --- cells ---------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.ended is None

    def run_cell(self, cells: list[str] | NotebookNode, *, files: Mapping[str, bytes] | None = None,
                 on_output: Output | None = None,
                 cancel: CancelToken | None = None) -> SessionCellResult:
        """Run ``cells`` (the code cells of one notebook, in order, stopping at the first that
        raises) on the session's kernel. ``files`` go to the work directory first. Outputs
        reach ``on_output`` as they are made (a ``clear_output`` too). Cancelling interrupts
        the kernel (SIGINT to its process) and waits for the cell to end: state is kept.
        Raises ContainerExitError when the session's container is gone."""
        from .notebook import new_notebook_from_cells

        self._check_alive()
        nb = cells if isinstance(cells, NotebookNode) else new_notebook_from_cells(list(cells))
        cell_id = uuid.uuid4().hex[:12]
        waiter = _Waiter(on_output)
        with self._lock:
            self._waiters[cell_id] = waiter
        started = time.monotonic()
        try:
            if files:
                self.engine.put_files(self.container, WORKDIR, dict(files))
            if not self.engine.send_line(self.container, f"cell {cell_id} {json.dumps(nb)}"):
                self.engine.put_files(self.container, WORKDIR, {
                    f"{SESSION_DIR[len(WORKDIR) + 1:]}/in/{cell_id}.ipynb":
                        nbformat.writes(nb).encode()})
            interrupted = False
            while not waiter.event.wait(0.01 if cancel is None else 0.005):
                if cancel is not None and cancel.cancelled and not interrupted:
                    interrupted = True
                    self.interrupt(cell_id)
            if waiter.done is None:
                self._check_alive()
            returned = (waiter.done or {}).get("notebook")
            data = None if returned is not None else self.engine.get_file(
                self.container, f"{SESSION_DIR}/out/{cell_id}.ipynb")
        finally:
            with self._lock:
                self._waiters.pop(cell_id, None)
        if returned is None and data is None:
            raise ContainerExitError(f"session {self.name!r}: the runner wrote no result for "
                                     f"the cell; its last output:\n"
                                     + "\n".join(self.log[-20:]))
        executed = nbformat.from_dict(returned) if returned is not None \
            else nbformat.reads(data.decode(), as_version=4)
        outcome = dict(executed.metadata.get("mlbox", {}))
        self.cells += 1
        self.last_used = time.time()
        return SessionCellResult(executed, outcome.get("status", "ok"),
                                 time.monotonic() - started,
                                 fresh_kernel=bool(outcome.get("fresh_kernel")),
                                 streamed=int(outcome.get("streamed", 0)),
                                 received=waiter.received, outcome=outcome)

    def interrupt(self, cell_id: str) -> None:
        """SIGINT to the kernel in the container while ``cell_id`` runs (not to the
        container: the session and its state stay)."""
        if not self.engine.send_line(self.container, f"interrupt {cell_id}"):
            self.engine.put_files(self.container, WORKDIR, {
                f"{SESSION_DIR[len(WORKDIR) + 1:]}/in/{cell_id}.interrupt": b""})

    def _check_alive(self) -> None:
        if self.ended is not None:
            raise ContainerExitError(
                f"session {self.name!r} has ended ({self.ended}); the next --session cell "
                f"starts a new one (earlier state is gone)"
                + ("; its last output:\n" + "\n".join(self.log[-20:]) if self.log else ""))

    # --- ending --------------------------------------------------------------------------------

    def stop(self, wait: float = 10) -> None:
        """Remove the container (quiet when it is gone already), waiting up to ``wait``
        seconds until the daemon lists it no more (its auto-removal may be under way)."""
        self.ended = self.ended or "it was stopped"
        self._stop_following()
        run_id = (self.container.labels or {}).get(RUN_ID_LABEL)
        deadline = time.monotonic() + wait
        try:
            self.engine.remove_container(self.container)
            while run_id and time.monotonic() < deadline and \
                    self.engine.list_containers(f"{RUN_ID_LABEL}={run_id}"):
                time.sleep(0.05)
        except MlboxError:
            pass

    def describe(self) -> dict:
        return {"name": self.name, "notebook": self.notebook, "image": self.image,
                "container": self.container.short_id, "gpus": self.gpus,
                "age_s": round(time.time() - self.started),
                "idle_s": round(time.time() - self.last_used), "cells": self.cells,
                "alive": self.alive}


#: This process's sessions by container id: their idle time is known here.
_LIVE: "weakref.WeakValueDictionary[str, Session]" = weakref.WeakValueDictionary()


def list_sessions(engine: Engine, *, memory: bool = False) -> list[SessionInfo]:
    """Every jupyter_mlbox session container on ``engine`` (any owner's), oldest first;
    ``memory``: with what each uses now (one stats call per container)."""
    found = []
    for container in engine.list_containers(SESSION_LABEL):
        labels = dict(container.labels or {})
        if labels.get(MANAGED_LABEL) != "true":
            continue
        mine = _LIVE.get(container.id)
        found.append(SessionInfo(
            labels.get(SESSION_LABEL, ""), labels.get(NOTEBOOK_LABEL, ""), container,
            image=labels.get(SESSION_IMAGE_LABEL, ""),
            created=labels.get(SESSION_STARTED_LABEL, ""),
            idle_s=round(time.time() - mine.last_used) if mine is not None else None,
            memory=engine.memory_usage(container) if memory else None))
    return sorted(found, key=lambda info: (info.started or 0, info.key))


def stop_sessions(engine: Engine, key_or_name: str | None = None, *,
                  by_name: bool = True) -> list[SessionInfo]:
    """Remove the session containers whose key, container id (short or full) or, with
    ``by_name``, name is ``key_or_name`` (all of them when None); return them. A name may
    match several notebooks' sessions; a key (``SessionInfo.key``) only one."""
    stopped = []
    for info in list_sessions(engine):
        ids = {info.key, info.container.id, info.container.short_id} | (
            {info.name} if by_name else set())
        if key_or_name is None or key_or_name in ids - {""}:
            engine.remove_container(info.container)
            stopped.append(info)
    return stopped


__all__ = ["DEFAULT_IDLE", "EXIT_IDLE", "Session", "SessionCellResult", "SessionInfo",
           "list_sessions", "session_key", "stop_sessions"]

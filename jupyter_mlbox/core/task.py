"""A task: core work in a worker thread, its progress in one state, cancellable.

The one abstraction behind a ``%%mlbox`` cell, a ``%mlbox build|run`` and a server job. The
work is ``work(emit, cancel) -> result``: the core's blocking calls (docker, files) run off the
caller's thread, which stays free to render progress, take a Stop click or an interrupt.

Waiting comes in two forms that share one step (:meth:`Task.pump`): ``await task.run_async()``
on an event loop (ipykernel's: widget messages keep flowing) and ``task.run()`` blocking (plain
IPython, ``ip.run_cell_magic``; Ctrl-C cancels). The blocking form is not
``run_sync(run_async)``: a synchronous magic inside ipykernel already runs on a live event loop,
where a second loop cannot be started without patching asyncio.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any, Callable

from ..errors import UserCancelledError
from .events import CancelToken, ProgressCallback, ProgressEvent, ProgressState
from .trace import own_work

#: Statuses; the last three are final.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL = frozenset({DONE, FAILED, CANCELLED})

Work = Callable[[ProgressCallback, CancelToken], Any]
Render = Callable[[ProgressEvent], None]


class Task:
    """``work`` run once; ``progress`` holds what it reported, ``status``/``result``/``error``
    how it ended. ``follow=True`` also queues each event for a renderer on another thread
    (:meth:`pump`); a server job, polled through ``progress``, does not need that."""

    def __init__(self, work: Work, *, follow: bool = True, log_lines: int = 400) -> None:
        self.work = work
        self.cancel_token = CancelToken()
        self.progress = ProgressState(log_lines)
        self.status = QUEUED
        self.result: Any = None
        self.error: BaseException | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self._events: queue.Queue | None = queue.Queue() if follow else None
        self._done = threading.Event()

    # --- the worker side -----------------------------------------------------------------------

    def emit(self, event: ProgressEvent) -> None:
        self.progress.apply(event)
        if self._events is not None:
            self._events.put(event)

    def execute(self) -> None:
        """Run the work on this thread and record how it ended (never raises)."""
        try:
            if self.cancel_token.cancelled:
                raise UserCancelledError("cancelled before it started")
            self.status, self.started = RUNNING, time.time()
            with own_work():  # jupyter_mlbox's own reading is not the notebook's
                self.result = self.work(self.emit, self.cancel_token)
        except UserCancelledError as err:
            self._end(CANCELLED, err)
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits
            self._end(FAILED, err)
        else:
            summary = getattr(self.result, "summary", None)
            self._end(DONE, None, summary() if callable(summary) else "")

    def _end(self, status: str, error: BaseException | None, summary: str = "") -> None:
        self.error, self.finished = error, time.time()
        self.progress.end({DONE: "done", FAILED: "failed", CANCELLED: "stopped"}[status],
                          summary or (str(error).splitlines()[0] if error is not None
                                      and str(error) else ""))
        self.status = status
        if self._events is not None:
            self._events.put(None)
        self._done.set()

    def start(self, name: str = "mlbox-task") -> "Task":
        threading.Thread(target=self.execute, name=name, daemon=True).start()
        return self

    # --- the caller side -----------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def outcome(self):
        """The result, or the error the work raised."""
        if self.error is not None:
            raise self.error
        return self.result

    def pump(self, render: Render, timeout: float = 0.0) -> bool:
        """Hand queued events to ``render`` (waiting up to ``timeout`` for the first); True
        once the work has ended and every event was rendered."""
        assert self._events is not None, "pump() needs a Task(follow=True)"
        try:
            event = self._events.get(timeout=timeout) if timeout else self._events.get_nowait()
        except queue.Empty:
            return False
        while event is not None:
            render(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return False
        return True

    def _drain_after_cancel(self, render: Render) -> None:
        """The work stops promptly once cancelled (and removes its container): wait for it,
        ignoring further interrupts, so nothing is left behind."""
        self.cancel()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.pump(render, 0.2):
                    return
            except KeyboardInterrupt:
                continue

    def run(self, render: Render, *, on_idle: Callable[[], None] = lambda: None):
        """Start and wait, blocking; Ctrl-C cancels the work, waits for it, and is re-raised."""
        self.start()
        try:
            while not self.pump(render, 0.2):
                on_idle()
        except KeyboardInterrupt:
            self._drain_after_cancel(render)
            raise
        return self.outcome()

    async def run_async(self, render: Render, *, on_idle: Callable[[], None] = lambda: None):
        """Start and wait on the running event loop; an interrupt (ipykernel delivers it to an
        async cell as asyncio.CancelledError) cancels the work and becomes KeyboardInterrupt."""
        self.start()
        try:
            while not self.pump(render):
                on_idle()
                await asyncio.sleep(0.1)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._drain_after_cancel(render)
            raise KeyboardInterrupt from None
        return self.outcome()

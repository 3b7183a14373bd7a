"""A job of a magic: a core :class:`~jupyter_mlbox.core.task.Task` whose progress a view renders.

The magic prepares it once; :meth:`ViewedTask.run` (blocking: plain IPython,
``ip.run_cell_magic``; Ctrl-C cancels) and :meth:`ViewedTask.run_async` (on ipykernel's event
loop: widget messages, hence the Stop button, keep flowing; an interrupt cancels) differ only in
how they wait. ``done(view, result)`` and ``failed(view, error)`` say how the end reads.
"""
from __future__ import annotations

from typing import Any, Callable

from ..core.task import Task
from ..errors import BuildError, MlboxError, UserCancelledError
from .display import short, shown_as

Done = Callable[[Any, Any], Any]
Failed = Callable[[Any, BaseException], BaseException]


class ViewedTask:
    """``intercept(event) -> bool`` sees each event first (on the kernel's thread); the view
    renders those it did not take (a cell's live outputs are not progress)."""

    def __init__(self, task: Task, view, done: Done, failed: Failed,
                 intercept: Callable[[Any], bool] | None = None) -> None:
        self.task, self.view, self.done, self.failed = task, view, done, failed
        self.intercept = intercept

    def handle(self, event) -> None:
        if self.intercept is None or not self.intercept(event):
            self.view.handle(event)

    def run(self):
        # a blocked kernel cannot receive a Stop click: the view hides its button (■ works)
        getattr(self.view, "hide_stop", lambda: None)()
        try:
            result = self.task.run(self.handle, on_idle=self.view.tick)
        except BaseException as err:
            raise self.failed(self.view, err) from None
        return self.done(self.view, result)

    async def run_async(self):
        try:
            result = await self.task.run_async(self.handle, on_idle=self.view.tick)
        except BaseException as err:
            raise self.failed(self.view, err) from None
        return self.done(self.view, result)


def ended_badly(view, err: BaseException, what: str) -> BaseException:
    """How a job that did not finish ends: the view says it, the error to raise is returned
    (shown short; the local traceback of the magic means nothing to the user). An interrupt
    is described by the phase it came in, when the view knows it, not by ``what``."""
    if isinstance(err, (KeyboardInterrupt, UserCancelledError)):
        what = _interrupted(view, what)
    if isinstance(err, KeyboardInterrupt):
        view.stopped(f"interrupted: {what}")
        return err
    if isinstance(err, UserCancelledError):
        view.stopped(f"stopped: {what}")
        return short(err)
    if isinstance(err, BuildError):
        view.fail(str(err))
        tail = err.log_tail(25)
        return shown_as(err, [f"\x1b[0;31mBuildError\x1b[0m: {err}"]
                        + ([f"\x1b[2m--- build log (tail) ---\n{tail}\x1b[0m"] if tail else []))
    if isinstance(err, MlboxError):
        view.fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return short(err)
    view.fail(f"{type(err).__name__}: {err}")
    return err


def _interrupted(view, what: str) -> str:
    from ..core.events import interrupted_during

    phase = getattr(getattr(view, "state", None), "phase", None)
    try:
        return interrupted_during(phase) if phase is not None else what
    except ValueError:
        return what


def failing_with(what: str) -> Failed:
    """``failed`` for a job whose stop/interrupt is described by ``what``."""
    return lambda view, err: ended_badly(view, err, what)

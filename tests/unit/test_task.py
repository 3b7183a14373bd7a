"""core.task.Task: how work ends (done, failed, cancelled), and that every event reaches the
renderer, in order, in the blocking and in the asyncio form."""
from __future__ import annotations

import asyncio
import threading

import pytest

from jupyter_mlbox.core.events import ProgressEvent
from jupyter_mlbox.core.task import CANCELLED, DONE, FAILED, QUEUED, Task
from jupyter_mlbox.errors import UserCancelledError
from tests.conftest import work_until_cancelled


class Result:
    def summary(self) -> str:
        return "ran in 1.0 s on CPU"


def counting(n: int, result=None):
    """Work that reports ``n`` log lines, then returns ``result``."""
    def work(emit, cancel):
        emit(ProgressEvent("running", "phase", "counting"))
        for i in range(n):
            emit(ProgressEvent("running", "log", f"line {i}"))
        return result
    return work


until_cancelled = work_until_cancelled


def test_done_returns_the_result_and_renders_every_event_in_order():
    result = Result()
    task = Task(counting(500, result))
    rendered = []
    assert task.status == QUEUED
    assert task.run(rendered.append) is result
    assert task.status == DONE and task.error is None and task.is_final
    assert [e.message for e in rendered] == ["counting"] + [f"line {i}" for i in range(500)]
    assert task.progress.status == "done" and task.progress.summary == "ran in 1.0 s on CPU"
    assert task.progress.fraction == 1.0
    assert task.started is not None and task.finished >= task.started


def test_failed_work_re_raises_its_error_and_records_it():
    def work(emit, cancel):
        emit(ProgressEvent("building", "phase", "building"))
        raise ValueError("no such package\nmore detail")

    task = Task(work)
    rendered = []
    with pytest.raises(ValueError, match="no such package"):
        task.run(rendered.append)
    assert task.status == FAILED and isinstance(task.error, ValueError)
    assert [e.message for e in rendered] == ["building"]
    assert task.progress.status == "failed" and task.progress.summary == "no such package"
    assert task.progress.log[-1] == "[failed] no such package"


def test_cancel_stops_the_work_with_user_cancelled_error():
    started = threading.Event()
    task = Task(until_cancelled(started), follow=False).start()
    assert started.wait(5)
    assert task.status == "running" and not task.is_final
    task.cancel()
    assert task.wait(5)
    assert task.status == CANCELLED and isinstance(task.error, UserCancelledError)
    assert task.progress.status == "stopped"
    with pytest.raises(UserCancelledError):
        task.outcome()


def test_user_cancelled_error_is_not_asyncio_cancelled_error():
    assert not issubclass(UserCancelledError, asyncio.CancelledError)
    assert not issubclass(asyncio.CancelledError, UserCancelledError)


def test_cancel_before_start_never_runs_the_work():
    calls = []
    task = Task(lambda emit, cancel: calls.append("ran"))
    task.cancel()
    task.execute()
    assert calls == [] and task.status == CANCELLED
    assert str(task.error) == "cancelled before it started"
    assert task.started is None


def test_a_follow_false_task_keeps_its_progress_for_polling():
    task = Task(counting(3, Result()), follow=False).start()
    assert task.wait(5)
    snapshot = task.progress.snapshot()
    assert snapshot["log"] == ["running: counting", "line 0", "line 1", "line 2"]
    assert snapshot["progress"] == 1.0
    with pytest.raises(AssertionError, match="follow=True"):
        task.pump(lambda event: None)


def test_ctrl_c_in_run_cancels_the_work_waits_for_it_and_re_raises():
    started = threading.Event()
    task = Task(until_cancelled(started))
    rendered = []

    def interrupt():
        if started.is_set():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        task.run(rendered.append, on_idle=interrupt)
    assert task.status == CANCELLED  # the work ended before run() gave up
    assert [e.message for e in rendered] == ["waiting for a cancel"]


def test_run_async_works_under_asyncio_run_and_keeps_the_loop_free():
    released = threading.Event()  # set by a coroutine: only a free event loop gets there

    def work(emit, cancel):
        counting(200)(emit, cancel)
        if not released.wait(5):
            raise AssertionError("the event loop was blocked while the task ran")
        return "the result"

    task = Task(work)
    rendered = []

    async def release():
        await asyncio.sleep(0.05)
        released.set()

    async def main():
        asyncio.ensure_future(release())
        return await task.run_async(rendered.append)

    assert asyncio.run(main()) == "the result"
    assert task.status == DONE
    assert [e.message for e in rendered] == ["counting"] + [f"line {i}" for i in range(200)]


def test_run_async_failure_raises_the_work_error():
    def work(emit, cancel):
        raise RuntimeError("async boom")

    with pytest.raises(RuntimeError, match="async boom"):
        asyncio.run(Task(work).run_async(lambda event: None))


def test_an_interrupted_run_async_cancels_the_work_and_becomes_keyboard_interrupt():
    started = threading.Event()
    task = Task(until_cancelled(started))

    async def main():
        me = asyncio.current_task()
        asyncio.get_running_loop().call_soon(lambda: started.wait(5) and me.cancel())
        try:
            await task.run_async(lambda event: None)
        except KeyboardInterrupt:  # ipykernel's interrupt of an async cell arrives cancelled
            return "interrupted"

    assert asyncio.run(main()) == "interrupted"
    assert task.status == CANCELLED

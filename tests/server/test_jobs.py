"""JobManager with plain work callables: no server, no Docker."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_mlbox.core.events import ProgressEvent
from jupyter_mlbox.errors import CellExecutionError, MlboxError, UserCancelledError
from jupyter_mlbox.server.jobs import JobManager
from tests.conftest import work_until_cancelled

JOB_FIELDS = {"id", "kind", "path", "label", "status", "phase", "message", "step", "total",
              "progress", "warnings", "report", "created", "started", "finished", "elapsed", "result",
              "error", "error_type", "log"}


@dataclass(frozen=True)
class Outcome:
    """A core result as the jobs see one: as_dict() and summary()."""

    output_path: Path

    def as_dict(self) -> dict:
        return {"output_path": str(self.output_path), "seconds": 1.5}

    def summary(self) -> str:
        return "ran in 1.5 s on CPU"


@pytest.fixture
def manager():
    manager = JobManager(max_workers=1, log_lines=50)
    yield manager
    manager.shutdown(wait_seconds=5)


def finished(job, seconds=10):
    assert job.task.wait(seconds), job.as_dict()
    return job.as_dict()


def test_a_job_that_succeeds(manager, tmp_path):
    def work(emit, cancel):
        emit(ProgressEvent("inferring", "phase", "reading the imports"))
        emit(ProgressEvent("building", "step", "RUN pip install", 1, 4))
        emit(ProgressEvent("building", "warning", "numpy is a guess"))
        emit(ProgressEvent("running", "log", "hello from the cell"))
        return Outcome(tmp_path / "work" / "hello.mlbox.ipynb")

    job = manager.submit("run", "work/hello.ipynb", work, label="Run hello.ipynb",
                         api_path=lambda path: path.relative_to(tmp_path).as_posix())
    data = finished(job)
    assert set(data) == JOB_FIELDS
    assert data["id"] == job.id and manager.get(job.id) is job
    assert (data["kind"], data["path"], data["label"]) == ("run", "work/hello.ipynb",
                                                           "Run hello.ipynb")
    assert data["status"] == "done" and data["phase"] == "done" and data["progress"] == 1.0
    assert data["result"] == {"output_path": "work/hello.mlbox.ipynb", "seconds": 1.5}
    assert data["error"] is None and data["error_type"] is None
    assert data["warnings"] == ["numpy is a guess"]
    assert "hello from the cell" in data["log"]
    assert "step 1/4: RUN pip install" in data["log"]
    assert data["created"] <= data["started"] <= data["finished"]
    assert data["elapsed"] >= 0
    assert "log" not in job.as_dict(log=False)
    assert [j.id for j in manager.list()] == [job.id]


def test_a_plain_dict_result_is_kept(manager):
    job = manager.submit("build", "a.ipynb", lambda emit, cancel: {"tag": "mlbox/a:1"})
    assert finished(job)["result"] == {"tag": "mlbox/a:1"}


def test_a_job_that_fails(manager):
    def work(emit, cancel):
        emit(ProgressEvent("building", "phase", "building mlbox/a:1"))
        raise MlboxError("the build failed at step 3")

    data = finished(manager.submit("build", "a.ipynb", work))
    assert data["status"] == "failed"
    assert data["error"] == "the build failed at step 3"
    assert data["error_type"] == "MlboxError"
    assert data["result"] is None
    assert data["phase"] == "building" and data["progress"] < 1.0
    assert data["log"][-1] == "[failed] the build failed at step 3"


def test_a_failed_run_still_says_where_its_notebook_is(manager, tmp_path):
    def work(emit, cancel):
        raise CellExecutionError("cell 2 raised RuntimeError: boom", failed_cell=1,
                                 output_path=tmp_path / "work" / "boom.mlbox.ipynb")

    job = manager.submit("run", "work/boom.ipynb", work,
                         api_path=lambda path: path.relative_to(tmp_path).as_posix())
    data = finished(job)
    assert data["status"] == "failed" and data["error_type"] == "CellExecutionError"
    assert data["result"] == {"output_path": "work/boom.mlbox.ipynb"}


def test_a_bug_in_the_work_fails_the_job_not_the_server(manager):
    def work(emit, cancel):
        raise KeyError("oops")

    data = finished(manager.submit("build", "a.ipynb", work))
    assert data["status"] == "failed" and data["error_type"] == "KeyError"
    assert data["error"].startswith("unexpected error: KeyError")


def test_cancel_a_queued_job_ends_it_at_once(manager):
    release = threading.Event()
    started = threading.Event()
    ran = []

    def blocker(emit, cancel):
        started.set()
        release.wait(10)
        return {}

    first = manager.submit("build", "first.ipynb", blocker)
    assert started.wait(10)
    queued = manager.submit("build", "second.ipynb", lambda emit, cancel: ran.append(1))
    assert queued.as_dict()["status"] == "queued"
    manager.cancel(queued)
    data = queued.as_dict()  # no waiting: it never started
    assert data["status"] == "cancelled" and queued.is_final
    assert data["error_type"] == UserCancelledError.__name__
    assert data["started"] is None and data["elapsed"] == 0.0
    release.set()
    assert finished(first)["status"] == "done"
    assert ran == []


def test_cancel_a_running_job(manager):
    running = threading.Event()
    job = manager.submit("run", "a.ipynb", work_until_cancelled(running))
    assert running.wait(10)
    assert job.as_dict()["status"] == "running"
    manager.cancel(job)
    data = finished(job)
    assert data["status"] == "cancelled"
    assert data["error_type"] == "UserCancelledError"
    assert data["phase"] == "running"


def test_only_the_recent_finished_jobs_are_kept():
    manager = JobManager(max_workers=1, keep_jobs=2)
    try:
        jobs = [manager.submit("build", f"{i}.ipynb", lambda emit, cancel: {}) for i in range(4)]
        for job in jobs:
            finished(job)
        manager.submit("build", "last.ipynb", lambda emit, cancel: {})  # forgets the oldest
        kept = {job.id for job in manager.list()}
        assert jobs[0].id not in kept and jobs[1].id not in kept and jobs[3].id in kept
    finally:
        manager.shutdown(wait_seconds=5)


def test_shutdown_cancels_what_runs():
    manager = JobManager(max_workers=1)
    running = threading.Event()
    job = manager.submit("run", "a.ipynb", work_until_cancelled(running))
    assert running.wait(10)
    manager.shutdown(wait_seconds=5)
    assert job.status == "cancelled"

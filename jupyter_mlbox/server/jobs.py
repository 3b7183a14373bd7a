"""Long work (builds, runs, exports) as jobs in a thread pool, off the server's event loop.

A job is a :class:`~jupyter_mlbox.core.task.Task` (the work, its progress state, its outcome)
plus what the panel lists it by. Cancelling sets the task's CancelToken, which stops the build
or kills and removes the container; a job still in the queue ends as cancelled at once.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from ..core.task import CANCELLED, DONE, FAILED, FINAL, QUEUED, RUNNING, Task, Work
from ..errors import MlboxError

__all__ = ["Job", "JobManager", "QueueFullError", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "FINAL"]

class QueueFullError(MlboxError):
    """Too many jobs waiting or running (HTTP 429): the client retries later."""


#: Result fields that hold a file path, shown relative to the server root.
PATH_FIELDS = ("output_path",)


class Job:
    """One build, run or export: its task, and what the panel lists it by.

    ``api_path`` turns a file path of the result into one relative to the server root;
    ``owner`` is the user who asked (only they see and cancel it).
    """

    def __init__(self, kind: str, path: str, task: Task, label: str = "",
                 api_path: Callable[[Path], str] | None = None, owner: str = "") -> None:
        self.id = uuid.uuid4().hex[:12]
        self.owner = owner
        self.kind = kind
        self.path = path
        self.label = label
        self.task = task
        self.api_path = api_path or str
        self.future: Future | None = None

    @property
    def status(self) -> str:
        return self.task.status

    @property
    def is_final(self) -> bool:
        return self.task.is_final

    @property
    def created(self) -> float:
        return self.task.created

    def result_dict(self) -> dict | None:
        """The result as JSON; for a failed run, where its executed notebook was written."""
        task = self.task
        if task.status == DONE:
            result = task.result
            data = result.as_dict() if hasattr(result, "as_dict") else result
        else:
            output = getattr(task.error, "output_path", None)
            data = {"output_path": output} if output else None
        if not isinstance(data, dict):
            return data
        return {key: self.api_path(Path(value)) if key in PATH_FIELDS and value else value
                for key, value in data.items()}

    def error_text(self) -> str | None:
        error = self.task.error
        if error is None:
            return None
        if isinstance(error, MlboxError):
            return str(error)
        return f"unexpected error: {type(error).__name__}: {error}"

    def as_dict(self, *, log: bool = True) -> dict:
        task = self.task
        progress = task.progress.snapshot()
        lines = progress.pop("log")
        now = task.finished or time.time()
        return {
            "id": self.id, "kind": self.kind, "path": self.path, "label": self.label,
            "status": task.status, **progress,
            "created": task.created, "started": task.started, "finished": task.finished,
            "elapsed": round(now - task.started, 2) if task.started else 0.0,
            "result": self.result_dict(), "error": self.error_text(),
            "error_type": type(task.error).__name__ if task.error is not None else None,
            **({"log": lines} if log else {}),
        }


class JobManager(LoggingConfigurable):
    """Runs jobs in a thread pool and keeps the recent ones for polling.

    Replace it with ``MlboxApp.job_manager_class`` (e.g. to run jobs elsewhere).
    """

    max_workers = Integer(2, config=True,
                          help="How many builds/runs/exports run at the same time; the rest "
                               "wait in the queue.")
    log_lines = Integer(200, config=True, help="How many log lines each job keeps.")
    keep_jobs = Integer(100, config=True,
                        help="How many finished jobs are remembered for GET /mlbox/api/jobs.")
    max_pending = Integer(20, config=True,
                          help="How many jobs may be queued or running at once; a request "
                               "beyond that is refused with 429 (retry when one ends).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers,
                                            thread_name_prefix="mlbox-job")

    def submit(self, kind: str, path: str, work: Work, label: str = "",
               api_path: Callable[[Path], str] | None = None, owner: str = "") -> Job:
        """Queue ``work(emit, cancel) -> result`` (a core result, a dict or None)."""
        job = Job(kind, path, Task(work, follow=False, log_lines=self.log_lines), label,
                  api_path, owner)
        with self._lock:
            pending = sum(1 for other in self._jobs.values() if not other.is_final)
            if pending >= self.max_pending:
                raise QueueFullError(
                    f"{pending} jobs are queued or running, the most this server takes "
                    f"(c.JobManager.max_pending = {self.max_pending}); wait for one to end, "
                    f"or cancel one (DELETE /mlbox/api/jobs/ID), and retry")
            self._jobs[job.id] = job
            self._forget_old()
        job.future = self._executor.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        job.task.execute()
        with self._lock:
            self._forget_old()
        error = job.task.error
        if error is not None and not isinstance(error, MlboxError):  # a bug: show it, go on
            self.log.error("mlbox job %s failed unexpectedly", job.id,
                           exc_info=(type(error), error, error.__traceback__))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, owner: str | None = None) -> list[Job]:
        """The jobs not ended yet and the ``keep_jobs`` newest that ended (``owner``'s only,
        when given)."""
        with self._lock:
            self._forget_old()
            return sorted((job for job in self._jobs.values()
                           if owner is None or job.owner == owner),
                          key=lambda job: job.created, reverse=True)

    def cancel(self, job: Job) -> None:
        job.task.cancel()
        if job.future is not None and job.future.cancel():
            job.task.execute()  # cancelled before it started: ends as cancelled, runs nothing

    def _forget_old(self) -> None:
        finished = [job for job in sorted(self._jobs.values(), key=lambda j: j.created)
                    if job.is_final]
        for job in finished[:max(0, len(finished) - self.keep_jobs)]:
            del self._jobs[job.id]

    def shutdown(self, wait_seconds: float = 30) -> None:
        """Cancel everything (containers are removed by the core) and stop the pool."""
        for job in self.list():
            if not job.is_final:
                self.cancel(job)
        deadline = time.monotonic() + wait_seconds
        for job in self.list():
            if job.future is not None and not job.future.done():
                try:
                    job.future.result(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - shutting down
                    pass
        self._executor.shutdown(wait=False, cancel_futures=True)

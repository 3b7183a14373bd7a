"""Long work (builds, runs, exports) as jobs in a thread pool, off the server's event loop.

A job records what the core reports through progress events (phase, build step, log lines) so
a front end can poll it; cancelling sets the job's CancelToken, which stops the build or kills
and removes the container.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from ..core.events import CancelToken, ProgressEvent
from ..errors import CancelledError, MlboxError

#: Job statuses; the last three are final.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL = {DONE, FAILED, CANCELLED}

#: Where a phase starts on a 0..1 progress bar (building fills the span up to "starting").
_PHASE_START = {"queued": 0.0, "inferring": 0.02, "building": 0.05, "starting": 0.7,
                "running": 0.75, "collecting": 0.92, "pushing": 0.85, "done": 1.0}

#: What a job does: ``work(on_event, cancel) -> result dict``.
Work = Callable[[Callable[[ProgressEvent], None], CancelToken], dict]


class Job:
    """One build, run or export and everything a front end shows about it."""

    def __init__(self, kind: str, path: str, log_lines: int, label: str = "") -> None:
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.path = path
        self.label = label
        self.status = QUEUED
        self.phase = "queued"
        self.message = ""
        self.step: int | None = None
        self.total: int | None = None
        self.progress = 0.0
        self.warnings: list[str] = []
        self.log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.error_type: str | None = None
        self.cancel_token = CancelToken()
        self.future: Future | None = None
        self._lock = threading.Lock()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def record(self, event: ProgressEvent) -> None:
        """What the core reported: update phase, step and progress, keep a log tail."""
        with self._lock:
            if event.kind == "phase" or event.phase != self.phase:
                self.phase = event.phase
                self.step = self.total = None
            if event.kind == "step":
                self.step, self.total = event.step, event.total
            if event.kind in {"phase", "step", "info"} and event.message:
                self.message = event.message
            if event.kind == "warning":
                self.warnings.append(event.message)
            if event.message:
                self.log.append(str(event))
            start = _PHASE_START.get(self.phase, self.progress)
            if self.phase == "building" and self.step and self.total:
                start += (_PHASE_START["starting"] - start) * (self.step / self.total)
            self.progress = max(self.progress, min(start, 1.0))

    def finish(self, status: str, *, result: dict | None = None, error: str | None = None,
               error_type: str | None = None) -> None:
        with self._lock:
            self.status = status
            self.finished = time.time()
            self.result = result if result is not None else self.result
            self.error, self.error_type = error, error_type
            if status == DONE:
                self.phase, self.progress = "done", 1.0
            if error:
                self.log.append(f"[{status}] {error}")

    def as_dict(self, *, log: bool = True) -> dict:
        with self._lock:
            now = self.finished or time.time()
            return {
                "id": self.id, "kind": self.kind, "path": self.path, "label": self.label,
                "status": self.status, "phase": self.phase, "message": self.message,
                "step": self.step, "total": self.total, "progress": round(self.progress, 3),
                "warnings": list(self.warnings),
                "created": self.created, "started": self.started, "finished": self.finished,
                "elapsed": round(now - self.started, 2) if self.started else 0.0,
                "result": self.result, "error": self.error, "error_type": self.error_type,
                **({"log": list(self.log)} if log else {}),
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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jobs: dict[str, Job] = {}
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers,
                                            thread_name_prefix="mlbox-job")

    def submit(self, kind: str, path: str, work: Work, label: str = "") -> Job:
        job = Job(kind, path, self.log_lines, label)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        job.future = self._executor.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Work) -> None:
        if job.cancel_token.cancelled:
            job.finish(CANCELLED, error="cancelled before it started", error_type="CancelledError")
            return
        job.status, job.started = RUNNING, time.time()
        try:
            result = work(job.record, job.cancel_token)
        except CancelledError as err:
            job.finish(CANCELLED, error=str(err), error_type=type(err).__name__)
        except MlboxError as err:
            job.finish(FAILED, result=getattr(err, "mlbox_result", None), error=str(err),
                       error_type=type(err).__name__)
        except Exception as err:  # noqa: BLE001 - a bug: keep the server alive, show it
            self.log.error("mlbox job %s failed unexpectedly:\n%s", job.id,
                           traceback.format_exc())
            job.finish(FAILED, error=f"unexpected error: {type(err).__name__}: {err}",
                       error_type=type(err).__name__)
        else:
            job.finish(DONE, result=result)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def cancel(self, job: Job) -> None:
        job.cancel_token.cancel()
        if job.future is not None and job.future.cancel():
            job.finish(CANCELLED, error="cancelled before it started",
                       error_type="CancelledError")

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

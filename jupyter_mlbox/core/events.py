"""Progress events: the only thing the core tells front ends while it works."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import CancelledError

#: Phases in the order a run goes through them.
PHASES = ("inferring", "building", "starting", "running", "collecting", "done")


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened: a phase change, a build step, or a log line.

    ``kind`` is "phase" (entering ``phase``), "step" (``step`` of ``total``), "log" (a line of
    build log or container stderr in ``message``), "info" (a sentence worth showing) or
    "warning".
    """

    phase: str
    kind: str = "phase"
    message: str = ""
    step: Optional[int] = None
    total: Optional[int] = None
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return {"phase": self.phase, "kind": self.kind, "message": self.message,
                "step": self.step, "total": self.total, "time": self.time}

    def __str__(self) -> str:
        if self.kind == "step" and self.total:
            return f"[{self.phase}] step {self.step}/{self.total}: {self.message}"
        if self.kind == "phase":
            return f"[{self.phase}] {self.message}".rstrip()
        return f"[{self.phase}] {self.message}"


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default callback: progress goes nowhere."""


class CancelToken:
    """Set by a front end (Stop button, DELETE job, Ctrl-C) to stop a build or run.

    The core checks it between build log chunks and while it waits for a container.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("cancelled by the user")

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

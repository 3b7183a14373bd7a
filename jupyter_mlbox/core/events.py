"""Progress: the only thing the core tells front ends while it works, and the one state every
front end (widgets, terminal, server jobs, panel) renders from it."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional

from ..errors import UserCancelledError


class _Named(str, Enum):
    """An enum whose members compare, print and format as their plain string value."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Phase(_Named):
    """Phases, in the order a job goes through them (pushing only for exports)."""

    QUEUED = "queued"
    INFERRING = "inferring"
    BUILDING = "building"
    STARTING = "starting"
    RUNNING = "running"
    COLLECTING = "collecting"
    PUSHING = "pushing"
    DONE = "done"


class EventKind(_Named):
    PHASE = "phase"      # entering ``phase``
    STEP = "step"        # build step ``step`` of ``total``
    LOG = "log"          # a line of build log or container output
    INFO = "info"        # a sentence worth showing
    WARNING = "warning"  # a sentence the user should read
    REPORT = "report"    # the plan's summary before the build (core/report.py), lines of text
    OUTPUT = "output"    # a cell's output as it was made: ``output`` (nbformat), cell ``step``


#: The phases a run shows on a phase bar (queued and pushing are not part of a run).
PHASES = (Phase.INFERRING, Phase.BUILDING, Phase.STARTING, Phase.RUNNING, Phase.COLLECTING,
          Phase.DONE)

#: Where each phase starts on a 0..1 progress bar; building fills its span step by step.
_PHASE_START = {Phase.QUEUED: 0.0, Phase.INFERRING: 0.02, Phase.BUILDING: 0.05,
                Phase.STARTING: 0.7, Phase.RUNNING: 0.75, Phase.PUSHING: 0.85,
                Phase.COLLECTING: 0.92, Phase.DONE: 1.0}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened: a phase change, a build step, a log line, an info or a warning.

    Strings are accepted for ``phase`` and ``kind`` and become the enums (an unknown one is a
    bug and raises ValueError).
    """

    phase: Phase
    kind: EventKind = EventKind.PHASE
    message: str = ""
    step: Optional[int] = None
    total: Optional[int] = None
    time: float = field(default_factory=time.time)
    #: OUTPUT events: the nbformat output (or ``{"output_type": "clear_output", "wait": …}``)
    output: Optional[dict] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", Phase(self.phase))
        object.__setattr__(self, "kind", EventKind(self.kind))

    def as_dict(self) -> dict:
        return {"phase": self.phase.value, "kind": self.kind.value, "message": self.message,
                "step": self.step, "total": self.total, "time": self.time}

    def __str__(self) -> str:
        if self.kind == EventKind.STEP and self.total:
            return f"[{self.phase}] step {self.step}/{self.total}: {self.message}"
        if self.kind == EventKind.PHASE:
            return f"[{self.phase}] {self.message}".rstrip()
        return f"[{self.phase}] {self.message}"


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default callback: progress goes nowhere."""


def upload_progress(on_event: "ProgressCallback", phase: str, what: str, host: str):
    """``on_progress(sent, total)`` for an engine upload, as INFO events at each quarter:
    ``uploading 48.0 MB (the build context) to ssh://gpu-box: 50%``."""
    reported = {"quarter": -1}

    def report(sent: int, total: int) -> None:
        quarter = 4 * sent // max(total, 1)
        if quarter > reported["quarter"]:
            reported["quarter"] = quarter
            on_event(ProgressEvent(phase, "info", f"uploading {total / 1e6:.1f} MB ({what}) "
                                                  f"to {host}: {25 * quarter}%"))
    return report


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (uv, pip and IPython tracebacks colour theirs)."""
    return _ANSI.sub("", text)


#: Escape sequences a terminal acts on beyond colour: OSC (``ESC ]0;…`` sets the window title,
#: OSC 52 writes the clipboard), DCS/PM/APC strings, and every CSI that is not SGR (cursor
#: moves, screen clears); then single-character escapes and other control characters.
_TERMINAL_CONTROL = re.compile(
    r"(?P<string>\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)|[\x90\x9d\x9e\x9f].*?(?:\x07|\x9c|$))"
    r"|(?P<csi>\x1b\[(?P<params>[0-9;:?<=>]*)(?P<between>[ -/]*)(?P<final>[@-~]))"
    r"|\x1b[ -/]*[0-~]?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]", re.DOTALL)


def terminal_safe(text: str) -> str:
    """Text made in a container, fit to print on a terminal: SGR colours stay, every other
    escape sequence and control character is dropped (a traceback cannot set the window
    title, write the clipboard or move the cursor)."""
    def keep_colour(match: re.Match) -> str:
        if (match.group("csi") and match.group("final") == "m" and not match.group("between")
                and not re.search(r"[?<=>]", match.group("params"))):
            return match.group(0)
        return ""

    return _TERMINAL_CONTROL.sub(keep_colour, text)


def interrupted_during(phase: "Phase | str") -> str:
    """What an interrupt (Ctrl-C, Stop) stopped, by the phase it came in: not "the build was
    stopped" when the build had finished and the notebook was executing."""
    phase = Phase(phase)
    if phase in (Phase.QUEUED, Phase.INFERRING):
        return "stopped before the build; nothing was built or run"
    if phase == Phase.BUILDING:
        return "the build was stopped; nothing was run"
    if phase == Phase.STARTING:
        return "stopped while the container started; it was removed and nothing was written"
    if phase == Phase.RUNNING:
        return ("the run was stopped while the notebook executed; the container was removed "
                "and nothing was written")
    if phase == Phase.COLLECTING:
        return ("stopped while the results were copied out; the container was removed and "
                "nothing was written")
    if phase == Phase.PUSHING:
        return "the push was stopped; the image is built and tagged here"
    return "stopped after the work was done"


def log_line(event: ProgressEvent) -> str:
    """How an event reads as one line of a job's log (colour codes removed; '' for nothing)."""
    message = strip_ansi(event.message)
    if not message.strip():
        return ""
    if event.kind == EventKind.WARNING:
        return f"warning: {message}"
    if event.kind == EventKind.STEP:
        return f"step {event.step}/{event.total}: {message}"
    if event.kind == EventKind.PHASE:
        return f"{event.phase}: {message}"
    return message


class ProgressState:
    """What every renderer shows, built from events in one place: phase, step i/n, a 0..1
    fraction, the latest message, warnings, a bounded log tail, the outcome and elapsed time.

    Thread-safe: a worker thread applies events while a renderer or a request handler reads.
    """

    def __init__(self, log_lines: int = 400) -> None:
        self.started = time.monotonic()
        self.phase = Phase.QUEUED
        self.message = ""
        self.step: int | None = None
        self.total: int | None = None
        self.fraction = 0.0
        self.log: list[str] = []
        self.warnings: list[str] = []
        self.status = "working"  # working | done | failed | stopped
        self.summary = ""
        #: The plan's report (its lines), once the plan is made: shown before the build.
        self.report: list[str] = []
        self._log_lines = log_lines
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def apply(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind == EventKind.PHASE:
                self.phase, self.message = event.phase, event.message
                if event.phase != Phase.BUILDING:
                    self.step = self.total = None
            elif event.kind == EventKind.STEP:
                self.phase, self.message = event.phase, event.message
                self.step, self.total = event.step, event.total
            elif event.kind in (EventKind.INFO, EventKind.WARNING):
                if event.kind == EventKind.INFO and event.phase != self.phase:
                    self.phase = event.phase
                self.message = event.message
                if event.kind == EventKind.WARNING:
                    self.warnings.append(event.message)
            elif event.kind == EventKind.REPORT:
                self.report = event.message.splitlines()
            line = log_line(event)
            if line:
                self.log.append(line)
                del self.log[:-self._log_lines]
            start = _PHASE_START[self.phase]
            if self.phase == Phase.BUILDING and self.step and self.total:
                start += (_PHASE_START[Phase.STARTING] - start) * (self.step / self.total)
            self.fraction = max(self.fraction, min(start, 1.0))

    def end(self, status: str, summary: str = "") -> None:
        """The outcome: ``done`` (the bar fills), ``failed`` or ``stopped``."""
        with self._lock:
            self.status, self.summary = status, summary
            if status == "done":
                self.phase, self.fraction = Phase.DONE, 1.0
            if summary and status != "done":
                self.log.append(f"[{status}] {summary}")
                del self.log[:-self._log_lines]

    def snapshot(self) -> dict:
        """The JSON a front end polls (the server's job view)."""
        with self._lock:
            return {"phase": self.phase.value, "message": self.message, "step": self.step,
                    "total": self.total, "progress": round(self.fraction, 3),
                    "warnings": list(self.warnings), "report": list(self.report),
                    "log": list(self.log)}


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
            raise UserCancelledError("cancelled by the user")

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

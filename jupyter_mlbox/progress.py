"""Renders progress on a terminal: one live status line on a TTY, plain lines otherwise.

The core emits events into the one ProgressState (core/events.py); this is only one of its
renderers (widgets.py is another, the server's job view a third).
"""
from __future__ import annotations

import shutil
import sys
from typing import TextIO

from .core.events import EventKind, ProgressEvent, ProgressState, terminal_safe


class TerminalProgress:
    """Callable progress sink for the CLI."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False,
                 verbose: bool = False, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self.state = ProgressState()
        self._live = False

    def __call__(self, event: ProgressEvent) -> None:
        self.state.apply(event)
        if self.quiet and event.kind != EventKind.WARNING:
            return
        elapsed = f"[{self.state.elapsed:5.1f}s]"
        if event.kind == EventKind.OUTPUT:  # the cells' prints: with -v, as they come
            if self.verbose and event.message:
                for line in event.message.splitlines():
                    self._line(f"  | {line}")
            return
        if event.kind == EventKind.LOG:
            if self.verbose:
                self._line(f"  {event.message}")
            elif self.tty:
                self._status(f"{elapsed} {event.phase}: {event.message}")
            return
        if event.kind == EventKind.STEP and self.tty:
            self._status(f"{elapsed} {event.phase} step {self.state.step}/{self.state.total}: "
                         f"{self.state.message}")
            return
        if event.kind == EventKind.REPORT:  # the plan's summary: a few lines, before the build
            head, *rest = event.message.splitlines() or [""]
            self._line(f"{elapsed} [{event.phase}] {head}")
            for line in rest:
                self._line(f"{'':{len(elapsed)}} {line}")
            return
        prefix = "warning: " if event.kind == EventKind.WARNING else ""
        self._line(f"{elapsed} {prefix}{event}")

    def _status(self, text: str) -> None:
        text = terminal_safe(text)  # build and container output: no OSC, title or clipboard
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + text[:width].ljust(width))
        self.stream.flush()
        self._live = True

    def _line(self, text: str) -> None:
        if self._live:
            self.stream.write("\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r")
            self._live = False
        self.stream.write(terminal_safe(text) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live:
            self._line("")

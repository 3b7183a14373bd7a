"""Renders progress events on a terminal: one live status line on a TTY, plain lines otherwise.

The core emits events; this is only one of their renderers (widgets.py is another).
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from .core.events import ProgressEvent


class TerminalProgress:
    """Callable progress sink for the CLI."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False,
                 verbose: bool = False, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._live = False

    def __call__(self, event: ProgressEvent) -> None:
        if self.quiet and event.kind != "warning":
            return
        elapsed = time.monotonic() - self.started
        if event.kind == "log":
            if self.verbose:
                self._line(f"  {event.message}")
            elif self.tty:
                self._status(f"[{elapsed:5.1f}s] {event.phase}: {event.message}")
            return
        if event.kind == "step" and self.tty:
            self._status(f"[{elapsed:5.1f}s] {event.phase} step {event.step}/{event.total}: "
                         f"{event.message}")
            return
        prefix = "warning: " if event.kind == "warning" else ""
        self._line(f"[{elapsed:5.1f}s] {prefix}{event}")

    def _status(self, text: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + text[:width].ljust(width))
        self.stream.flush()
        self._live = True

    def _line(self, text: str) -> None:
        if self._live:
            self.stream.write("\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r")
            self._live = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live:
            self._line("")

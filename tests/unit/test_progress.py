"""The terminal renderer of progress events: a live line on a TTY, plain lines otherwise."""
from __future__ import annotations

import io

from jupyter_mlbox.core.events import ProgressEvent
from jupyter_mlbox.progress import TerminalProgress

EVENTS = [
    ProgressEvent("building", "phase", "building mlbox/x:1"),
    ProgressEvent("building", "step", "RUN uv pip install", 6, 15),
    ProgressEvent("building", "log", "Resolved 40 packages"),
    ProgressEvent("inferring", "warning", "cv2: guessing opencv-python"),
    ProgressEvent("done", "phase", "ran in 1.0 s on CPU"),
]


def render(**kwargs) -> str:
    stream = io.StringIO()
    progress = TerminalProgress(stream, **kwargs)
    for event in EVENTS:
        progress(event)
    progress.close()
    return stream.getvalue()


def test_tty_shows_steps_on_one_live_line_with_elapsed_time():
    out = render(tty=True)
    assert "\r[" in out and "building step 6/15: RUN uv pip install" in out
    assert "s] warning: [inferring] cv2" in out
    assert out.count("\n") == 3  # phase, warning, done: the step and log lines are overwritten


def test_pipe_gets_plain_lines_without_carriage_returns():
    out = render(tty=False)
    assert "\r" not in out
    assert "step 6/15: RUN uv pip install" in out
    assert "Resolved 40 packages" not in out  # logs only with --verbose
    assert "Resolved 40 packages" in render(tty=False, verbose=True)


def test_quiet_keeps_only_warnings():
    out = render(tty=False, quiet=True)
    assert out.strip().splitlines() == [line for line in out.strip().splitlines()
                                        if "warning" in line]
    assert "cv2" in out

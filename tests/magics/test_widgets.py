"""The progress view's model through the phases (no pixels, no daemon), and the rendering rule."""
from __future__ import annotations

import io

from jupyter_mlbox.core.events import CancelToken, ProgressEvent
from jupyter_mlbox.widgets import (TextProgressView, WidgetProgressView, progress_view,
                                   widgets_can_render)

RUN = [
    ProgressEvent("inferring", "phase", "reading the imports of analysis.ipynb"),
    ProgressEvent("inferring", "warning", "foo: not installed in this kernel"),
    ProgressEvent("building", "phase", "building mlbox/analysis:abc"),
    ProgressEvent("building", "step", "FROM python:3.11-slim AS builder", 1, 4),
    ProgressEvent("building", "log", " ---> Using cache"),
    ProgressEvent("building", "step", "RUN uv pip install", 2, 4),
    ProgressEvent("building", "info", "built mlbox/analysis:abc (500 MB)"),
    ProgressEvent("starting", "phase", "starting a container of mlbox/analysis:abc"),
    ProgressEvent("running", "phase", "executing analysis-cell-1.ipynb"),
    ProgressEvent("running", "log", "container stderr line"),
    ProgressEvent("building", "log", "\x1b[0m"),  # uv colours its output: dropped when empty
    ProgressEvent("building", "log", "\x1b[91m Downloaded pandas"),
    ProgressEvent("collecting", "phase", "copying the executed notebook out"),
]


def test_widget_model_follows_the_phases():
    token = CancelToken()
    view = WidgetProgressView(token, title="%%mlbox")
    seen = []
    for event in RUN:
        view.handle(event)
        seen.append((view.state.phase, view.progress.value, view.progress.max))
        if event.kind == "step" and event.step == 2:
            assert view.progress.value == 2 and view.progress.max == 4
            assert view.detail.value == "step 2/4: RUN uv pip install"
            assert "building" in view.phase_label.value
    assert [phase for phase, _, _ in seen] == [
        "inferring", "inferring", "building", "building", "building", "building", "building",
        "starting", "running", "running", "running", "running", "collecting"]
    # outside the build, the bar shows the phase's position among the phases
    assert seen[-1][1:] == (4, 5)
    assert "collecting" in view.phase_label.value
    log = view.state.log
    assert "warning: foo: not installed in this kernel" in log
    assert "step 1/4: FROM python:3.11-slim AS builder" in log
    assert " ---> Using cache" in log and "container stderr line" in log
    assert " Downloaded pandas" in log and not any("\x1b" in line or not line for line in log)
    view.flush_log()
    assert "container stderr line" in view.log.value and "---&gt; Using cache" in view.log.value
    assert view.log_section.selected_index is None  # the log starts collapsed
    assert view.widget.children == (view.header, view.log_section)
    assert view.elapsed.value.endswith(" s")

    view.finish("reused mlbox/analysis:abc (500 MB) · ran in 1.2 s on CPU")
    assert view.state.status == "done"
    assert view.widget.children == (view.summary,)  # one line
    assert "ran in 1.2 s on CPU" in view.summary.value
    assert view.stop_button.disabled
    assert not token.cancelled


def test_stop_button_cancels_and_failure_keeps_the_log():
    token = CancelToken()
    view = WidgetProgressView(token)
    view.handle(RUN[3])
    view.stop_button.click()
    assert token.cancelled
    assert view.stop_button.disabled and view.stop_button.description == "Stopping"
    view.stopped("stopped: build cancelled")
    assert view.state.status == "stopped"
    assert view.widget.children == (view.summary, view.log_section)

    blocking = WidgetProgressView(CancelToken())
    assert blocking.stop_button.layout.display is None
    blocking.hide_stop()
    assert blocking.stop_button.layout.display == "none"

    failed = WidgetProgressView(CancelToken())
    failed.handle(RUN[3])
    failed.fail("build of mlbox/x:1 failed")
    assert failed.state.status == "failed" and failed.progress.bar_style == "danger"
    assert failed.widget.children == (failed.summary, failed.log_section)


def test_text_view_prints_phases_steps_and_warnings_not_logs():
    out = io.StringIO()
    view = TextProgressView(CancelToken(), title="%%mlbox", stream=out)
    for event in RUN:
        view.handle(event)
    view.finish("built mlbox/analysis:abc")
    lines = out.getvalue().splitlines()
    assert any(line.endswith("warning: foo: not installed in this kernel") for line in lines)
    assert any(line.endswith("building step 2/4: RUN uv pip install") for line in lines)
    assert any(line.endswith("running: executing analysis-cell-1.ipynb") for line in lines)
    assert not any("Using cache" in line or "container stderr line" in line for line in lines)
    assert lines[-1].endswith("built mlbox/analysis:abc")
    assert all(line.startswith("[%%mlbox ") for line in lines)

    quiet = io.StringIO()
    view = TextProgressView(CancelToken(), stream=quiet, quiet=True)
    for event in RUN:
        view.handle(event)
    view.finish("done")
    assert quiet.getvalue().count("\n") == 1 and "warning: foo" in quiet.getvalue()


def test_rendering_rule(monkeypatch):
    """Terminal/plain IPython gets text; the env override wins. (The ipykernel cases — a Jupyter
    session gets widgets, nbclient gets text — run in a real kernel in test_cell_magic.py.)"""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("MLBOX_PROGRESS", raising=False)
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    assert not widgets_can_render(None)
    assert not widgets_can_render(shell)
    monkeypatch.setenv("JPY_SESSION_NAME", "/x/a.ipynb")
    assert not widgets_can_render(shell)  # not an ipykernel: no comms, whatever the session
    assert isinstance(progress_view(shell, CancelToken()), TextProgressView)
    monkeypatch.setenv("MLBOX_PROGRESS", "widgets")
    assert widgets_can_render(shell)
    assert isinstance(progress_view(shell, CancelToken()), WidgetProgressView)
    assert isinstance(progress_view(shell, CancelToken(), quiet=True), TextProgressView)
    monkeypatch.setenv("MLBOX_PROGRESS", "text")
    assert not widgets_can_render(shell)


def test_log_updates_are_throttled():
    view = WidgetProgressView(CancelToken())
    for i in range(200):
        view.handle(ProgressEvent("building", "log", f"line {i}"))
    assert "line 0" in view.log.value  # the first line shows at once
    assert "line 199" not in view.log.value  # the rest waits for the next flush (≤ 0.5 s)
    assert len(view.state.log) == 200
    view.finish("done")
    assert "line 199" in view.log.value and "line 184" not in view.log.value  # a tail
    assert "… 185 earlier lines" in view.log.value

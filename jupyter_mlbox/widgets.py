"""Renders progress events in a notebook: one compact ipywidgets view, or plain text lines.

The core emits :class:`~jupyter_mlbox.core.events.ProgressEvent`; each view applies them to its
:class:`~jupyter_mlbox.core.events.ProgressState` (the one progress model of every front end)
and renders that. Both renderers have the same interface (``handle(event)``, ``tick()``, ``finish(summary)``,
``fail(message)``), so the magic does not care which one it got.

Which one (:func:`widgets_can_render`), one rule: widgets when the kernel is an ipykernel
(``ZMQInteractiveShell``) whose front end is a Jupyter server session — JupyterLab, Notebook and
VS Code tell the kernel which notebook it belongs to (``JPY_SESSION_NAME`` / ``__session__`` /
``__vsc_ipynb_file__``); those front ends have a widget manager. Anything else (terminal IPython,
nbclient / nbconvert, papermill) gets plain text lines, because a widget there would be saved
as an unreadable placeholder. ``MLBOX_PROGRESS=widgets|text`` overrides the rule.
"""
from __future__ import annotations

import html
import os
import sys
import time
from typing import TextIO

from .core.events import (PHASES, CancelToken, EventKind, Phase, ProgressEvent, ProgressState,
                          log_line)

#: How many log lines the collapsible log keeps.
LOG_LINES = 400


def widgets_can_render(shell) -> bool:
    """The rule in the module docstring."""
    forced = os.environ.get("MLBOX_PROGRESS", "").strip().lower()
    if forced in {"widgets", "widget"}:
        return True
    if forced in {"text", "plain"}:
        return False
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    namespace = getattr(shell, "user_ns", {}) or {}
    return bool(os.environ.get("JPY_SESSION_NAME") or namespace.get("__session__")
                or namespace.get("__vsc_ipynb_file__"))


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d} min"


class WidgetProgressView:
    """One compact ipywidgets view of a build/run; collapses to one line when done.

    ``phase`` (bold label) · progress bar (build step i/n) · step text · elapsed · Stop button,
    then, once the plan is made, its report ("before the build: …", open when something is
    unverified) and a collapsed "log" section. Stop sets ``cancel``.
    """

    def __init__(self, cancel: CancelToken, *, title: str = "mlbox") -> None:
        import ipywidgets as w

        self.cancel = cancel
        self.state = ProgressState(LOG_LINES)
        self.title = title
        fixed = {"flex": "0 0 auto"}
        self.phase_label = w.HTML(self._phase_html(),
                                  layout=w.Layout(min_width="170px", **fixed))
        self.progress = w.IntProgress(value=0, min=0, max=1, bar_style="info",
                                      layout=w.Layout(width="160px", **fixed))
        self.detail = w.Label("", layout=w.Layout(flex="1 1 auto", min_width="0",
                                                  overflow="hidden"))
        self.elapsed = w.Label("0.0 s", layout=w.Layout(width="64px", **fixed))
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning",
                                    tooltip="cancel the build or stop and remove the container",
                                    layout=w.Layout(width="80px", **fixed))
        self.stop_button.on_click(self._on_stop)
        self.log = w.HTML(self._log_html(), layout=w.Layout(width="100%"))
        self._log_dirty = False
        self._log_flushed = 0.0
        self.log_section = w.Accordion(children=[self.log], selected_index=None)
        self.log_section.set_title(0, "log")
        self.header = w.HBox([self.phase_label, self.progress, self.detail, self.elapsed,
                              self.stop_button],
                             layout=w.Layout(align_items="center"))
        self.report = w.HTML("", layout=w.Layout(width="100%"))
        self.report_section = w.Accordion(children=[self.report], selected_index=None)
        self.report_section.set_title(0, "plan")
        self.summary = w.HTML("")
        self.widget = w.VBox([self.header, self.log_section])

    # --- rendering -----------------------------------------------------------------------------

    def _phase_html(self) -> str:
        return (f'<span style="white-space:nowrap"><b>{html.escape(self.title)}</b> · '
                f"{html.escape(self.state.phase)}</span>")

    def _show_report(self) -> None:
        """The plan's report, shown before the build: its headline as the section's title, its
        lines inside; opened when it names something unverified."""
        head, *rest = self.state.report or [""]
        self.report_section.set_title(0, head)
        self.report.value = ('<pre style="margin:0;font-size:11px;line-height:1.3;'
                             f'white-space:pre-wrap">{html.escape(chr(10).join(rest))}</pre>')
        if any(line.lstrip().startswith("unverified:") for line in rest):
            self.report_section.selected_index = 0
        if self.report_section not in self.widget.children:
            self.widget.children = [self.header, self.report_section, self.log_section]

    def handle(self, event: ProgressEvent) -> None:
        self.state.apply(event)
        if event.kind == EventKind.REPORT:
            self._show_report()
        self.phase_label.value = self._phase_html()
        if self.state.total:
            self.progress.max = self.state.total
            self.progress.value = self.state.step or 0
            self.detail.value = f"step {self.state.step}/{self.state.total}: {self.state.message}"
        else:
            self.progress.max = len(PHASES) - 1
            self.progress.value = PHASES.index(self.state.phase) \
                if self.state.phase in PHASES else 0
            self.detail.value = self.state.message
        if self.cancel.cancelled:
            self.detail.value = "stopping…"
        if log_line(event):
            self._log_dirty = True
        self.tick()

    def _log_html(self, lines: int = 15) -> str:
        """The newest ``lines`` lines: a tail needs no scrolling to follow (front ends' HTML
        sanitizers drop the CSS that would keep a scrolled box at its bottom)."""
        shown = self.state.log[-lines:]
        hidden = len(self.state.log) - len(shown)
        text = html.escape("\n".join(shown))
        more = f"… {hidden} earlier lines\n" if hidden else ""
        return ('<pre style="margin:0;font-size:11px;line-height:1.3;white-space:pre-wrap">'
                f"{html.escape(more)}{text}</pre>")

    def flush_log(self, lines: int = 15) -> None:
        self.log.value = self._log_html(lines)
        self._log_dirty = False
        self._log_flushed = time.monotonic()

    def tick(self) -> None:
        """Elapsed time, and the log at most twice a second (a build logs hundreds of lines)."""
        self.elapsed.value = _elapsed(self.state.elapsed)
        if self._log_dirty and time.monotonic() - self._log_flushed > 0.5:
            self.flush_log()

    def hide_stop(self) -> None:
        """For a blocking run, where the kernel cannot receive the click: interrupt instead."""
        self.stop_button.layout.display = "none"

    def _on_stop(self, _button=None) -> None:
        self.cancel.cancel()
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping"
        self.detail.value = "stopping…"

    def _collapse(self, text: str, colour: str, keep_log: bool) -> None:
        self.flush_log(60 if keep_log else 15)
        self.summary.value = (f'<span style="color:{colour}">'
                              f"<b>{html.escape(self.title)}</b> · {html.escape(text)}</span>")
        self.stop_button.disabled = True
        report = [self.report_section] if keep_log and self.state.report else []
        self.widget.children = [self.summary] + report + ([self.log_section] if keep_log else [])

    def finish(self, summary: str) -> None:
        self.state.end("done", summary)
        self._collapse(summary, "inherit", keep_log=False)

    def fail(self, message: str) -> None:
        self.state.end("failed", message)
        self.progress.bar_style = "danger"
        self._collapse(message, "var(--jp-error-color1, #d32f2f)", keep_log=True)

    def stopped(self, message: str) -> None:
        self.state.end("stopped", message)
        self._collapse(message, "var(--jp-warn-color1, #f57c00)", keep_log=True)

    def show(self) -> None:
        from IPython.display import display

        display(self.widget)


class TextProgressView:
    """The same events as plain lines (terminal IPython, nbclient, nbconvert).

    Phases, build steps, infos and warnings are printed; raw log lines only with ``verbose``.
    Lines go to ``stream`` (stderr by default) so they never mix with the cell's own stdout.
    """

    def __init__(self, cancel: CancelToken, *, title: str = "mlbox", stream: TextIO | None = None,
                 quiet: bool = False, verbose: bool = False) -> None:
        self.cancel = cancel
        self.title = title
        self.stream = stream
        self.quiet = quiet
        self.verbose = verbose
        self.state = ProgressState(LOG_LINES)

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"[{self.title} {self.state.elapsed:6.1f}s] {text}\n")
        stream.flush()

    def handle(self, event: ProgressEvent) -> None:
        self.state.apply(event)
        if event.kind == EventKind.WARNING:
            self._print(f"warning: {event.message}")
            return
        if self.quiet or (event.kind in (EventKind.LOG, EventKind.OUTPUT) and not self.verbose):
            return
        if event.kind == EventKind.PHASE and event.phase == Phase.DONE:
            return  # finish() prints the summary
        if event.kind == EventKind.REPORT:  # the plan's summary, before the build
            head, *rest = event.message.splitlines() or [""]
            self._print(head)
            for line in rest:
                self._print(f"  {line}")
            return
        if event.kind == EventKind.LOG:
            self._print(f"  {event.message}")
        elif event.kind == EventKind.STEP:
            self._print(f"{event.phase} step {event.step}/{event.total}: {event.message}")
        else:
            self._print(f"{event.phase}: {event.message}".rstrip(": "))

    def tick(self) -> None:
        pass

    def show(self) -> None:
        pass

    def finish(self, summary: str) -> None:
        self.state.end("done", summary)
        if not self.quiet:
            self._print(summary)

    def fail(self, message: str) -> None:
        tail = self.state.log[-15:]  # before the failure itself joins the log
        self.state.end("failed", message)
        if not self.quiet and tail and not self.verbose:
            self._print("last log lines:\n    " + "\n    ".join(tail))

    def stopped(self, message: str) -> None:
        self.state.end("stopped", message)
        self._print(message)


def progress_view(shell, cancel: CancelToken, *, title: str = "mlbox", quiet: bool = False):
    """The renderer for this kernel: widgets where they render (and not ``quiet``), text
    otherwise."""
    if not quiet and widgets_can_render(shell):
        try:
            return WidgetProgressView(cancel, title=title)
        except Exception:  # noqa: BLE001 - a broken widget install must not break the cell
            pass
    return TextProgressView(cancel, title=title, quiet=quiet)

"""Showing here what came back from the container: streams, rich outputs and the result as if
the cell had run locally; errors as a short line (or the in-container traceback), not as the
local traceback of the magic."""
from __future__ import annotations

import os
import sys
from pathlib import Path


class ContainerResult:
    """The cell's ``execute_result`` from the container, shown as this cell's result."""

    def __init__(self, data: dict, metadata: dict | None = None) -> None:
        self.data = dict(data)
        self.metadata = dict(metadata or {})

    def _repr_mimebundle_(self, include=None, exclude=None):
        return dict(self.data), dict(self.metadata)

    def __repr__(self) -> str:
        return str(self.data.get("text/plain", ""))


#: A widget view points at a model that lived in the container's kernel: it cannot show here.
_CONTAINER_ONLY = ("application/vnd.jupyter.widget-view+json",)


def _portable(data) -> dict:
    """The representations of an output that mean something outside the container."""
    return {mime: value for mime, value in dict(data).items() if mime not in _CONTAINER_ONLY}


def display_outputs(outputs) -> ContainerResult | None:
    """Re-emit a cell's outputs here: streams to sys.stdout/err, rich outputs as display data.
    Returns the execute_result (errors are not shown here)."""
    from IPython.display import publish_display_data

    result = None
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
            stream.write(output.get("text", ""))
            stream.flush()
        elif kind == "display_data":
            data = _portable(output.get("data", {}))
            if data:
                sys.stdout.flush()
                sys.stderr.flush()
                publish_display_data(data=data, metadata=dict(output.get("metadata", {})))
        elif kind == "execute_result":
            data = _portable(output.get("data", {}))
            if data:
                result = ContainerResult(data, output.get("metadata", {}))
    return result


def error_output(cell) -> dict | None:
    """The ``error`` output of a notebook cell, if it has one."""
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def shown_as(err: BaseException, lines: list[str]) -> BaseException:
    """Make IPython show ``lines`` instead of the (uninteresting) local traceback of ``err``."""
    err._render_traceback_ = lambda: list(lines)  # type: ignore[attr-defined]
    return err


def short(err: BaseException) -> BaseException:
    """``err`` shown as one red ``Name: message`` line."""
    return shown_as(err, [f"\x1b[0;31m{type(err).__name__}\x1b[0m: {err}"])


def link(path: Path, what: str) -> None:
    """A link to a file the job wrote (and the same as a line on stdout)."""
    from IPython.display import HTML, display

    path = Path(path)
    try:
        shown = os.path.relpath(path)
    except ValueError:
        shown = str(path)
    display(HTML(f'{what}: <a href="{shown}" target="_blank">{shown}</a>'),
            metadata={"mlbox": {"output": str(path)}})
    print(f"wrote {shown}")


class LiveOutputs:
    """The outputs of the user's cell (``index`` in the container notebook), shown here as
    the container makes them (OUTPUT events, handled on the kernel's thread), and what is left
    to show at the end: the execute_result (never streamed), or everything when a streamed
    output went missing on the way (the runner counts what it sent)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.shown = 0

    def handle(self, event) -> bool:
        """Show ``event`` if it is an output of the cell; True when it was an OUTPUT event
        (of any cell: those of setup cells are not the user's to see)."""
        from ..core.events import EventKind

        if event.kind != EventKind.OUTPUT:
            return False
        if event.step == self.index and event.output is not None:
            if event.output.get("output_type") == "clear_output":
                from IPython.display import clear_output

                clear_output(wait=bool(event.output.get("wait")))
            else:
                display_outputs([event.output])
                self.shown += 1
        return True

    def rest(self, notebook, outputs: list) -> list:
        """Of the cell's final ``outputs``, those not shown live."""
        from ..core.container_runner import STREAMED

        streamed = ((notebook.metadata.get("mlbox") or {}).get("streamed") or {}).get(
            str(self.index))
        if streamed is None or streamed != self.shown:
            return list(outputs)  # not streamed, or a line lost: all of it, once more
        return [o for o in outputs if o.get("output_type") not in STREAMED]


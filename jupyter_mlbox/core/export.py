"""Export a notebook as a self-contained Docker image that executes it when run.

The image holds the notebook, the local files it uses and its pinned dependencies; its
entrypoint executes the notebook and writes the executed copy to ``/out/<notebook>``::

    mkdir -p out && chmod 777 out        # the image runs as uid 1000: /out must be writable
    docker run --rm -v "$PWD/out:/out" TAG [-p NAME VALUE]... [--params-json JSON]
    docker run --rm -e MLBOX_PARAM_n=3 -v "$PWD/out:/out" TAG

(``--user "$(id -u)"`` instead of chmod works as well.) The exit status is non-zero when a cell
fails (1), the kernel dies (2), a cell times out (3) or /out is unusable (4).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError
from .build import build_image, plan_notebook
from .engine import Engine
from .events import CancelToken, ProgressCallback, ProgressEvent, ignore_progress
from .options import BuildOptions


@dataclass(frozen=True)
class ExportResult:
    #: The name the user asked for (``registry/repo:tag``).
    tag: str
    size: int
    pushed: bool
    #: The content-hash tag the image was built under (``mlbox/<slug>:<12 hex>``).
    content_tag: str
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"tag": self.tag, "size": self.size, "pushed": self.pushed,
                "content_tag": self.content_tag, "seconds": round(self.seconds, 2)}

    def summary(self) -> str:
        return (f"exported {self.tag}" + (" and pushed it" if self.pushed else "")
                + f"; run it with: docker run --rm -v \"$PWD/out:/out\" {self.tag}")


def export_image(engine: Engine, path: str | Path, tag: str, *,
                 build_options: BuildOptions = BuildOptions(), push: bool = False,
                 on_event: ProgressCallback = ignore_progress,
                 cancel: CancelToken | None = None) -> ExportResult:
    """Build an image that executes the notebook at ``path``, tag it ``tag``, maybe push it."""
    started = time.monotonic()
    path = Path(path)
    tag = normalized_tag(tag)
    _, plan = plan_notebook(path, build_options, on_event=on_event, self_contained=True)
    if cancel is not None:
        cancel.raise_if_cancelled()
    build = build_image(engine, plan, rebuild=build_options.rebuild, on_event=on_event,
                        cancel=cancel)
    engine.tag(build.tag, tag)
    on_event(ProgressEvent("building", "info", f"tagged {build.tag} as {tag}"))
    pushed = False
    if push:
        if cancel is not None:
            cancel.raise_if_cancelled()
        on_event(ProgressEvent("pushing", "phase", f"pushing {tag}"))
        engine.push(tag, on_line=lambda line: on_event(ProgressEvent("pushing", "log", line)))
        pushed = True
    seconds = time.monotonic() - started
    on_event(ProgressEvent("done", "phase", f"exported {tag}" + (" and pushed it" if pushed
                                                                   else "")))
    return ExportResult(tag, build.size, pushed, build.tag, seconds)


def normalized_tag(tag: str) -> str:
    """``name`` → ``name:latest``; reject what docker would reject, with a clear message."""
    import re

    tag = tag.strip()
    reference = re.compile(
        r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
        r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$")
    if not tag or not reference.match(tag):
        raise OptionError(f"{tag!r} is not a valid image name: use [REGISTRY/]NAME[:TAG] with a "
                         f"lowercase NAME, e.g. myteam/analysis:1.0")
    if ":" not in tag.rsplit("/", 1)[-1]:
        tag += ":latest"
    return tag

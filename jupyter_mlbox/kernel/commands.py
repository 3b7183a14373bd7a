"""The work of ``%mlbox build`` and ``%mlbox run [NOTEBOOK]``, and how each ends in the
notebook (the other line commands only print, in the magic)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..core.events import EventKind, Phase, ProgressEvent
from ..core.options import BuildOptions, RunOptions
from ..errors import CellExecutionError
from .display import link, short
from .job import ended_badly, failing_with


def build_work(plan, rebuild: bool, engine: Callable, fresh: Callable[[list], list]):
    """Build (or reuse) the planned image; the BuildResult."""
    def work(emit, cancel):
        from ..core.build import build_image

        for warning in fresh(plan.warnings):
            emit(ProgressEvent(Phase.INFERRING, EventKind.WARNING, warning))
        emit(ProgressEvent(Phase.INFERRING, EventKind.REPORT, plan.report().text()))
        return build_image(engine(), plan, rebuild=rebuild, on_event=emit, cancel=cancel)

    return work


def build_done(view, result) -> None:
    view.finish(result.summary())
    print(result.tag)


build_failed = failing_with("the build was stopped")


def run_work(path: Path, output: Path, build_options: BuildOptions, run_options: RunOptions,
             engine: Callable):
    """Infer, build (or reuse) and run the notebook at ``path``, writing ``output``."""
    def work(emit, cancel):
        from ..core.run import run_notebook_file

        return run_notebook_file(engine(), path, output=output, build_options=build_options,
                                 options=run_options, on_event=emit, cancel=cancel)

    return work


def run_done(view, result) -> None:
    view.finish(result.summary())
    link(result.output_path, "the executed notebook")


def run_failed(view, err: BaseException) -> BaseException:
    if isinstance(err, CellExecutionError) and err.output_path is not None:
        view.fail(f"a cell failed in the container; see {err.output_path}")
        link(err.output_path, "the executed notebook, up to the failing cell")
        return short(err)
    return ended_badly(view, err, "the run was stopped, the container removed, nothing written")

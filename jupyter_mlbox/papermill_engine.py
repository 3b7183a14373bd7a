"""``papermill in.ipynb out.ipynb --engine mlbox``: papermill's parameters and output file, the
notebook executed in the container jupyter_mlbox infers and builds for it.

An adapter only: papermill has already injected the parameters cell into ``nb_man.nb``; this
plans, builds and runs with the core (the configured defaults give GPUs, host and limits), then
hands each executed cell to papermill's execution manager so its metadata and its error marker
(raised as PapermillExecutionError by papermill itself, after the engine returns) are papermill's.
Imported only by papermill's ``papermill.engine`` entry point.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import nbformat
from papermill.engines import Engine
from papermill.log import logger

from .config import load_defaults
from .core.build import build_image, local_files_for, plan_image, plan_notebook
from .core.engine import connect
from .core.events import ProgressEvent
from .core.notebook import code_cell_sources
from .core.options import resolve_options
from .core.run import run_notebook
from .errors import CellExecutionError, NotebookError, RunTimeoutError


class MlboxEngine(Engine):
    """papermill's engine interface over jupyter_mlbox's plan → build → run."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, execution_timeout=None, input_path=None,
                                 **kwargs):
        build_options, run_options = resolve_options({}, load_defaults())
        if execution_timeout:
            run_options = replace(run_options, timeout=float(execution_timeout))
        on_event = _progress(log_output, stdout_file, stderr_file)
        source = Path(input_path) if isinstance(input_path, (str, Path)) else None
        name = source.name if source and source.suffix == ".ipynb" else "notebook.ipynb"
        if source is not None and source.is_file():  # the notebook's folder is its project
            _, plan = plan_notebook(source, build_options, on_event=on_event)
            files, notebook_dir = plan.local_files, plan.notebook_dir
        else:  # stdin, a URL: papermill's working directory is the project
            sources = code_cell_sources(nb_man.nb)
            plan = plan_image(sources, notebook_name=name, search_dir=Path.cwd(),
                              options=build_options)
            files = local_files_for(Path.cwd(), sources, plan.inference.local_modules)
            notebook_dir = ""
        engine = connect(run_options.host)
        build = build_image(engine, plan, rebuild=build_options.rebuild, on_event=on_event)
        try:
            executed = run_notebook(
                engine, build.tag, nb_man.nb, name=name,
                files=files, notebook_dir=notebook_dir, options=run_options, on_event=on_event,
                stream_outputs=bool(log_output or stdout_file or stderr_file)).notebook
            failed = None
        except (CellExecutionError, RunTimeoutError) as err:
            if err.notebook is None:
                raise
            executed, failed = err.notebook, err
        _copy_back(nb_man, executed, failed)
        if failed is not None and failed.failed_cell is None:
            raise failed  # no cell to mark: papermill would take the run for a success
        return nb_man.nb


def _copy_back(nb_man, executed, failed) -> None:
    """Each executed cell into papermill's notebook through its manager (start, exception,
    complete), timed by when the container ran it; cells after a failure stay pending."""
    if len(executed.cells) != len(nb_man.nb.cells):
        raise NotebookError(f"the container returned {len(executed.cells)} cells for "
                           f"{len(nb_man.nb.cells)}; the executed notebook does not match")
    nb_man.nb.metadata["mlbox"] = executed.metadata.get("mlbox", {})
    if "language_info" in executed.metadata:
        nb_man.nb.metadata["language_info"] = executed.metadata["language_info"]
    failed_cell = getattr(failed, "failed_cell", None)
    for index, (cell, ran) in enumerate(zip(nb_man.nb.cells, executed.cells)):
        if failed is not None and failed_cell is not None and index > failed_cell:
            break
        nb_man.cell_start(cell, index)
        if cell.cell_type == "code":
            cell.outputs = ran.get("outputs", [])
            cell.execution_count = ran.get("execution_count")
            cell.metadata["execution"] = ran.metadata.get("execution", {})
        if index == failed_cell:  # papermill reports the cell's first error output
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if errors and isinstance(failed, RunTimeoutError):  # the runner's interrupt: say why
                errors[0].update(ename=type(failed).__name__, evalue=str(failed), traceback=[
                    *errors[0].get("traceback", []), f"{type(failed).__name__}: {failed}"])
            elif not errors:  # a dead kernel leaves none
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=type(failed).__name__, evalue=str(failed),
                    traceback=[f"{type(failed).__name__}: {failed}"]))
            nb_man.cell_exception(cell, cell_index=index, exception=failed)
        nb_man.cell_complete(cell, cell_index=index)
        _container_timing(cell)


def _container_timing(cell) -> None:
    """papermill's start/end/duration of a cell from nbclient's timestamps in the container
    (the copy back happens after the fact, so the manager's own clock says nothing)."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.status.busy"), timing.get("shell.execute_reply")
    if start and end:
        began, ended = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
        cell.metadata.papermill.update(start_time=began.isoformat(), end_time=ended.isoformat(),
                                       duration=(ended - began).total_seconds())


def _progress(log_output, stdout_file, stderr_file):
    """Progress into papermill's logger; cell output (as it is made) to it when --log-output,
    and to --stdout-file / --stderr-file."""
    def on_event(event: ProgressEvent) -> None:
        if event.kind == "output":
            output = event.output or {}
            if output.get("output_type") != "stream":
                return
            stream = stderr_file if output.get("name") == "stderr" else stdout_file
            if stream is not None:
                stream.write(output.get("text", ""))
                stream.flush()
            if log_output:
                (logger.warning if output.get("name") == "stderr" else logger.info)(
                    output.get("text", "").rstrip("\n"))
        elif event.kind == "warning":
            logger.warning(str(event))
        elif event.kind in ("phase", "info"):
            logger.info(str(event))
        else:  # build log lines, steps, the plan report
            logger.debug(str(event))
    return on_event

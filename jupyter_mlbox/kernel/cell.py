"""A ``%%mlbox`` cell: the request (what runs, with which options), its work (infer → build or
reuse → run in a container) and how its ending reads in the notebook."""
from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

from IPython.core.error import UsageError

from ..core.events import EventKind, Phase, ProgressEvent
from ..core.options import BuildOptions, RunOptions
from ..errors import CellExecutionError, MlboxError, SerializationError, UserCancelledError
from ..variables import (INPUT_FILE, OUTPUT_FILE, TRUST_NOTICE, dumper_cell_source,
                         loader_cell_source, pack_variables, read_out_values, split_names,
                         writer_requirements)
from .context import (KernelContext, kernel_context, kernel_read_files, kernel_traced_modules,
                      tracing)
from .display import LiveOutputs, display_outputs, error_output, short, shown_as
from .job import ended_badly
from .setup_cells import setup_cells

STOPPED = "the build was stopped / the container removed"


@dataclass
class CellRequest:
    """A parsed ``%%mlbox`` cell, ready to run: the container notebook is the setup cells, the
    loader of ``--in``, the cell, and the dumper of ``--out``."""

    args: argparse.Namespace  # as parsed: the view's -q/-v and the per-cell flags
    cell: str
    context: KernelContext
    build_options: BuildOptions
    run_options: RunOptions
    setup: list[tuple[str, str]] = field(default_factory=list)
    inputs: bytes | None = None
    in_names: list[str] = field(default_factory=list)
    out_names: list[str] = field(default_factory=list)
    container_notebook: str = ""

    def cells(self) -> tuple[list[str], int]:
        """The container notebook's cells and the index of the user's cell in it."""
        cells = [source for _, source in self.setup]
        if self.in_names:
            cells.append(loader_cell_source(self.in_names))
        index = len(cells)
        cells.append(self.cell)
        if self.out_names:
            cells.append(dumper_cell_source(self.out_names,
                                            out_pickle=self.run_options.out_pickle))
        return cells, index


def cell_request(shell, args: argparse.Namespace, cell: str, build_options: BuildOptions,
                 run_options: RunOptions) -> CellRequest:
    """The request for ``cell``; UsageError or SerializationError (shown short) when it cannot
    run: an empty cell, bad ``--in``/``--out`` names, ``--in`` values that do not pickle."""
    if not cell.strip():
        raise UsageError("%%mlbox: the cell is empty")
    try:
        in_names, out_names = split_names(args.inputs), split_names(args.outputs)
    except ValueError as err:
        raise UsageError(f"--in/--out: {err}") from None
    context = kernel_context(shell, cell)
    request = CellRequest(args, cell, context, build_options, run_options,
                          in_names=in_names, out_names=out_names)
    if args.with_setup:
        request.setup = setup_cells(context.earlier)
    if in_names:
        try:
            request.inputs = pack_variables(shell.user_ns, in_names)
        except SerializationError as err:
            raise short(err) from None
    slug = context.notebook_name.rsplit(".", 1)[0]
    request.container_notebook = f"{slug}-cell-{uuid.uuid4().hex[:8]}.ipynb"
    return request


def planned_and_built(request: CellRequest, engine: Callable, fresh: Callable[[list], list],
                      emit, cancel, *, writers: bool):
    """Plan the image of ``request``'s cell (with the ``--out`` writers when ``writers``: a
    DataFrame or a model comes back in its safe format, written in the container), say the
    plan, build or reuse it: ``(engine, build, files)``. One-shot cells and sessions both."""
    from ..core.build import build_image, local_files_for, plan_image
    from ..core.report import import_sources

    context = request.context
    emit(ProgressEvent(Phase.INFERRING, EventKind.PHASE,
                       f"reading the imports of {context.described}"))
    if tracing(request.build_options):
        emit(ProgressEvent(Phase.INFERRING, EventKind.INFO,
                           "counting what this kernel loaded beyond a fresh kernel "
                           "(--no-trace: its imports only)"))
    traced = kernel_traced_modules(request.build_options)
    plan = plan_image(context.sources, notebook_name=context.notebook_name,
                      search_dir=context.search_dir, options=request.build_options,
                      traced=traced)
    needed = (writer_requirements(plan.inference.names(), request.build_options.exclude)
              if writers else [])
    if needed:
        plan = plan_image(context.sources, notebook_name=context.notebook_name,
                          search_dir=context.search_dir, traced=traced,
                          options=replace(request.build_options,
                                          pip=request.build_options.pip + tuple(needed)))
    for warning in fresh(plan.warnings):
        emit(ProgressEvent(Phase.INFERRING, EventKind.WARNING, warning))
    if request.args.with_setup:
        taken = ", ".join(label for label, _ in request.setup) or "none"
        emit(ProgressEvent(Phase.INFERRING, EventKind.INFO,
                           f"--with-setup: running {taken} first"))
    files = local_files_for(context.search_dir, [s for _, s in request.setup] + [request.cell],
                            plan.inference.local_modules,
                            read_files=kernel_read_files(request.build_options,
                                                         context.search_dir))
    plan.local_files, plan.imported = dict(files), import_sources(context.sources)
    emit(ProgressEvent(Phase.INFERRING, EventKind.REPORT, plan.report().text()))
    docker = engine()
    build = build_image(docker, plan, rebuild=request.build_options.rebuild, on_event=emit,
                        cancel=cancel)
    return docker, build, files


def cell_work(request: CellRequest, engine: Callable, fresh: Callable[[list], list]):
    """The task's work: the RunResult of the container notebook (its ``build`` set).
    ``engine()`` connects (in the worker); ``fresh`` drops warnings already shown."""
    def work(emit, cancel):
        from ..core.notebook import new_notebook_from_cells
        from ..core.run import run_notebook

        docker, build, files = planned_and_built(request, engine, fresh, emit, cancel,
                                                 writers=bool(request.out_names))
        cells, _ = request.cells()
        if request.inputs is not None:
            files[INPUT_FILE] = request.inputs
        if request.out_names and request.run_options.out_pickle:
            emit(ProgressEvent(Phase.STARTING, EventKind.WARNING, TRUST_NOTICE))
        result = run_notebook(docker, build.tag, new_notebook_from_cells(cells),
                              name=request.container_notebook, files=files,
                              collect=[OUTPUT_FILE] if request.out_names else [],
                              options=request.run_options, on_event=emit, cancel=cancel)
        result.build = build
        return result

    return work


def cell_done(request: CellRequest, view, result, namespace: dict,
              live: LiveOutputs | None = None):
    """The cell's outputs shown here (what ``live`` did not show as they came), ``--out``
    variables set; returns its result."""
    view.finish(result.summary())
    _, index = request.cells()
    outputs = result.notebook.cells[index].get("outputs", [])
    shown = display_outputs(live.rest(result.notebook, outputs) if live else outputs)
    if request.out_names:
        data = result.files.get(OUTPUT_FILE)
        if data is None:
            raise short(SerializationError("--out: the container wrote no variables file"))
        try:
            namespace.update(read_out_values(data, request.out_names,
                                             out_pickle=request.run_options.out_pickle))
        except SerializationError as err:
            raise short(err) from None
    return shown


def cell_failed(request: CellRequest, view, err: BaseException, engine,
                live: LiveOutputs | None = None) -> BaseException:
    """What the user sees when the cell did not finish: the in-container traceback when the
    cell raised, a short error naming the culprit otherwise. ``engine``: the one connected,
    if any, to remove a container an interrupt caught half-created."""
    if isinstance(err, (KeyboardInterrupt, UserCancelledError)):
        sweep_containers(engine, request.container_notebook)
    elif isinstance(err, CellExecutionError) and err.notebook is not None \
            and err.failed_cell is not None:
        _, index = request.cells()
        if err.failed_cell == index:
            return _raised_in_the_cell(view, err, index, live)
        if err.failed_cell < len(request.setup):
            label = request.setup[err.failed_cell][0]
            view.fail(f"--with-setup: {label} failed in the container")
            return short(MlboxError(f"--with-setup: {label} raised {err.ename}: {err.evalue} "
                                    f"in the container"))
        if request.in_names and err.failed_cell == len(request.setup):
            view.fail("--in: the inputs could not be loaded in the container")
            return short(SerializationError(f"--in: {err.evalue}"))
    return ended_badly(view, err, STOPPED)


def _raised_in_the_cell(view, err: CellExecutionError, index: int,
                        live: LiveOutputs | None = None) -> BaseException:
    """The cell's outputs up to the error (those not shown live), then its in-container
    traceback as the error."""
    tag = err.image or "the container"
    view.fail(f"the cell raised {err.ename} inside {tag}")
    cell = err.notebook.cells[index]
    outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
    display_outputs(live.rest(err.notebook, outputs) if live else outputs)
    raised = CellExecutionError(
        f"{err.ename}: {err.evalue} (raised inside the container {tag})", notebook=err.notebook,
        ename=err.ename, evalue=err.evalue, traceback=err.traceback, failed_cell=index,
        image=err.image)
    lines = list((error_output(cell) or {}).get("traceback") or [err.traceback])
    lines.append(f"\x1b[2m(raised inside the container, image {tag})\x1b[0m")
    return shown_as(raised, lines)


def sweep_containers(engine, container_notebook: str) -> None:
    """Remove a container of this cell that an interrupt may have caught half-created."""
    from ..core.dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL

    if engine is None or not container_notebook:
        return
    try:
        for container in engine.list_containers(f"{NOTEBOOK_LABEL}={container_notebook}"):
            if (container.labels or {}).get(MANAGED_LABEL) == "true":
                engine.remove_container(container)
    except MlboxError:
        pass

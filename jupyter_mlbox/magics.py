"""``%%mlbox`` and ``%mlbox``: run a cell (or the notebook) in a container built from its imports.

A thin adapter: parse arguments, call the core, render its progress events (widgets.py), show
the container's outputs as if the cell had run here.

How a cell runs: the core work (infer → build or reuse → run) happens in a worker thread while
the kernel's thread renders the progress events. In ipykernel a ``%%mlbox`` cell is run as an
async cell (an input transformer turns it into an ``await``), so the kernel keeps handling widget
messages — the Stop button works — and an interrupt (■) cancels the job the same way. Called
synchronously (``ip.run_cell_magic``, terminal IPython) the thread waits, and Ctrl-C cancels.
Either way the container is removed and the kernel stays usable.
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import os
import queue
import shlex
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .core.events import CancelToken, ProgressEvent
from .errors import CancelledError, CellExecutionError, MlboxError, SerializationError
from .options import GPUS_HELP, gpus, key_value, positive_number
from .variables import (INPUT_FILE, OUTPUT_FILE, dumper_cell_source, loader_cell_source,
                        pack_variables, split_names, unpack_variables)
from .widgets import progress_view

#: The image name used when the kernel's notebook is not known.
KERNEL_NOTEBOOK_NAME = "kernel"
#: Options ``%mlbox config`` may set as defaults (the per-cell ones are not defaults).
_NOT_CONFIGURABLE = ("--in", "--out", "--with-setup")
_LINE_COMMANDS = ("status", "requirements", "dockerfile", "build", "run", "images", "config")


# --- arguments (type errors become UsageError through MagicArgumentParser.error) ---------------

_COMMON_ARGUMENTS = [
    argument("--gpus", type=gpus, default=None, help=GPUS_HELP),
    argument("--base", metavar="IMAGE", default=None,
             help="base image (default: python:<this kernel's major.minor>-slim)"),
    argument("--pip", metavar="PKG", action="append", default=[],
             help="extra requirement, e.g. --pip 'xgboost>=2' (repeatable)"),
    argument("-r", "--requirements", metavar="FILE", default=None,
             help="use this requirements file instead of inferring from imports"),
    argument("--exclude", metavar="NAME", action="append", default=[],
             help="drop this distribution from the requirements (repeatable)"),
    argument("--timeout", type=positive_number, metavar="S", default=None,
             help="seconds, for the whole run and for each cell"),
    argument("--memory", metavar="SIZE", default=None, help="memory limit, e.g. 4g"),
    argument("--cpus", type=positive_number, metavar="N", default=None, help="CPU limit, e.g. 2"),
    argument("-e", "--env", type=key_value, action="append", default=[], metavar="K=V",
             help="environment variable in the container (repeatable)"),
    argument("--rebuild", action="store_true", help="build even if the image exists"),
    argument("-q", "--quiet", action="store_true",
             help="no progress view; only warnings, results and the cell's outputs"),
    argument("-v", "--verbose", action="store_true",
             help="also print build logs and container output (text progress)"),
]


def _with_arguments(decorators):
    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


# --- what a cell needs ---------------------------------------------------------------------------

def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_constant(k) for k in node.keys) \
            and all(_is_constant(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):  # a docstring
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None
                                                      or _is_constant(node.value))
    if isinstance(node, ast.Try):  # try: import x / except ImportError: x = None
        return all(_is_definition(n) for n in node.body + node.orelse + node.finalbody) \
            and all(_is_definition(n) for h in node.handlers for n in h.body)
    return False


def is_setup_cell(source: str) -> bool:
    """Whether a cell only imports or defines (functions, classes, constants): safe to run again
    before a ``%%mlbox --with-setup`` cell."""
    from .core.notebook import python_source

    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return False
    return bool(tree.body) and all(_is_definition(node) for node in tree.body)


def _is_mlbox_cell(source: str) -> bool:
    return source.lstrip().startswith("%%mlbox")


def _is_this_cell(source: str, body: str) -> bool:
    """Whether notebook/history cell ``source`` is the ``%%mlbox`` cell whose body is ``body``."""
    return _is_mlbox_cell(source) and source.lstrip().partition("\n")[2].strip() == body.strip()


@dataclass
class KernelContext:
    """Where a cell's dependencies come from: the kernel's notebook file, or its history."""

    sources: list[str]
    earlier: list[tuple[str, str]]  # (label, source) of cells before this one
    notebook_name: str
    search_dir: Path
    notebook_path: Path | None = None

    @property
    def described(self) -> str:
        return str(self.notebook_path) if self.notebook_path else "the cells run in this kernel"


def kernel_notebook(shell) -> Path | None:
    """The notebook this kernel belongs to, when the front end said so (and it exists)."""
    namespace = getattr(shell, "user_ns", {}) or {}
    for candidate in (namespace.get("__session__"), os.environ.get("JPY_SESSION_NAME"),
                      namespace.get("__vsc_ipynb_file__")):
        if not candidate or not str(candidate).endswith(".ipynb"):
            continue
        path = Path(str(candidate)).expanduser()
        for option in ([path] if path.is_absolute()
                       else [Path.cwd() / path, Path.cwd() / path.name]):
            if option.is_file():
                return option.resolve()
    return None


def kernel_context(shell, cell: str | None = None) -> KernelContext:
    from .core.notebook import code_cell_sources, read_notebook

    path = kernel_notebook(shell)
    current = (cell or "").strip()
    raw = list(getattr(getattr(shell, "history_manager", None), "input_hist_raw", []))
    numbered = [(f"In[{n}]", source) for n, source in enumerate(raw) if n and source.strip()]
    if numbered and current and _is_this_cell(numbered[-1][1], current):
        numbered = numbered[:-1]  # IPython stores the running cell before it runs
    from_history = list(numbered)
    if path is not None:
        cells = code_cell_sources(read_notebook(path))
        sources = cells + ([cell] if cell else [])
        before = [(f"cell {i + 1}", s) for i, s in enumerate(cells)]
        positions = [i for i, s in enumerate(cells) if current and _is_this_cell(s, current)]
        if positions:
            earlier = before[:positions[0]]
        else:
            earlier = from_history
        return KernelContext(sources, earlier, path.name, path.parent, path)
    sources = [source for _, source in numbered] + ([cell] if cell else [])
    return KernelContext(sources, from_history, KERNEL_NOTEBOOK_NAME, Path.cwd())


# --- showing what came back ----------------------------------------------------------------------

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


def _shown_as(err: BaseException, lines: list[str]) -> BaseException:
    """Make IPython show ``lines`` instead of the (uninteresting) local traceback of ``err``."""
    err._render_traceback_ = lambda: list(lines)  # type: ignore[attr-defined]
    return err


def _short(err: BaseException) -> BaseException:
    return _shown_as(err, [f"\x1b[0;31m{type(err).__name__}\x1b[0m: {err}"])


def _error_output(cell) -> dict | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


# --- running a job while rendering its events ----------------------------------------------------

class Job:
    """Core work in a worker thread; its progress events rendered by the caller's thread."""

    def __init__(self, work: Callable[[Callable[[ProgressEvent], None], CancelToken], object],
                 view, cancel: CancelToken) -> None:
        self.work = work
        self.view = view
        self.cancel = cancel
        self.events: queue.Queue = queue.Queue()
        self.finished = False
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mlbox-job", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.work(self.events.put, self.cancel)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.error = err
        finally:
            self.events.put(None)

    def _render(self, timeout: float | None) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue.Empty:
            self.view.tick()
            return
        while True:
            if event is None:
                self.finished = True
                return
            self.view.handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _wait_after_cancel(self) -> None:
        """The worker stops promptly once cancelled (and removes its container): wait for it,
        ignoring further interrupts, so nothing is left behind."""
        self.cancel.cancel()
        deadline = time.monotonic() + 120
        while not self.finished and time.monotonic() < deadline:
            try:
                self._render(0.2)
            except KeyboardInterrupt:
                continue

    def _outcome(self):
        if self.error is not None:
            raise self.error
        return self.result

    def run(self):
        """Blocking: Ctrl-C (KeyboardInterrupt) cancels the job, then is re-raised. A blocked
        kernel cannot receive a Stop click, so the view hides its button (■ still works)."""
        getattr(self.view, "hide_stop", lambda: None)()
        self.thread.start()
        try:
            while not self.finished:
                self._render(0.2)
        except KeyboardInterrupt:
            self._wait_after_cancel()
            raise
        return self._outcome()

    async def run_async(self):
        """On the kernel's event loop: widget messages (Stop) keep flowing; an interrupt, which
        ipykernel delivers to an async cell as CancelledError, cancels the job."""
        self.thread.start()
        try:
            while not self.finished:
                self._render(None)
                if not self.finished:
                    await asyncio.sleep(0.1)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._wait_after_cancel()
            raise KeyboardInterrupt from None
        return self._outcome()


# --- the magics ----------------------------------------------------------------------------------

@dataclass
class PendingJob:
    """A line command's job, run blocking or on the kernel's loop, then ``done`` or ``failed``."""

    job: Job
    done: Callable[[object], object]
    failed: Callable[[BaseException], BaseException]

    def run(self):
        try:
            result = self.job.run()
        except BaseException as err:
            raise self.failed(err) from None
        return self.done(result)

    async def run_async(self):
        try:
            result = await self.job.run_async()
        except BaseException as err:
            raise self.failed(err) from None
        return self.done(result)


@dataclass
class CellRequest:
    """A parsed ``%%mlbox`` cell, ready to run."""

    args: argparse.Namespace
    cell: str
    context: KernelContext
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
            cells.append(dumper_cell_source(self.out_names))
        return cells, index


@magics_class
class MlboxMagics(Magics):
    """``%%mlbox`` runs a cell in a container; ``%mlbox`` manages images and runs notebooks."""

    def __init__(self, shell=None, **kwargs) -> None:
        super().__init__(shell, **kwargs)
        self.defaults = ""
        self._engine = None
        self.last_view = None
        self._warned: set[str] = set()
        if shell is not None:
            _install_async_transformer(shell)

    # --- shared helpers ------------------------------------------------------------------------

    def engine(self):
        from .core.engine import DockerEngine

        if self._engine is None:
            self._engine = DockerEngine.connect()
        return self._engine

    def _parse(self, func, line: str) -> argparse.Namespace:
        try:
            # shell quoting, as in the CLI: --pip 'xgboost>=2' (IPython's own split keeps quotes)
            argv = shlex.split(f"{self.defaults} {line}".strip(), posix=True)
            return func.parser.parse_args(argv)
        except SystemExit:  # -h prints the help and "exits"
            raise UsageError(f"see %{'%' if func is self.mlbox_cell else ''}mlbox?") from None
        except ValueError as err:  # unbalanced quotes in the argument string
            raise UsageError(str(err)) from None

    @staticmethod
    def build_options(args):
        from .core.build import BuildOptions

        requirements = Path(args.requirements).expanduser() if args.requirements else None
        if requirements is not None and not requirements.is_file():
            raise UsageError(f"-r {args.requirements}: no such file")
        return BuildOptions(base_image=args.base, pip=tuple(args.pip),
                            requirements_file=requirements, exclude=tuple(args.exclude),
                            rebuild=args.rebuild)

    @staticmethod
    def run_options(args, parameters=None):
        from .core.run import RunOptions

        return RunOptions(gpus=args.gpus or "none", timeout=args.timeout, memory=args.memory,
                          cpus=args.cpus, env=dict(args.env), parameters=dict(parameters or {}))

    def _view(self, args, title: str, cancel: CancelToken):
        view = progress_view(self.shell, cancel, title=title, quiet=args.quiet)
        if args.verbose and hasattr(view, "verbose"):
            view.verbose = True
        self.last_view = view
        view.show()
        return view

    def _new_warnings(self, warnings) -> list[str]:
        """Each warning once per kernel: the same machine-wide warning on every cell is noise."""
        fresh = [w for w in warnings if w not in self._warned]
        self._warned.update(fresh)
        return fresh

    def _sweep(self, container_notebook: str) -> None:
        """Remove a container of this job that an interrupt may have caught half-created."""
        from .core.dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL

        if self._engine is None or not container_notebook:
            return
        try:
            for container in self._engine.list_containers(f"{NOTEBOOK_LABEL}={container_notebook}"):
                labels = container.labels or {}
                if labels.get(MANAGED_LABEL) == "true":
                    self._engine.remove_container(container)
        except MlboxError:
            pass

    # --- %%mlbox ---------------------------------------------------------------------------------

    @cell_magic("mlbox")
    @magic_arguments(name="%mlbox")  # the usage line then reads "%%mlbox …"
    @argument("--in", dest="inputs", metavar="NAMES", action="append", default=[],
              help="variables to send into the container, comma-separated (cloudpickle)")
    @argument("--out", dest="outputs", metavar="NAMES", action="append", default=[],
              help="variables to bring back from the container, comma-separated (cloudpickle)")
    @argument("--with-setup", action="store_true",
              help="first run this notebook's earlier cells that only import or define "
                   "(functions, classes, constants), so the cell sees them")
    @_with_arguments(_COMMON_ARGUMENTS)
    def mlbox_cell(self, line: str, cell: str):
        """Run this cell in a container built from the notebook's inferred dependencies.

        Its outputs (streams, rich displays, the result, errors with the in-container traceback)
        appear here as if it had run locally. The image is cached by a hash of what is built: a
        second cell with the same imports builds nothing.

        Example::

            %%mlbox --gpus auto --in df,params --out model
            model = RandomForestClassifier(**params).fit(df[features], df.y)
        """
        request = self.prepare_cell(line, cell)
        cancel = CancelToken()
        view = self._view(request.args, "%%mlbox", cancel)
        job = Job(self._cell_work(request), view, cancel)
        try:
            outcome = job.run()
        except BaseException as err:
            raise self._cell_failed(request, view, err) from None
        return self._cell_done(request, view, outcome)

    async def mlbox_cell_async(self, line: str, cell: str):
        """What a ``%%mlbox`` cell runs as in ipykernel (see the module docstring)."""
        request = self.prepare_cell(line, cell)
        cancel = CancelToken()
        view = self._view(request.args, "%%mlbox", cancel)
        job = Job(self._cell_work(request), view, cancel)
        try:
            outcome = await job.run_async()
        except BaseException as err:
            raise self._cell_failed(request, view, err) from None
        return self._cell_done(request, view, outcome)

    def prepare_cell(self, line: str, cell: str) -> CellRequest:
        args = self._parse(self.mlbox_cell, line)
        if not cell.strip():
            raise UsageError("%%mlbox: the cell is empty")
        try:
            in_names = split_names(args.inputs)
            out_names = split_names(args.outputs)
        except ValueError as err:
            raise UsageError(f"--in/--out: {err}") from None
        context = kernel_context(self.shell, cell)
        request = CellRequest(args, cell, context, in_names=in_names, out_names=out_names)
        if args.with_setup:
            request.setup = [(label, source) for label, source in context.earlier
                             if not _is_mlbox_cell(source) and is_setup_cell(source)]
        if in_names:
            try:
                request.inputs = pack_variables(self.shell.user_ns, in_names)
            except SerializationError as err:
                raise _short(err) from None
        slug = context.notebook_name.rsplit(".", 1)[0]
        request.container_notebook = f"{slug}-cell-{uuid.uuid4().hex[:8]}.ipynb"
        return request

    def _cell_work(self, request: CellRequest):
        build_options = self.build_options(request.args)
        run_options = self.run_options(request.args)

        def work(emit, cancel):
            from .core.build import build_image, plan_image
            from .core.notebook import new_notebook_from_cells
            from .core.build import local_files_for
            from .core.run import run_notebook

            emit(ProgressEvent("inferring", "phase",
                               f"reading the imports of {request.context.described}"))
            plan = plan_image(request.context.sources,
                              notebook_name=request.context.notebook_name,
                              search_dir=request.context.search_dir, options=build_options)
            for warning in self._new_warnings(plan.warnings):
                emit(ProgressEvent("inferring", "warning", warning))
            if request.args.with_setup:
                taken = ", ".join(label for label, _ in request.setup) or "none"
                emit(ProgressEvent("inferring", "info", f"--with-setup: running {taken} first"))
            engine = self.engine()
            build = build_image(engine, plan, rebuild=build_options.rebuild, on_event=emit,
                                cancel=cancel)
            cells, index = request.cells()
            files = local_files_for(request.context.search_dir,
                                    [s for _, s in request.setup] + [request.cell],
                                    plan.inference.local_modules)
            if request.inputs is not None:
                files[INPUT_FILE] = request.inputs
            nb = new_notebook_from_cells(cells)
            try:
                result = run_notebook(engine, build.tag, nb, name=request.container_notebook,
                                      files=files,
                                      collect=[OUTPUT_FILE] if request.out_names else [],
                                      options=run_options, on_event=emit, cancel=cancel)
            except CellExecutionError as err:
                err.build = build  # type: ignore[attr-defined]
                raise
            return build, result, index

        return work

    def _cell_done(self, request: CellRequest, view, outcome):
        build, result, index = outcome
        view.finish(f"{'built' if build.built else 'reused'} {build.tag} "
                    f"({build.size / 1e6:.0f} MB"
                    + (f", built in {build.seconds:.0f} s" if build.built else "")
                    + f") · ran in {result.seconds:.1f} s on {'GPU' if result.gpu else 'CPU'}")
        shown = display_outputs(result.notebook.cells[index].get("outputs", []))
        if request.out_names:
            data = result.files.get(OUTPUT_FILE)
            if data is None:
                raise _short(SerializationError("--out: the container wrote no variables file"))
            try:
                values = unpack_variables(data)
            except SerializationError as err:
                raise _short(err) from None
            self.shell.user_ns.update(values)
        return shown

    def _cell_failed(self, request: CellRequest, view, err: BaseException) -> BaseException:
        if isinstance(err, KeyboardInterrupt):
            self._sweep(request.container_notebook)
            view.stopped("interrupted: the build was stopped / the container removed")
            return err
        if isinstance(err, CancelledError):
            self._sweep(request.container_notebook)
            view.stopped(f"stopped: {err}")
            return _short(err)
        if isinstance(err, CellExecutionError) and err.notebook is not None:
            _, index = request.cells()
            failed = next((i for i, c in enumerate(err.notebook.cells) if _error_output(c)),
                          None)
            if failed == index:
                tag = getattr(getattr(err, "build", None), "tag", "the container")
                view.fail(f"the cell raised {err.ename} inside {tag}")
                display_outputs([o for o in err.notebook.cells[index].get("outputs", [])
                                 if o.get("output_type") != "error"])
                error = _error_output(err.notebook.cells[index]) or {}
                raised = CellExecutionError(
                    f"{err.ename}: {err.evalue} (raised inside the container {tag})",
                    notebook=err.notebook, ename=err.ename, evalue=err.evalue,
                    traceback=err.traceback)
                lines = list(error.get("traceback") or [err.traceback])
                lines.append(f"\x1b[2m(raised inside the container, image {tag})\x1b[0m")
                return _shown_as(raised, lines)
            if failed is not None and failed < len(request.setup):
                label = request.setup[failed][0]
                view.fail(f"--with-setup: {label} failed in the container")
                return _short(MlboxError(f"--with-setup: {label} raised {err.ename}: "
                                         f"{err.evalue} in the container"))
            if request.in_names and failed == len(request.setup):
                view.fail("--in: the inputs could not be loaded in the container")
                return _short(SerializationError(f"--in: {err.evalue}"))
        if isinstance(err, MlboxError):
            view.fail(str(err).splitlines()[0])
            return _short(err)
        view.fail(f"{type(err).__name__}: {err}")
        return err

    # --- %mlbox ----------------------------------------------------------------------------------

    @line_magic("mlbox")
    @magic_arguments(name="mlbox")
    @argument("command", choices=_LINE_COMMANDS, metavar="COMMAND",
              help="status | requirements | dockerfile | build | run [NOTEBOOK] | images | "
                   "config")
    @argument("notebook", nargs="?", default=None,
              help="for run: the notebook to execute (default: this kernel's notebook)")
    @argument("-o", "--output", default=None,
              help="for run: where to write the executed notebook (default <stem>.mlbox.ipynb)")
    @argument("-p", "--parameter", type=key_value, action="append", default=[],
              metavar="NAME=VALUE", help="for run: papermill-style parameter (repeatable)")
    @argument("--reset", action="store_true", help="for config: forget the defaults")
    @_with_arguments(_COMMON_ARGUMENTS)
    def mlbox_line(self, line: str):
        """Manage the container of this notebook.

        ``%mlbox status`` the daemon, GPU support, this notebook's image and whether it is up to
        date; ``%mlbox requirements`` / ``%mlbox dockerfile`` what would be built;
        ``%mlbox build`` build (or reuse) it; ``%mlbox run [NOTEBOOK]`` execute the whole
        notebook in a container and save the executed copy; ``%mlbox images`` the images
        jupyter_mlbox made; ``%mlbox config [OPTIONS]`` show or set the defaults every
        ``%%mlbox`` / ``%mlbox`` call of this kernel starts from (e.g. ``--gpus auto``).
        """
        outcome = self._line_command(line)
        return outcome.run() if isinstance(outcome, PendingJob) else outcome

    async def mlbox_line_async(self, line: str):
        """What ``%mlbox build`` / ``%mlbox run`` run as in ipykernel (see the module docstring)."""
        outcome = self._line_command(line)
        return await outcome.run_async() if isinstance(outcome, PendingJob) else outcome

    def _line_command(self, line: str):
        if line.strip().split(" ", 1)[0] == "config":
            return self._config(line.strip()[len("config"):])
        args = self._parse(self.mlbox_line, line)
        try:
            return getattr(self, f"_line_{args.command}")(args)
        except MlboxError as err:
            raise _short(err) from None

    def _config(self, rest: str):
        rest = rest.strip()
        if rest in {"--reset", "reset"}:
            self.defaults = ""
            print("%mlbox defaults cleared")
            return None
        if rest:
            for forbidden in _NOT_CONFIGURABLE:
                if forbidden in rest.split():
                    raise UsageError(f"{forbidden} is per cell; it cannot be a default")
            self._parse(self.mlbox_cell, rest)  # validate
            self.defaults = f"{self.defaults} {rest}".strip()
        print(f"%mlbox defaults: {self.defaults or '(none)'}")
        return None

    def _plan(self, args, context: KernelContext | None = None):
        from .core.build import plan_image

        context = context or kernel_context(self.shell)
        return plan_image(context.sources, notebook_name=context.notebook_name,
                          search_dir=context.search_dir, options=self.build_options(args))

    @staticmethod
    def _warn(lines) -> None:
        for line in lines:
            print(f"warning: {line}", file=sys.stderr)

    def _line_requirements(self, args):
        plan = self._plan(args)
        self._warn(plan.warnings)
        sys.stdout.write(plan.inference.requirements_txt())

    def _line_dockerfile(self, args):
        plan = self._plan(args)
        self._warn(plan.warnings)
        sys.stdout.write(plan.context.dockerfile)

    def _line_status(self, args):
        from .core.doctor import diagnose

        context = kernel_context(self.shell)
        for check in diagnose(args.base):
            print(f"{'ok ' if check.ok else 'NO '} {check.name}: {check.detail}")
        plan = self._plan(args, context)
        try:
            present = self.engine().image_exists(plan.tag)
        except MlboxError:
            present = False
        print(f"{'ok ' if present else 'NO '} image: {plan.tag} for {context.described} "
              + ("is up to date" if present else "is not built yet (%mlbox build)"))
        print(f"    defaults: {self.defaults or '(none)'}")

    def _line_images(self, args):
        from .core.images import list_mlbox_images

        images = list_mlbox_images(self.engine())
        if not images:
            print("no jupyter_mlbox images on this daemon")
        for image in images:
            print(f"{image.tag}\t{image.size / 1e6:.0f} MB\t{image.created[:19]}\t"
                  f"{image.notebook}")

    def _stopped_or_failed(self, view, what: str):
        """How a line command's job ends badly: the view says it, the error is shown short."""
        def failed(err: BaseException) -> BaseException:
            if isinstance(err, KeyboardInterrupt):
                view.stopped(f"interrupted: {what}")
                return err
            if isinstance(err, CancelledError):
                view.stopped(f"stopped: {what}")
                return _short(err)
            if isinstance(err, MlboxError):
                view.fail(str(err).splitlines()[0])
                return _short(err)
            view.fail(f"{type(err).__name__}: {err}")
            return err
        return failed

    def _line_build(self, args):
        from .core.build import build_image

        plan = self._plan(args)
        cancel = CancelToken()
        view = self._view(args, "%mlbox build", cancel)

        def work(emit, cancel):
            for warning in self._new_warnings(plan.warnings):
                emit(ProgressEvent("inferring", "warning", warning))
            return build_image(self.engine(), plan, rebuild=args.rebuild, on_event=emit,
                               cancel=cancel)

        def done(result):
            view.finish(f"{'built' if result.built else 'reused'} {result.tag} "
                        f"({result.size / 1e6:.0f} MB, {result.seconds:.1f} s)")
            print(result.tag)

        return PendingJob(Job(work, view, cancel), done,
                          self._stopped_or_failed(view, "the build was stopped"))

    def _line_run(self, args):
        from .core.container_runner import parse_parameter_value
        from .core.notebook import default_output_path
        from .core.run import run_notebook_file

        path = Path(args.notebook).expanduser() if args.notebook else kernel_notebook(self.shell)
        if path is None:
            raise UsageError("%mlbox run: which notebook? This kernel does not know its "
                             "notebook; give a path: %mlbox run analysis.ipynb")
        output = Path(args.output) if args.output else default_output_path(path)
        parameters = {k: parse_parameter_value(v) for k, v in args.parameter}
        build_options = self.build_options(args)
        run_options = self.run_options(args, parameters)
        cancel = CancelToken()
        view = self._view(args, f"%mlbox run {path.name}", cancel)

        def work(emit, cancel):
            return run_notebook_file(self.engine(), path, output=output,
                                     build_options=build_options, options=run_options,
                                     on_event=emit, cancel=cancel)

        def done(result):
            view.finish(f"{'built' if result.build.built else 'reused'} {result.build.tag} · "
                        f"ran in {result.seconds:.1f} s on {'GPU' if result.gpu else 'CPU'}")
            self._link(result.output_path, "the executed notebook")

        stopped_or_failed = self._stopped_or_failed(
            view, "the run was stopped, the container removed, nothing written")

        def failed(err):
            if isinstance(err, CellExecutionError) and err.notebook is not None:
                view.fail(f"a cell failed in the container; see {output}")
                self._link(output, "the executed notebook, up to the failing cell")
                return _short(err)
            return stopped_or_failed(err)

        return PendingJob(Job(work, view, cancel), done, failed)

    @staticmethod
    def _link(path: Path, what: str) -> None:
        from IPython.display import HTML, display

        path = Path(path)
        try:
            shown = os.path.relpath(path)
        except ValueError:
            shown = str(path)
        display(HTML(f'{what}: <a href="{shown}" target="_blank">{shown}</a>'),
                metadata={"mlbox": {"output": str(path)}})
        print(f"wrote {shown}")


# --- %%mlbox as an async cell in ipykernel -------------------------------------------------------

def _async_mlbox_cell(lines: list[str]) -> list[str]:
    """Input transformer: ``%%mlbox ARGS\\nBODY`` → ``await <the magic>(ARGS, BODY)`` in
    ipykernel, so the kernel keeps serving widget messages (the Stop button) while the cell
    runs. A cell that is only ``%mlbox build …`` or ``%mlbox run …`` is treated the same way."""
    if not lines:
        return lines
    first = lines[0]
    line_command = first.strip().split()[:2] in (["%mlbox", "build"], ["%mlbox", "run"]) \
        and not "".join(lines[1:]).strip() and not first.rstrip().endswith("?")
    if not line_command and not (first.startswith("%%mlbox ")
                                 or first.rstrip("\r\n") == "%%mlbox"):
        return lines
    body = "".join(lines[1:])
    if not line_command and not body.strip():
        return lines
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell" \
            or not getattr(shell, "autoawait", False):
        return lines
    module = "__import__('jupyter_mlbox.magics', fromlist=['run_mlbox_cell'])"
    if line_command:
        return [f"await {module}.run_mlbox_line({first.strip()[len('%mlbox'):].strip()!r})\n"]
    arguments = first[len("%%mlbox"):].strip()
    return [f"await {module}.run_mlbox_cell({arguments!r}, {body!r})\n"]


def _install_async_transformer(shell) -> None:
    transformers = getattr(shell, "input_transformers_cleanup", None)
    if transformers is not None and type(shell).__name__ == "ZMQInteractiveShell" \
            and _async_mlbox_cell not in transformers:
        transformers.append(_async_mlbox_cell)


async def run_mlbox_cell(line: str, cell: str):
    """Entry point of the async ``%%mlbox`` cell (see :func:`_async_mlbox_cell`)."""
    from IPython import get_ipython

    magics = get_ipython().magics_manager.registry["MlboxMagics"]
    return await magics.mlbox_cell_async(line, cell)


async def run_mlbox_line(line: str):
    """Entry point of an async ``%mlbox build|run`` cell (see :func:`_async_mlbox_cell`)."""
    from IPython import get_ipython

    magics = get_ipython().magics_manager.registry["MlboxMagics"]
    return await magics.mlbox_line_async(line)

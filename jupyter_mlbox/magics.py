"""``%%mlbox`` and ``%mlbox``: run a cell (or the notebook) in a container built from its imports.

The magics only parse arguments and render: the options come from the one options table
(core/options.py) over the ``MlboxDefaults`` loaded from the Jupyter config files; the work and
how it ends live in :mod:`jupyter_mlbox.kernel`; progress is rendered by widgets.py.

How a cell runs: the core work (infer → build or reuse → run) is a :class:`~.core.task.Task`
in a worker thread while the kernel's thread renders its progress events. In ipykernel a
``%%mlbox`` cell is run as an async cell (kernel/async_cells.py), so the kernel keeps handling
widget messages — the Stop button works — and an interrupt (■) cancels the job the same way.
Called synchronously (``ip.run_cell_magic``, terminal IPython) the thread waits, and Ctrl-C
cancels. Either way the container is removed and the kernel stays usable.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import ArgDecorator, argument, magic_arguments

from .config import load_defaults
from .core.trace import own_work
from .core.options import OPTIONS, add_arguments, resolve_options
from .core.task import Task
from .errors import MlboxError, OptionError
from .kernel import cell as cells, commands, session as sessions
from .kernel.async_cells import install_async_transformer, run_mlbox_cell, run_mlbox_line
from .kernel.context import (KERNEL_NOTEBOOK_NAME, kernel_context, kernel_notebook,
                             kernel_traced_modules, with_live_trace)
from .kernel.defaults import described, set_defaults
from .kernel.display import LiveOutputs, display_outputs, short
from .kernel.job import ViewedTask
from .kernel.setup_cells import is_setup_cell
from .widgets import progress_view

__all__ = ["MlboxMagics", "KERNEL_NOTEBOOK_NAME", "display_outputs", "is_setup_cell",
           "run_mlbox_cell", "run_mlbox_line"]

_LINE_COMMANDS = ("status", "requirements", "dockerfile", "lock", "build", "run", "images",
                  "config", "session")
#: A cell takes every option but the notebook's parameters and --context (a cell's project is
#: its kernel's folder).
_CELL_OPTIONS = tuple(o.name for o in OPTIONS if o.name not in {"parameters", "context"})


class option_arguments(ArgDecorator):
    """The options ``names`` (default: all) of core/options.py as magic arguments."""

    def __init__(self, names=None) -> None:
        self.names = names

    def add_to_parser(self, parser, group):
        add_arguments(group if group is not None else parser, self.names)


def view_arguments(func):
    """-q/-v: how a call shows its progress (the magics' own flags)."""
    func = argument("-v", "--verbose", action="store_true",
                    help="also print build logs and container output (text progress)")(func)
    return argument("-q", "--quiet", action="store_true",
                    help="no progress view; only warnings, results and the cell's outputs")(func)


def own(function, *args):
    """``function(*args)`` as jupyter_mlbox's own work (core/trace.py: what it loads, e.g. the
    readers of --out values, and reads is not the notebook's)."""
    with own_work():
        return function(*args)


@magics_class
class MlboxMagics(Magics):
    """``%%mlbox`` runs a cell in a container; ``%mlbox`` manages images and runs notebooks."""

    def __init__(self, shell=None, **kwargs) -> None:
        super().__init__(shell, **kwargs)
        self.defaults = load_defaults()
        self._engine = None  # the daemon used last (what a failed cell's cleanup talks to)
        self._engines: dict[str, object] = {}
        self.last_view = None
        self._warned: set[str] = set()
        if shell is not None:
            install_async_transformer(shell)

    # --- shared helpers ------------------------------------------------------------------------

    def engine(self, host: str | None = None):
        """The daemon ``host`` names (``--host``: a docker context or a URL; default: the
        configured one, else the environment's), one connection per daemon per kernel."""
        from .core.engine import connect

        key = host or self.defaults.host or ""
        if key not in self._engines:
            self._engines[key] = connect(key or None)
        self._engine = self._engines[key]
        return self._engine

    def _parse(self, func, line: str) -> argparse.Namespace:
        try:
            # shell quoting, as in the CLI: --pip 'xgboost>=2' (IPython's own split keeps quotes)
            argv = shlex.split(line, posix=True)
        except ValueError as err:  # unbalanced quotes in the argument string
            raise UsageError(str(err)) from None
        try:
            return func.parser.parse_args(argv)
        except SystemExit:  # -h prints the help and "exits"
            raise UsageError(f"see %{'%' if func.__name__ == 'mlbox_cell' else ''}mlbox?") \
                from None

    def _options(self, args: argparse.Namespace):
        """The flags over the configured defaults, as (BuildOptions, RunOptions)."""
        try:
            build, run = resolve_options(vars(args), self.defaults)
        except OptionError as err:
            raise UsageError(str(err)) from None
        if build.requirements_file is not None and not build.requirements_file.is_file():
            raise UsageError(f"-r {build.requirements_file}: no such file")
        return build, run

    def _job(self, args, title: str, work, done, failed, intercept=None) -> ViewedTask:
        task = Task(work)
        view = progress_view(self.shell, task.cancel_token, title=title, quiet=args.quiet)
        if args.verbose and hasattr(view, "verbose"):
            view.verbose = True
        self.last_view = view
        view.show()
        return ViewedTask(task, view, done, failed, intercept)

    def _fresh(self, warnings) -> list[str]:
        """Each warning once per kernel: the same machine-wide warning on every cell is noise."""
        fresh = [w for w in warnings if w not in self._warned]
        self._warned.update(fresh)
        return fresh

    # --- %%mlbox ---------------------------------------------------------------------------------

    @cell_magic("mlbox")
    @magic_arguments(name="%mlbox")  # the usage line then reads "%%mlbox …"
    @argument("--in", dest="inputs", metavar="NAMES", action="append", default=[],
              help="variables to send into the container, comma-separated (cloudpickle: this "
                   "kernel trusts itself)")
    @argument("--out", dest="outputs", metavar="NAMES", action="append", default=[],
              help="variables to bring back from the container, comma-separated, in formats "
                   "that cannot run code here (JSON builtins, bytes, numpy .npy, pandas via "
                   "Arrow, scikit-learn via skops); anything else needs --out-pickle")
    @argument("--with-setup", action="store_true",
              help="first run this notebook's earlier cells that only import or define "
                   "(functions, classes, constants), so the cell sees them")
    @argument("--session", nargs="?", const="", default=None, metavar="NAME",
              help="run in a warm container kernel kept across cells (default name: the "
                   "notebook's): state survives, outputs stream live; %%mlbox session "
                   "list | stop | restart")
    @option_arguments(_CELL_OPTIONS)
    @view_arguments
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
        if request.args.session is not None:
            return sessions.session_cell(self, request)
        return self._cell_job(request).run()

    async def mlbox_cell_async(self, line: str, cell: str):
        """What a ``%%mlbox`` cell runs as in ipykernel (see the module docstring)."""
        request = self.prepare_cell(line, cell)
        if request.args.session is not None:
            return await sessions.session_cell_async(self, request)
        return await self._cell_job(request).run_async()

    def prepare_cell(self, line: str, cell: str) -> cells.CellRequest:
        args = self._parse(self.mlbox_cell, line)
        with own_work():  # reading the notebook file is ours, not the notebook's
            return cells.cell_request(self.shell, args, cell, *self._options(args))

    def _cell_job(self, request: cells.CellRequest) -> ViewedTask:
        live = LiveOutputs(request.cells()[1])  # the cell's outputs, shown as they come
        return self._job(
            request.args, "%%mlbox",
            cells.cell_work(request, lambda: self.engine(request.run_options.host), self._fresh),
            lambda view, result: own(cells.cell_done, request, view, result, self.shell.user_ns,
                                     live),
            lambda view, err: own(cells.cell_failed, request, view, err, self._engine, live),
            intercept=live.handle)

    # --- %mlbox ----------------------------------------------------------------------------------

    @line_magic("mlbox")
    @magic_arguments(name="mlbox")
    @argument("command", choices=_LINE_COMMANDS, metavar="COMMAND",
              help="status | requirements | dockerfile | lock [NOTEBOOK] | build | "
                   "run [NOTEBOOK] | images | config | session list|stop|restart [NAME]")
    @argument("notebook", nargs="?", default=None,
              help="for run and lock: the notebook (default: this kernel's notebook)")
    @argument("-o", "--output", default=None,
              help="for run: where to write the executed notebook (default <stem>.mlbox.ipynb)")
    @argument("--reset", action="store_true",
              help="for config: back to the defaults of the configuration files")
    @option_arguments()
    @view_arguments
    def mlbox_line(self, line: str):
        """Manage the container of this notebook.

        ``%mlbox status`` the daemon, GPU support, this notebook's image and whether it is up to
        date; ``%mlbox requirements`` / ``%mlbox dockerfile`` what would be built;
        ``%mlbox lock [NOTEBOOK]`` resolve its whole closure, pinned to this kernel's versions,
        into ``<stem>.mlbox.lock`` beside it (builds of it then install exactly that);
        ``%mlbox build`` build (or reuse) it; ``%mlbox run [NOTEBOOK]`` execute the whole
        notebook in a container and save the executed copy; ``%mlbox images`` the images
        jupyter_mlbox made; ``%mlbox config [OPTIONS]`` show or set the defaults every
        ``%%mlbox`` / ``%mlbox`` call of this kernel starts from (e.g. ``--gpus auto``; they
        start as ``c.MlboxDefaults`` in jupyter_mlbox_config.py says).
        """
        job = self._line_command(line)
        return job.run() if isinstance(job, ViewedTask) else job

    async def mlbox_line_async(self, line: str):
        """What ``%mlbox build`` / ``%mlbox run`` run as in ipykernel (see the module docstring)."""
        job = self._line_command(line)
        return await job.run_async() if isinstance(job, ViewedTask) else job

    def _line_command(self, line: str):
        with own_work():  # what %mlbox reads is ours, not the notebook's
            return self._line_command_unrecorded(line)

    def _line_command_unrecorded(self, line: str):
        command, _, rest = line.strip().partition(" ")
        if command == "session":
            return sessions.session_command(self, rest)
        if command == "config":  # the cell's flags, so that a per-cell one is named as such
            first = rest.split()[:1]
            reset = first in (["reset"], ["--reset"])
            rest = rest.strip()[len(first[0]):] if reset else rest
            return self._config(self._parse(self.mlbox_cell, rest), reset)
        args = self._parse(self.mlbox_line, line)
        try:
            if args.command == "config":
                return self._config(args, args.reset)
            return getattr(self, f"_line_{args.command}")(args)
        except MlboxError as err:
            raise short(err) from None

    def _config(self, args, reset: bool) -> None:
        if reset:
            try:
                self.defaults = load_defaults()
            except OptionError as err:
                raise short(err) from None
        set_defaults(self.defaults, args)
        print(f"%mlbox defaults: {described(self.defaults)}")

    def _plan(self, build_options, context=None):
        from .core.build import plan_image

        context = context or kernel_context(self.shell)
        return plan_image(context.sources, notebook_name=context.notebook_name,
                          search_dir=context.search_dir, options=build_options,
                          traced=kernel_traced_modules(build_options))

    @staticmethod
    def _warn(lines) -> None:
        for line in lines:
            print(f"warning: {line}", file=sys.stderr)

    def _line_requirements(self, args):
        plan = self._plan(self._options(args)[0])
        self._warn(plan.warnings)
        sys.stdout.write(plan.inference.requirements_txt())

    def _line_dockerfile(self, args):
        plan = self._plan(self._options(args)[0])
        self._warn(plan.warnings)
        sys.stdout.write(plan.context.dockerfile)

    def _line_status(self, args):
        from .core.doctor import diagnose

        build_options, run_options = self._options(args)
        context = kernel_context(self.shell)
        for check in diagnose(build_options.base_image, host=run_options.host):
            print(check.line())
        plan = self._plan(build_options, context)
        try:
            present = self.engine(run_options.host).image_exists(plan.tag)
        except MlboxError:
            present = False
        print(f"{'ok ' if present else 'NO '} image: {plan.tag} for {context.described} "
              + ("is up to date" if present else "is not built yet (%mlbox build)"))
        print(f"    defaults: {described(self.defaults)}")

    def _line_images(self, args):
        from .core.images import list_mlbox_images

        images = list_mlbox_images(self.engine(self._options(args)[1].host))
        if not images:
            print("no jupyter_mlbox images on this daemon")
        for image in images:
            print(f"{image.tag}\t{image.size / 1e6:.0f} MB\t{image.created[:19]}\t"
                  f"{image.notebook}")

    def _line_build(self, args) -> ViewedTask:
        build_options, run_options = self._options(args)
        plan = self._plan(build_options)
        work = commands.build_work(plan, build_options.rebuild,
                                   lambda: self.engine(run_options.host), self._fresh)
        return self._job(args, "%mlbox build", work, commands.build_done, commands.build_failed)

    def _line_lock(self, args):
        from dataclasses import replace

        from .core.build import plan_notebook
        from .core.lock import lock_path

        path = self._notebook_of(args, "lock")
        build_options = with_live_trace(self.shell, path, self._options(args)[0])
        plan_notebook(path, replace(build_options, relock=True))
        print(f"wrote {lock_path(path)}")

    def _notebook_of(self, args, command: str) -> Path:
        path = Path(args.notebook).expanduser() if args.notebook else kernel_notebook(self.shell)
        if path is None:
            raise UsageError(f"%mlbox {command}: which notebook? This kernel does not know its "
                             f"notebook; give a path: %mlbox {command} analysis.ipynb")
        return path

    def _line_run(self, args) -> ViewedTask:
        from .core.notebook import default_output_path

        path = self._notebook_of(args, "run")
        output = Path(args.output) if args.output else default_output_path(path)
        build_options, run_options = self._options(args)
        work = commands.run_work(path, output, with_live_trace(self.shell, path, build_options),
                                 run_options, lambda: self.engine(run_options.host))
        return self._job(args, f"%mlbox run {path.name}", work, commands.run_done,
                         commands.run_failed)

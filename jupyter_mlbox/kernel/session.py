"""``%%mlbox --session [NAME]`` and ``%mlbox session list|stop|restart``: the kernel's side of
core/session.py.

A kernel keeps its sessions by name (default: its notebook's); their containers carry this
process as owner, so two notebooks never share one, and they go when the kernel does (atexit;
a kernel that is killed leaves them to the runner, which stops when its stdin closes, and to
the orphan reaper). The first cell of a session builds and starts it under the usual progress
view; later cells skip inference and the view, so a trivial cell costs milliseconds. Outputs
are shown as they come; the executed cell then adds what the stream could not (the result).
"""
from __future__ import annotations

import asyncio
import atexit
import queue
import sys
import threading

from ..core.events import CancelToken
from ..errors import (CellExecutionError, KernelDiedError, MlboxError, RequirementError,
                      SerializationError)
from ..variables import INPUT_FILE, OUTPUT_FILE, TRUST_NOTICE, read_out_values
from .cell import CellRequest, planned_and_built
from .display import display_outputs, error_output, short, shown_as

PREFIX = "[%%mlbox --session]"


class KernelSessions:
    """This kernel's sessions by name; stopped when the kernel exits."""

    def __init__(self) -> None:
        self.sessions: dict = {}
        atexit.register(self.stop_all)

    def live(self, name: str):
        """The session ``name`` if it still runs; one that ended (stopped from the CLI, the
        panel or the REST API, idle, its container gone) is forgotten, saying so: the next
        cell starts a fresh one and the state of the earlier cells is gone."""
        session = self.sessions.get(name)
        if session is not None and not session.alive:
            self.sessions.pop(name, None)
            why = session.ended or "its container is gone"
            print(f"{PREFIX} session {name!r} had ended ({why}): starting a fresh one; the "
                  f"state of its earlier cells is lost", file=sys.stderr)
            return None
        return session

    def stop(self, name: str) -> bool:
        session = self.sessions.pop(name, None)
        if session is None:
            return False
        session.stop()
        return True

    def stop_all(self) -> None:
        for name in list(self.sessions):
            self.stop(name)


def kernel_sessions(magics) -> KernelSessions:
    sessions = getattr(magics, "_sessions", None)
    if sessions is None:
        sessions = magics._sessions = KernelSessions()
    return sessions


def session_name(request: CellRequest) -> str:
    return request.args.session or request.context.notebook_name.rsplit(".", 1)[0]


def start_work(request: CellRequest, name: str, engine, fresh):
    """The task's work for a session's first cell: infer, build (or reuse) and start it."""
    def work(emit, cancel):
        from ..core.session import Session

        # a session's later cells may --out a frame or a model: its writers go in from the start
        docker, build, files = planned_and_built(request, engine, fresh, emit, cancel,
                                                 writers=True)
        idle = request.run_options.session_idle
        return Session.start(docker, build.tag, name=name,
                             notebook=request.context.notebook_name,
                             files=files, options=request.run_options, on_event=emit,
                             cancel=cancel, idle=idle * 60 if idle else None)

    return work


def _runner(session, request: CellRequest, cancel: CancelToken):
    """Run the request's cells in a thread; outputs of the user's cell go to a queue that the
    kernel's thread shows (only it may write to the cell)."""
    cells, index = request.cells()
    files = {INPUT_FILE: request.inputs} if request.inputs is not None else None
    live: queue.Queue = queue.Queue()
    box: dict = {}

    def on_output(output: dict, cell: int) -> None:
        if cell == index:
            live.put(output)

    def run() -> None:
        try:
            box["result"] = session.run_cell(cells, files=files, on_output=on_output,
                                             cancel=cancel)
        except BaseException as err:  # noqa: BLE001 - handed to the kernel's thread
            box["error"] = err
        finally:
            live.put(None)

    threading.Thread(target=run, name="mlbox-session-cell", daemon=True).start()
    return live, box


def _show_live(live: queue.Queue, block: float) -> bool:
    """Show what arrived; True once the cell is done."""
    try:
        item = live.get(timeout=block) if block else live.get_nowait()
    except queue.Empty:
        return False
    while item is not None:
        if item.get("output_type") == "clear_output":
            from IPython.display import clear_output

            clear_output(wait=bool(item.get("wait")))
        else:
            display_outputs([item])
        try:
            item = live.get_nowait()
        except queue.Empty:
            return False
    return True


def check_imports(session, request: CellRequest) -> None:
    """Before a cell runs in a session started earlier: an import its image lacks is said
    here, naming the package and the way to rebuild (the first cell's plan included it)."""
    from ..core.image_modules import distributions_of, missing_imports

    if not session.modules:
        return  # the runner did not say (an older session): the cell says it itself
    missing = missing_imports([request.cell], session.modules, request.context.search_dir)
    if not missing:
        return
    named = distributions_of(missing)
    listed = ", ".join(f"{m} ({named[m]})" if named.get(m, m) != m else m for m in missing)
    raise short(RequirementError(
        f"this cell imports {listed}, which the session {session.name!r} image lacks: run "
        f"%mlbox session restart (the next --session cell rebuilds the image with it; the "
        f"session's state is lost), or run the cell without --session"))


def session_cell(magics, request: CellRequest):
    """A ``%%mlbox --session`` cell, blocking (plain IPython, ``ip.run_cell_magic``)."""
    session = kernel_sessions(magics).live(session_name(request))
    if session is None:
        session = _start_job(magics, request).run()
    else:
        check_imports(session, request)
    trust_notice(request)
    return run_cell(session, request, magics.shell.user_ns)


async def session_cell_async(magics, request: CellRequest):
    """A ``%%mlbox --session`` cell in ipykernel."""
    session = kernel_sessions(magics).live(session_name(request))
    if session is None:
        session = await _start_job(magics, request).run_async()
    else:
        check_imports(session, request)
    trust_notice(request)
    return await run_cell_async(session, request, magics.shell.user_ns)


def _start_job(magics, request: CellRequest):
    from .job import ended_badly

    name = session_name(request)

    def done(view, session):
        kernel_sessions(magics).sessions[name] = session
        view.finish(f"session {name!r} started in {session.image}")
        return session

    return magics._job(request.args, f"%%mlbox --session {name}",
                       start_work(request, name, lambda: magics.engine(request.run_options.host),
                                  magics._fresh),
                       done, lambda view, err: ended_badly(view, err, "the session was not "
                                                           "started; nothing is left"))


def run_cell(session, request: CellRequest, namespace: dict):
    """Blocking: Ctrl-C interrupts the container's kernel, and the cell's end is shown."""
    cancel = CancelToken()
    live, box = _runner(session, request, cancel)
    while True:
        try:
            if _show_live(live, 0.05):
                break
        except KeyboardInterrupt:
            cancel.cancel()
    return _finish(session, request, box, namespace)


async def run_cell_async(session, request: CellRequest, namespace: dict):
    """On ipykernel's loop: ■ (CancelledError) interrupts the container's kernel."""
    cancel = CancelToken()
    live, box = _runner(session, request, cancel)
    while True:
        try:
            if _show_live(live, 0):
                break
            await asyncio.sleep(0.002)
        except (asyncio.CancelledError, KeyboardInterrupt):
            cancel.cancel()
    return _finish(session, request, box, namespace)


def _finish(session, request: CellRequest, box: dict, namespace: dict):
    if "error" in box:
        err = box["error"]
        raise short(err) if isinstance(err, MlboxError) else err
    result = box["result"]
    if result.fresh_kernel:
        print(f"{PREFIX} the session's kernel had died: this cell ran on a fresh kernel; the "
              f"state of earlier cells is lost", file=sys.stderr)
    _, index = request.cells()
    outputs = result.notebook.cells[index].get("outputs", []) if index < len(
        result.notebook.cells) else []
    if result.received != result.streamed:  # a line was lost: show it all (some twice)
        shown = display_outputs([o for o in outputs if o.get("output_type") != "error"])
    else:
        shown = display_outputs([o for o in outputs if o.get("output_type") == "execute_result"])
    if result.status != "ok":
        raise _failure(session, request, result, index)
    if request.out_names:
        data = session.engine.get_file(session.container, f"{_workdir()}/{OUTPUT_FILE}")
        if data is None:
            raise short(SerializationError("--out: the session wrote no variables file"))
        try:
            from ..core.trace import own_work

            with own_work():
                namespace.update(read_out_values(
                    data, request.out_names, out_pickle=request.run_options.out_pickle))
        except SerializationError as err:
            raise short(err) from None
    return shown


def _workdir() -> str:
    from ..core.dockerfile import WORKDIR

    return WORKDIR


def _failure(session, request: CellRequest, result, index: int) -> BaseException:
    try:
        result.raise_for_status(session.image)
    except KernelDiedError as err:
        return short(err)
    except CellExecutionError as err:
        if err.failed_cell != index:
            what = ("--in: the inputs could not be loaded" if request.in_names
                    and err.failed_cell == len(request.setup) else
                    "--out: the variables could not be written" if err.failed_cell == index + 1
                    else "--with-setup: an earlier cell failed")
            return short(MlboxError(f"{what} in the session: {err.ename}: {err.evalue}"))
        lines = list((error_output(result.notebook.cells[index]) or {}).get("traceback")
                     or [err.traceback])
        note = ("interrupted; the session and its state are kept"
                if result.status == "interrupted" else f"raised inside session "
                f"{session.name!r}, image {session.image}")
        lines.append(f"\x1b[2m({note})\x1b[0m")
        return shown_as(err, lines)
    return MlboxError(f"the session cell ended as {result.status}")


def session_command(magics, rest: str) -> None:
    """``%mlbox session list | stop [NAME] | restart [NAME]``."""
    from IPython.core.error import UsageError

    words = rest.split()
    command, names = (words[0] if words else "list"), words[1:]
    sessions = kernel_sessions(magics)
    if command not in {"list", "stop", "restart"} or len(names) > 1:
        raise UsageError("usage: %mlbox session list | stop [NAME] | restart [NAME]")
    if command == "list":
        if not sessions.sessions:
            print("no sessions in this kernel (start one with %%mlbox --session)")
        for name, session in list(sessions.sessions.items()):
            info = session.describe()
            print(f"{name}\t{info['image']}\t{info['container']}\t"
                  f"{'GPU' if info['gpus'] else 'CPU'}\tage {info['age_s']} s\t"
                  f"idle {info['idle_s']} s\t{info['cells']} cells\t"
                  f"{'running' if info['alive'] else 'ended'}")
        return
    if names:
        targets = names
    else:
        targets = list(sessions.sessions)
    if not targets:
        print("no sessions in this kernel")
    for name in targets:
        if not sessions.stop(name):
            raise UsageError(f"no session {name!r} in this kernel (%mlbox session list)")
        if command == "stop":
            print(f"stopped session {name!r}; its container is removed")
        else:
            print(f"restarting session {name!r}: the next %%mlbox --session cell starts it "
                  f"fresh (rebuilding the image if the notebook's imports changed)")


def trust_notice(request: CellRequest) -> None:
    if request.out_names and request.run_options.out_pickle:
        print(f"{PREFIX} {TRUST_NOTICE}", file=sys.stderr)

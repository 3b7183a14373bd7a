"""Executes a notebook inside the container. Copied into every image as /opt/mlbox/runner.py.

It must run with only the standard library, nbformat and nbclient, since that is all an image
has. It is also imported on the host for ``inject_parameters``, so there is one implementation.

    python runner.py IN.ipynb OUT.ipynb [--cell-timeout S] [--run-timeout S] [--inactivity S]
                     [-p NAME VALUE]... [--params-json J]
                     [--allow-errors] [--stream-outputs] [--exit-when-stdin-closes]

Parameters can also come from environment variables ``MLBOX_PARAM_<NAME>``. The executed
notebook is always written to OUT (atomically), even when a cell fails, with the outcome in
``metadata.mlbox``; outputs stored in IN are cleared first, and cells after a failure are
marked ``metadata.mlbox.status = "not-run"``. Exit status: 0 every cell ran, 1 a cell raised
(with ``--allow-errors``: any cell raised, all listed), 2 the kernel died,
3 a cell timed out, 4 the input or output was unusable, 5 its owner went away.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import sys
import tempfile
import keyword
import threading
import time

EXIT_OK, EXIT_CELL_ERROR, EXIT_KERNEL_DIED, EXIT_TIMEOUT, EXIT_BAD_INPUT = 0, 1, 2, 3, 4
#: The owner of the run (the host process) went away: see exit_when_stdin_closes.
EXIT_OWNER_GONE = 5
PARAM_ENV_PREFIX = "MLBOX_PARAM_"
#: Starts every line the runner writes for the host on its stdout (the kernel's own output
#: does not come here), one JSON object after it; session_runner.py speaks the same lines.
MARK = "\x1emlbox "
#: Outputs sent to the host as they are made (an execute_result or an error comes with the
#: executed notebook, at the end).
STREAMED = frozenset({"stream", "display_data"})


def say(event: str, **fields) -> None:
    """One line for the host."""
    sys.stdout.write(MARK + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def parse_parameter_value(text: str):
    """``"3"`` → 3, ``"[1, 2]"`` → [1, 2], anything that is not a Python literal stays a str."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def inject_parameters(nb, parameters):
    """A copy of ``nb`` with a cell that sets ``parameters``, placed the way papermill does.

    The cell goes right after the cell tagged ``parameters`` (first when none is tagged) and is
    tagged ``injected-parameters``.
    """
    if not parameters:
        return nb
    import nbformat

    for name in parameters:  # a name is written into code: only a plain identifier may be one
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"parameter name {name!r} is not a Python identifier")

    nb = copy.deepcopy(nb)
    source = "# Parameters injected by jupyter_mlbox\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    position = 0
    for index, existing in enumerate(nb.cells):
        if "parameters" in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    nb.cells.insert(position, cell)
    return nb


def _write_atomic(nb, path):
    import nbformat

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mlbox-", suffix=".ipynb", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)
    os.replace(tmp, path)


def clear_outputs(nb):
    """Every code cell starts empty (as papermill does): an output in the executed notebook
    was made by this run, never left over from the input."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            cell.get("metadata", {}).pop("mlbox", None)
    return nb


def _error_of(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def _allows_error(cell):
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def _traceback_text(error):
    traceback = error.get("traceback") or []
    return traceback if isinstance(traceback, str) else "\n".join(traceback)


def _failure(err, nb, status, started):
    """What failed: the cell that was running when the run stopped (``started`` is the index of
    the last cell the client began), the exception and the traceback text. Cells after it are
    marked as not run."""
    failed = started[-1] if started else None
    for index, cell in enumerate(nb.cells):
        if failed is not None and index > failed and cell.get("cell_type") == "code":
            cell.setdefault("metadata", {})["mlbox"] = {"status": "not-run"}
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    traceback = getattr(err, "traceback", None) or str(err)
    return {"status": status, "failed_cell": failed, "ename": ename, "evalue": str(evalue),
            "traceback": traceback if isinstance(traceback, str) else "\n".join(traceback)}


def oom_kills(paths=("/sys/fs/cgroup/memory.events",
                     "/sys/fs/cgroup/memory/memory.oom_control")):
    """How many processes the OOM killer ended in this container's memory cgroup (v2
    memory.events, v1 memory.oom_control); None where neither is readable. dockerd reports a
    kernel killed for memory as the container's OOMKilled, Podman does not: the runner says it."""
    for path in paths:
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def _errors(nb):
    """With --allow-errors: every cell that raised (cells tagged raises-exception excepted)."""
    found = []
    for index, cell in enumerate(nb.cells):
        error = _error_of(cell) if cell.get("cell_type") == "code" else None
        if error is not None and not _allows_error(cell):
            found.append({"cell": index, "ename": error.get("ename", ""),
                          "evalue": error.get("evalue", ""),
                          "traceback": _traceback_text(error)})
    return found


def _stalled(nb, index, limit, output):
    """A cell busy without output for ``limit`` seconds: write what it made so far, marked,
    and end the runner (the container, its kernel with it). Called from the watchdog thread."""
    import nbformat

    for _ in range(3):  # the client's thread may be appending an output just now
        try:
            snapshot = nbformat.from_dict(copy.deepcopy(dict(nb)))
            break
        except RuntimeError:
            time.sleep(0.05)
    else:
        snapshot = nb
    err = RuntimeError(f"cell {index + 1} made no output and did not finish for {limit:g} s")
    err.ename, err.evalue = "Stalled", str(err)
    outcome = _failure(err, snapshot, "stalled", [index])
    snapshot.cells[index].setdefault("metadata", {})["mlbox"] = {"status": "stalled"}
    snapshot.metadata["mlbox"] = outcome
    try:
        _write_atomic(snapshot, output)
    finally:
        print(f"mlbox-runner: stalled: {err}", file=sys.stderr, flush=True)
        os._exit(EXIT_TIMEOUT)


def execute(nb, *, cell_timeout=None, cwd=None, allow_errors=False, run_timeout=None,
            inactivity=None, output=None, stream=False):
    """Run every cell; return (executed notebook, outcome dict, exit status).

    Cells tagged ``raises-exception`` may raise (nbclient's convention); ``allow_errors`` runs
    to the end whatever raises, and the outcome lists every error (exit status 1 if any).
    ``cell_timeout`` bounds each cell and ``run_timeout`` all of them together (seconds, floats
    welcome: nbclient's own ``timeout`` is an int, so they go through ``timeout_func``); a
    timed-out cell keeps what it printed and is marked ``timed-out``. ``inactivity``: a cell
    that makes no output and does not finish for that long is stalled (exit 3, the notebook
    written to ``output``). ``stream``: each stream or display output, and each clear, is
    also said to the host as it is made (``say``); the outcome counts them per cell
    (``streamed``), so the host knows whether it saw them all."""
    from nbclient import NotebookClient

    started = []
    streamed: dict = {}
    deadline = None if not run_timeout else time.monotonic() + run_timeout
    activity = {"last": time.monotonic(), "busy": None}

    def cell_limit(cell):
        limits = [cell_timeout] if cell_timeout else []
        if deadline is not None:
            limits.append(max(0.001, deadline - time.monotonic()))
        return min(limits) if limits else None

    class Client(NotebookClient):
        """Counts a cell busy from its start until the kernel is done with it (reply and
        outputs); any message of the cell is activity."""

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            activity.update(last=time.monotonic(), busy=cell_index)
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                activity.update(last=time.monotonic(), busy=None)

        def process_message(self, msg, cell, cell_index):
            activity["last"] = time.monotonic()
            return super().process_message(msg, cell, cell_index)

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if stream and out is not None and out.get("output_type") in STREAMED:
                streamed[str(cell_index)] = streamed.get(str(cell_index), 0) + 1
                say("output", cell=cell_index, output=out)
            return out

        def clear_output(self, outs, msg, cell_index):
            if stream:
                say("clear", cell=cell_index, wait=bool(msg["content"].get("wait")))
            return super().clear_output(outs, msg, cell_index)

    if inactivity and output:
        def watch():
            while True:
                time.sleep(min(1.0, inactivity / 4))
                busy = activity["busy"]
                if busy is not None and time.monotonic() - activity["last"] > inactivity:
                    _stalled(nb, busy, inactivity, output)

        threading.Thread(target=watch, name="mlbox-inactivity", daemon=True).start()

    clear_outputs(nb)
    client = Client(nb, timeout_func=cell_limit, kernel_name="python3",
                    allow_errors=allow_errors,
                    resources={"metadata": {"path": cwd or os.getcwd()}},
                    on_cell_execute=lambda cell, cell_index: started.append(cell_index))
    nb, outcome, status = _executed(client, nb, started, allow_errors)
    if stream:
        outcome["streamed"] = streamed
    return nb, outcome, status


def _executed(client, nb, started, allow_errors):
    """Run the client; (notebook, outcome, exit status) however it ends."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    try:
        client.execute()
    except CellTimeoutError as err:
        outcome = _failure(err, nb, "timeout", started)
        if outcome["failed_cell"] is not None:
            nb.cells[outcome["failed_cell"]].setdefault("metadata", {})["mlbox"] = {
                "status": "timed-out"}
        return nb, outcome, EXIT_TIMEOUT
    except DeadKernelError as err:
        outcome = _failure(err, nb, "kernel-died", started)
        if oom_kills():
            outcome["oom_killed"] = True
        return nb, outcome, EXIT_KERNEL_DIED
    except CellExecutionError as err:
        return nb, _failure(err, nb, "error", started), EXIT_CELL_ERROR
    errors = _errors(nb) if allow_errors else []
    if errors:
        first = errors[0]
        return nb, {"status": "errors", "errors": errors, "failed_cell": first["cell"],
                    "ename": first["ename"], "evalue": first["evalue"],
                    "traceback": first["traceback"]}, EXIT_CELL_ERROR
    return nb, {"status": "ok"}, EXIT_OK


def gpus_seen(run=None):
    """The GPUs this container sees, read where the driver is (``nvidia-smi``, which the
    NVIDIA runtime mounts into a container that asked for GPUs): a list of {name, driver,
    memory}; None when no GPU was asked for (NVIDIA_VISIBLE_DEVICES unset or void); a dict
    with ``error`` when one was and none could be read (the notebook says so, not the host)."""
    import subprocess

    visible = os.environ.get("NVIDIA_VISIBLE_DEVICES", "")
    if visible in {"", "void", "none"}:
        return None
    run = run or subprocess.run
    try:
        done = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                    "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": f"nvidia-smi could not run: {err}"}
    if done.returncode != 0:
        return {"error": f"nvidia-smi failed: {(done.stderr or done.stdout).strip()[:300]}"}
    gpus = []
    for line in done.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3 and fields[0]:
            gpus.append({"name": fields[0], "driver": fields[1], "memory": fields[2]})
    return gpus or {"error": "nvidia-smi listed no GPU"}


def exit_when_stdin_closes():
    """Watch stdin in a thread; when it ends, exit at once (as PID 1, which stops the container
    and every process in it). jupyter_mlbox attaches to the container's stdin and never
    writes: it closes only when the owner went away (SIGKILL, a crash, a lost daemon
    connection)."""
    import threading

    if not stdin_is_held():
        return

    def watch():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        owner_gone("mlbox-runner", "run")

    threading.Thread(target=watch, name="mlbox-owner", daemon=True).start()


def stdin_is_held() -> bool:
    """Whether stdin is a pipe or socket someone holds (the attached owner); not with
    ``docker run`` without ``-i`` (/dev/null): then there is nothing to watch."""
    import stat

    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def owner_gone(who: str, what: str) -> None:
    """Stdin from the owner closed: say so and end at once (as PID 1: the container ends)."""
    print(f"{who}: the process that started this {what} is gone; stopping", file=sys.stderr,
          flush=True)
    os._exit(EXIT_OWNER_GONE)


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(prog="mlbox-runner", description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--run-timeout", type=float, default=None,
                        help="seconds for all the cells together")
    parser.add_argument("--inactivity", type=float, default=None,
                        help="seconds a busy cell may go without output before it is stalled")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"))
    parser.add_argument("--params-json", default=None)
    parser.add_argument("--allow-errors", action="store_true",
                        help="run every cell even after one raises; exit 1 if any did")
    parser.add_argument("--stream-outputs", action="store_true",
                        help="also say each output to the host as it is made (stdout lines "
                             "that start with MARK)")
    parser.add_argument("--exit-when-stdin-closes", action="store_true",
                        help="stop (kernel and all) when stdin, held open by the process that "
                             "started the run, closes: that process is gone")
    args = parser.parse_args(argv)
    if args.exit_when_stdin_closes:
        exit_when_stdin_closes()

    parameters = {k[len(PARAM_ENV_PREFIX):]: parse_parameter_value(v)
                  for k, v in sorted(os.environ.items()) if k.startswith(PARAM_ENV_PREFIX)}
    if args.params_json:
        parameters.update(json.loads(args.params_json))
    parameters.update({name: parse_parameter_value(value) for name, value in args.parameter})

    try:
        with open(args.input, encoding="utf-8") as handle:
            nb = nbformat.read(handle, as_version=4)
    except Exception as err:  # noqa: BLE001 - any failure here is "bad input"
        print(f"mlbox-runner: cannot read {args.input}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        nb = inject_parameters(nb, parameters)
    except ValueError as err:
        print(f"mlbox-runner: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.access(out_dir if os.path.isdir(out_dir) else os.path.dirname(out_dir), os.W_OK):
        print(f"mlbox-runner: {out_dir} is not writable by uid {os.getuid()}; "
              f"make it writable or run with --user", file=sys.stderr)
        return EXIT_BAD_INPUT

    nb, outcome, status = execute(nb, cell_timeout=args.cell_timeout,
                                  cwd=os.path.dirname(os.path.abspath(args.input)),
                                  allow_errors=args.allow_errors, run_timeout=args.run_timeout,
                                  inactivity=args.inactivity, output=args.output,
                                  stream=args.stream_outputs)
    seen = gpus_seen()
    if seen is not None:
        outcome["gpus_seen"] = seen
    nb.metadata["mlbox"] = outcome  # a copy (NotebookNode): complete it before
    _write_atomic(nb, args.output)
    if status != EXIT_OK:
        print(f"mlbox-runner: {outcome['status']}: {outcome.get('ename')}: "
              f"{outcome.get('evalue')}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

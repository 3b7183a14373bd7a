"""Run a notebook in a container by round-tripping it: put it in, execute it there, read it back.

No bind mounts: files go in with ``put_archive`` and come out with ``get_archive``, so the same
code works against a remote ``DOCKER_HOST``. The container is removed in every case.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import nbformat
from nbformat import NotebookNode

from ..errors import (CellExecutionError, ContainerExitError, GPUUnavailableError,
                      KernelDiedError, OptionError, RunTimeoutError)
from .build import BuildResult, build_image, plan_notebook
from .container_runner import EXIT_CELL_ERROR, EXIT_KERNEL_DIED, EXIT_OK, EXIT_TIMEOUT, MARK
from .dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL, RUNNER, WORKDIR
from .engine import Engine
from .events import (CancelToken, ProgressCallback, ProgressEvent, ignore_progress, strip_ansi,
                     upload_progress)
from .notebook import check_output_path, default_output_path, write_notebook_or_beside
from .options import NO_GPUS, BuildOptions, RunOptions
from .orphans import owner_labels

OUTPUT_DIR = ".mlbox-out"
#: Seconds past --timeout before the host stops a container whose runner did not stop itself
#: (the runner ends the run at the timeout and writes what the cells made).
TIMEOUT_GRACE = 20


def _timeout_error(status: Mapping, executed, options: RunOptions) -> RunTimeoutError:
    """A timeout or a stall: which cell, which limit, and the notebook up to it (kept)."""
    failed = status.get("failed_cell") if isinstance(status.get("failed_cell"), int) else None
    cell = _failed_cell(status)
    if status.get("status") == "stalled":
        message = (f"{cell} stalled: no output and not finished for {options.inactivity:g} "
                   f"min; raise --inactivity MIN (0 turns the limit off)")
    elif options.timeout is not None:
        message = (f"{cell if failed is not None else 'the run'} exceeded the timeout of "
                   f"{options.timeout:g} s (per cell and for the whole run); raise --timeout")
    else:
        message = "the run timed out"
    return RunTimeoutError(message + "; the container was removed", notebook=executed,
                           failed_cell=failed)


@dataclass
class RunResult:
    notebook: NotebookNode
    gpu: bool
    seconds: float
    files: dict[str, bytes] = field(default_factory=dict)
    build: BuildResult | None = None
    output_path: Path | None = None
    #: The daemon it ran on when not a local one (without credentials), and the GPUs the
    #: container saw (container_runner.gpus_seen: a list, or {"error": …}; None when none was
    #: asked for).
    host: str = ""
    gpus_seen: list | dict | None = None

    def as_dict(self) -> dict:
        return {"output_path": str(self.output_path) if self.output_path else None,
                "seconds": round(self.seconds, 2), "gpu": self.gpu,
                "tag": self.build.tag if self.build else None,
                "built": bool(self.build and self.build.built),
                "host": self.host, "gpus_seen": self.gpus_seen}

    def summary(self) -> str:
        """``built mlbox/x:abc (504 MB, 16.0 s) · ran in 1.2 s on GPU (1× NVIDIA H100,
        driver 550.54) at ssh://gpu-box`` (a daemon that is not local is named)."""
        ran = f"ran in {self.seconds:.1f} s on {'GPU' if self.gpu else 'CPU'}"
        if isinstance(self.gpus_seen, list) and self.gpus_seen:
            first = self.gpus_seen[0]
            ran += f" ({len(self.gpus_seen)}× {first['name']}, driver {first['driver']})"
        elif isinstance(self.gpus_seen, dict):
            ran += f" (no GPU seen inside: {self.gpus_seen.get('error', '?')})"
        if self.host:
            ran += f" at {self.host}"
        return f"{self.build.summary()} · {ran}" if self.build else ran


def _failed_cell(outcome: Mapping) -> str:
    """``cell 3`` (1-based, as a user counts), or ``a cell`` when the runner could not tell."""
    cell = outcome.get("failed_cell")
    return f"cell {cell + 1}" if isinstance(cell, int) else "a cell"


def _failure_message(outcome: Mapping) -> str:
    errors = outcome.get("errors") or []
    if len(errors) > 1:  # --allow-errors: a summary of every cell that raised
        listed = "; ".join(f"cell {e['cell'] + 1} {e['ename']}: {strip_ansi(e['evalue'])[:120]}"
                           for e in errors)
        return f"{len(errors)} cells raised (the run went on to the end): {listed}"
    traceback = strip_ansi(outcome.get("traceback") or "").strip()
    head = (f"{_failed_cell(outcome)} raised {outcome.get('ename', 'an error')}: "
            f"{outcome.get('evalue', '')}")
    return f"{head}\n{traceback}" if traceback else head


def container_line(on_event: ProgressCallback):
    """``on_line`` for a running container: the runner's lines (MARK) become OUTPUT events,
    anything else is a log line."""
    def on_line(line: str) -> None:
        start = line.find(MARK)
        if start < 0:
            on_event(ProgressEvent("running", "log", line))
            return
        try:
            message = json.loads(line[start + len(MARK):])
        except ValueError:
            return
        if message.get("event") == "clear":
            output = {"output_type": "clear_output", "wait": bool(message.get("wait"))}
        elif message.get("event") == "output" and isinstance(message.get("output"), dict):
            output = message["output"]
        else:
            return
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        on_event(ProgressEvent("running", "output", text.rstrip("\n"),
                               step=message.get("cell"), output=output))
    return on_line


def started_or_cpu(engine: Engine, container, gpus, on_event: ProgressCallback) -> bool:
    """Start ``container``; False when its ``--gpus auto`` request met a daemon without GPU
    support (said), so the caller makes it again on the CPU. A required GPU raises."""
    try:
        engine.start(container)
        return True
    except GPUUnavailableError:
        if not gpus.optional:
            raise
        on_event(ProgressEvent("starting", "info",
                               "no GPU support on this Docker daemon: running on CPU"))
        return False


def where_it_ran(engine: Engine, image: str, result: RunResult) -> dict:
    """The daemon (never its credentials), the image by tag and content id, GPUs or CPU, and
    the run's duration: what the executed notebook says about its run."""
    try:
        image_id = engine.image_attrs(image).get("Id", "")
    except Exception:  # noqa: BLE001 - the run is done; its record must not fail it
        image_id = ""
    return {"host": engine.host, "image": image, "image_id": image_id,
            "gpu": bool(result.gpu), "seconds": round(result.seconds, 2)}


def run_notebook(engine: Engine, image: str, nb: NotebookNode, *,
                 name: str = "notebook.ipynb", files: Mapping[str, bytes] | None = None,
                 notebook_dir: str = "",
                 collect: Iterable[str] = (), options: RunOptions = RunOptions(),
                 on_event: ProgressCallback = ignore_progress,
                 cancel: CancelToken | None = None, stream_outputs: bool = True) -> RunResult:
    """Execute ``nb`` in a container of ``image`` and return the executed notebook.

    ``files`` go into the work directory (paths relative to it: the project's layout); the
    notebook goes to ``notebook_dir`` below it and runs from there; ``collect`` names files
    (relative to the work directory) to bring back. Raises CellExecutionError (with the executed notebook), KernelDiedError,
    RunTimeoutError, ContainerExitError, UserCancelledError or GPUUnavailableError; the
    container never outlives this. ``--gpus auto`` falls back to the CPU, and says so, when the
    daemon has no GPU support. ``stream_outputs``: each output is also an OUTPUT event as it
    is made (the magic shows it live; a job's log has the cells' prints).
    """
    started = time.monotonic()
    in_container = f"{notebook_dir}/{name}".lstrip("/")
    command = ["python", RUNNER, in_container, f"{OUTPUT_DIR}/{name}"]
    if options.timeout:  # per cell and for the whole run, both kept by the runner
        command += ["--cell-timeout", str(options.timeout), "--run-timeout", str(options.timeout)]
    if options.inactivity:
        command += ["--inactivity", str(options.inactivity * 60)]
    if options.parameters:
        command += ["--params-json", json.dumps(dict(options.parameters))]
    if options.allow_errors:
        command += ["--allow-errors"]
    if stream_outputs:
        command += ["--stream-outputs"]
    # The runner ends itself once this process is gone (its stdin from here closes), and the
    # owner labels let the next start reap what a SIGKILL or a daemon restart left.
    command += ["--exit-when-stdin-closes"]
    payload = {**dict(files or {}), in_container: nbformat.writes(nb).encode()}
    labels = {MANAGED_LABEL: "true", NOTEBOOK_LABEL: name, **owner_labels()}

    gpus = options.gpus
    while True:
        on_event(ProgressEvent("starting", "phase", f"starting a container of {image}"
                               + (f" with --gpus {gpus}" if gpus.requested else "")))
        container = engine.create_container(
            image, command, environment=options.env, labels=labels,
            gpus=gpus, memory=options.memory, cpus=options.cpus, shm_size=options.shm_size,
            network_mode=options.network_mode)
        try:
            engine.put_files(container, WORKDIR, payload, on_progress=upload_progress(
                on_event, "starting", f"{len(payload)} files", engine.host))
            if not started_or_cpu(engine, container, gpus, on_event):
                gpus = NO_GPUS
                continue
            if gpus.optional:
                on_event(ProgressEvent("starting", "info", "GPU support found: running with GPUs"))
            on_event(ProgressEvent("running", "phase", f"executing {name}"))
            outcome = engine.wait(  # the runner keeps the timeout; this only backs it up
                container, None if options.timeout is None else options.timeout + TIMEOUT_GRACE,
                cancel, on_line=container_line(on_event))
            on_event(ProgressEvent("collecting", "phase", "copying the executed notebook out"))
            data = engine.get_file(container, f"{WORKDIR}/{OUTPUT_DIR}/{name}")
            collected = {}
            for wanted in collect:
                content = engine.get_file(container, f"{WORKDIR}/{wanted}")
                if content is not None:
                    collected[wanted] = content
            logs = engine.logs(container)
        finally:
            engine.remove_container(container)
        break

    executed = nbformat.reads(data.decode(), as_version=4) if data else None
    result = RunResult(executed, gpus.requested, time.monotonic() - started, collected,
                       host="" if engine.is_local else engine.host)
    if executed is not None:  # where and how it ran, for whoever reads the notebook later
        record = executed.metadata.setdefault("mlbox", {})
        record.update(where_it_ran(engine, image, result))
        result.gpus_seen = record.get("gpus_seen")
    status = (executed.metadata.get("mlbox", {}) if executed is not None else {})
    if outcome.timed_out or outcome.exit_code == EXIT_TIMEOUT:
        raise _timeout_error(status, executed, options)
    failed_cell = status.get("failed_cell") if isinstance(status.get("failed_cell"), int) \
        else None
    # the runner's word counts too: Podman's inspect never says OOMKilled for a killed kernel
    if outcome.oom_killed or status.get("oom_killed"):
        raise KernelDiedError(f"the container ran out of memory (limit {options.memory}); "
                              f"raise --memory", notebook=executed, failed_cell=failed_cell,
                              image=image)
    if outcome.exit_code == EXIT_KERNEL_DIED:
        hint = " (out of memory?)" if options.memory else ""
        raise KernelDiedError(f"the kernel died while executing {_failed_cell(status)}{hint}: "
                              f"{strip_ansi(status.get('evalue', ''))[:300]}", notebook=executed,
                              failed_cell=failed_cell, image=image)
    if outcome.exit_code == EXIT_CELL_ERROR:
        raise CellExecutionError(_failure_message(status), notebook=executed,
                                 ename=status.get("ename", ""), evalue=status.get("evalue", ""),
                                 traceback=strip_ansi(status.get("traceback", "")),
                                 failed_cell=failed_cell, image=image)
    if outcome.exit_code != EXIT_OK or executed is None:
        raise ContainerExitError(f"the container exited with status {outcome.exit_code}"
                                 + (" (killed)" if outcome.exit_code == 137 else "")
                                 + f"; its last output:\n{logs.strip()[-2000:]}",
                                 exit_code=outcome.exit_code, logs=logs)
    on_event(ProgressEvent("done", "phase", result.summary()))
    return result


def run_notebook_file(engine: Engine, path: str | Path, *, output: str | Path | None = None,
                      build_options: BuildOptions = BuildOptions(),
                      options: RunOptions = RunOptions(),
                      on_event: ProgressCallback = ignore_progress,
                      cancel: CancelToken | None = None) -> RunResult:
    """The whole job for a notebook file: infer, build (or reuse), run, write the result.

    The executed notebook is written atomically to ``output`` (``<stem>.mlbox.ipynb`` by
    default) also when a cell fails, so the traceback can be read in context; the input is never
    touched.
    """
    path = Path(path)
    output = Path(output) if output else default_output_path(path)
    if output.resolve() == path.resolve():
        raise OptionError(f"-o {output}: would overwrite the input notebook; name another file")
    check_output_path(output)  # before the build: a run whose result cannot be written is lost

    def write(notebook) -> Path:
        written, moved = write_notebook_or_beside(notebook, output, path)
        if moved:
            on_event(ProgressEvent("collecting", "warning", moved))
        return written

    nb, plan = plan_notebook(path, build_options, on_event=on_event)
    build = build_image(engine, plan, rebuild=build_options.rebuild, on_event=on_event,
                        cancel=cancel)
    try:
        result = run_notebook(engine, build.tag, nb, name=path.name, files=plan.local_files,
                              notebook_dir=plan.notebook_dir,
                              options=options, on_event=on_event, cancel=cancel)
    except (CellExecutionError, RunTimeoutError) as err:
        if err.notebook is not None:  # what ran before the failure or the timeout is kept
            err.output_path = write(err.notebook)
        raise
    result.build = build
    result.output_path = write(result.notebook)
    return result

"""An engine without a daemon, for unit tests of what the core does around a container.

Images live in a dict of inspect JSON; containers are records. What a started container does
is scripted with :class:`Behaviour` (``engine.next_run = Behaviour.cell_error(1, ...)``): its
exit code, whether it was OOM-killed or hangs until its timeout, the files it writes and what
it prints. By default it behaves like the runner (jupyter_mlbox/core/container_runner.py): it
reads the notebook the command names and writes it to the output path the command names, with
``metadata.mlbox`` saying how the run went. Every create/start/remove is in ``engine.calls``;
``engine.containers`` holds the containers not removed yet (``[]`` means none was left behind).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import nbformat

from jupyter_mlbox.core.container_runner import (EXIT_CELL_ERROR, EXIT_KERNEL_DIED, EXIT_OK,
                                                 EXIT_TIMEOUT)
from jupyter_mlbox.core.engine import GPU_HELP, ContainerHandle, ContainerOutcome, Engine
from jupyter_mlbox.core.events import CancelToken
from jupyter_mlbox.core.options import NO_GPUS, GpuRequest
from jupyter_mlbox.errors import (BuildError, ConflictError, GPUUnavailableError,
                                  ImageNotFoundError, PushError, UserCancelledError)


@dataclass
class Behaviour:
    """What a started container does.

    ``outcome`` is the ``metadata.mlbox`` of the executed notebook it writes (None: it writes
    none, as when it is killed before the runner finishes); ``files`` are more files it writes
    (path relative to the work directory → bytes); ``hangs``: it never exits by itself, so
    ``wait`` ends by the timeout (``timed_out``) or by the cancel token.
    """

    exit_code: int = EXIT_OK
    outcome: dict | None = field(default_factory=lambda: {"status": "ok"})
    oom_killed: bool = False
    hangs: bool = False
    files: Mapping[str, bytes] = field(default_factory=dict)
    output: str = ""

    @classmethod
    def cell_error(cls, cell: int, ename: str = "ValueError", evalue: str = "boom",
                   traceback: str = "") -> "Behaviour":
        return cls(EXIT_CELL_ERROR, {"status": "error", "failed_cell": cell, "ename": ename,
                                     "evalue": evalue, "traceback": traceback or
                                     f"{ename}: {evalue}"},
                   output=f"mlbox-runner: error: {ename}: {evalue}\n")

    @classmethod
    def kernel_died(cls, cell: int | None, evalue: str = "Kernel died",
                    oom_killed: bool = False) -> "Behaviour":
        return cls(EXIT_KERNEL_DIED, {"status": "kernel-died", "failed_cell": cell,
                                      "ename": "DeadKernelError", "evalue": evalue,
                                      "traceback": ""}, oom_killed=oom_killed)

    @classmethod
    def cell_timeout(cls, cell: int) -> "Behaviour":
        return cls(EXIT_TIMEOUT, {"status": "timeout", "failed_cell": cell,
                                  "ename": "CellTimeoutError", "evalue": "cell timed out",
                                  "traceback": ""})

    @classmethod
    def killed(cls, output: str = "") -> "Behaviour":
        """SIGKILLed (exit 137) before the runner wrote anything."""
        return cls(137, None, output=output)


@dataclass
class Container:
    handle: ContainerHandle
    image: str
    command: list[str]
    environment: dict
    gpus: GpuRequest
    options: dict  # memory, cpus, shm_size, network_mode … as create_container got them
    behaviour: Behaviour
    files: dict[str, bytes] = field(default_factory=dict)  # absolute path → bytes
    state: str = "created"  # created | running | exited
    outcome: ContainerOutcome | None = None


def _instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = dockerfile.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


class MemoryEngine(Engine):
    """An Engine in memory. ``gpu``: whether the "daemon" has NVIDIA support."""

    def __init__(self, *, gpu: bool = False, images: tuple[str, ...] = ()) -> None:
        self.gpu = gpu
        self.images: dict[str, dict] = {}
        self.registry: dict[str, dict] = {}  # what pull/push reach: ref → inspect JSON
        self.builds: list[dict] = []  # {"tag", "context", "nocache"} for each build
        self.build_error: str | None = None  # set it to make the next builds fail
        self.next_run = Behaviour()  # what the next started container does
        self.containers: dict[str, Container] = {}  # created and not removed yet
        self.history: dict[str, Container] = {}  # every container ever created
        self.calls: list[tuple[str, str]] = []  # ("create"|"start"|"remove", container id)
        self._ids = itertools.count(1)
        for ref in images:
            self.add_image(ref)

    # --- helpers for tests -----------------------------------------------------------------------

    def add_image(self, ref: str, *, labels: Mapping[str, str] | None = None,
                  size: int = 50_000_000) -> dict:
        image_id = "sha256:" + hashlib.sha256(f"{ref}{next(self._ids)}".encode()).hexdigest()
        attrs = {"Id": image_id, "Size": size, "RepoTags": [ref],
                 "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "Config": {"Labels": dict(labels or {})}}
        self.images[ref] = attrs
        return attrs

    def removed(self) -> list[str]:
        return [cid for call, cid in self.calls if call == "remove"]

    def created(self) -> list[Container]:
        """Every container created so far, removed or not, in order."""
        return [self.history[cid] for call, cid in self.calls if call == "create"]

    # --- the daemon ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "memory://"

    @property
    def is_local(self) -> bool:
        return True

    def version(self) -> str:
        return "memory"

    def gpu_support(self, probe_image: str) -> bool:
        return self.gpu

    # --- images ----------------------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        return ref in self.images

    def image_attrs(self, ref: str) -> dict:
        if ref not in self.images:
            raise ImageNotFoundError(f"no image {ref} on this daemon")
        return self.images[ref]

    def list_images(self, label: str) -> list[dict]:
        key, _, value = label.partition("=")
        return [attrs for attrs in self.images.values()
                if key in attrs["Config"]["Labels"]
                and (not value or attrs["Config"]["Labels"][key] == value)]

    def remove_image(self, ref: str, force: bool = False) -> None:
        if ref not in self.images:
            raise ImageNotFoundError(f"no image {ref} on this daemon")
        if not force and any(c.image == ref for c in self.containers.values()):
            raise ConflictError(f"cannot remove {ref}: a container uses it")
        del self.images[ref]

    def pullable(self, ref: str) -> tuple[bool, str]:
        return (True, "") if ref in self.registry else (False, "manifest unknown")

    def pull(self, ref: str) -> None:
        if ref not in self.registry:
            raise ImageNotFoundError(f"base image {ref} is not on this daemon and cannot be "
                                     f"pulled")
        self.images[ref] = dict(self.registry[ref])

    def tag(self, source: str, target: str) -> None:
        attrs = dict(self.image_attrs(source))
        attrs["RepoTags"] = [*attrs["RepoTags"], target]
        self.images[target] = attrs

    def push(self, ref: str, on_line: Callable[[str], None]) -> None:
        if ref not in self.images:
            raise PushError(f"push of {ref} failed: no such image")
        self.registry[ref] = self.images[ref]
        on_line(f"{ref} pushed")

    def build(self, context_tar: bytes, tag: str, *, on_line: Callable[[str], None],
              on_step: Callable[[int, int, str], None], cancel: CancelToken | None = None,
              nocache: bool = False, step_label: tuple[str, str] | None = None,
              on_upload: Callable[[int, int], None] | None = None) -> str:
        with tarfile.open(fileobj=io.BytesIO(context_tar)) as tar:
            dockerfile = tar.extractfile("Dockerfile").read().decode()
        self.builds.append({"tag": tag, "context": context_tar, "nocache": nocache})
        steps = _instructions(dockerfile)
        labels: dict[str, str] = {}
        for index, step in enumerate(steps, 1):
            if cancel is not None and cancel.cancelled:
                raise UserCancelledError("build cancelled")
            on_step(index, len(steps), step)
            if self.build_error:
                raise BuildError(f"build of {tag} failed: {self.build_error}", step=step,
                                 log="\n".join(steps[:index]))
            keyword, _, rest = step.partition(" ")
            if keyword == "FROM":
                if rest.split()[0] not in self.images:
                    raise BuildError(f"build of {tag} failed: no image {rest.split()[0]}",
                                     step=step)
                labels = {}  # a new stage starts without the previous stage's labels
            elif keyword == "LABEL":
                labels.update(pair.split("=", 1) for pair in shlex.split(rest))
            on_line(f" ---> step {index} done")
        return self.add_image(tag, labels=labels)["Id"]

    # --- containers ------------------------------------------------------------------------------

    def create_container(self, image: str, command: list[str], *,
                         environment: Mapping[str, str], labels: Mapping[str, str],
                         gpus: GpuRequest = NO_GPUS, **options) -> ContainerHandle:
        if image not in self.images:
            raise ImageNotFoundError(f"no image {image} on this daemon")
        handle = ContainerHandle(f"{next(self._ids):064x}", dict(labels))
        container = Container(handle, image, list(command), dict(environment),
                              GpuRequest.parse(gpus), options, self.next_run)
        self.containers[handle.id] = self.history[handle.id] = container
        self.calls.append(("create", handle.id))
        return handle

    def _get(self, handle: ContainerHandle) -> Container:
        if handle.id not in self.containers:
            raise AssertionError(f"container {handle.short_id} was already removed")
        return self.containers[handle.id]

    def start(self, container: ContainerHandle) -> None:
        record = self._get(container)
        self.calls.append(("start", container.id))
        if record.gpus.requested and not self.gpu:
            raise GPUUnavailableError(GPU_HELP)
        record.state = "running"

    def put_files(self, container: ContainerHandle, directory: str,
                  files: Mapping[str, bytes], uid: int = 1000,
                  on_progress=None) -> None:
        record = self._get(container)
        for name, data in files.items():
            record.files[f"{directory.rstrip('/')}/{name}"] = bytes(data)

    def get_file(self, container: ContainerHandle, path: str) -> bytes | None:
        return self._get(container).files.get(path)

    def wait(self, container: ContainerHandle, timeout: float | None,
             cancel: CancelToken | None,
             on_line: Callable[[str], None] | None = None) -> ContainerOutcome:
        record = self._get(container)
        assert record.state == "running", f"wait() on a {record.state} container"
        behaviour = record.behaviour
        for line in behaviour.output.splitlines():
            if on_line is not None:
                on_line(line)
        if behaviour.hangs:
            # It never exits: the timeout (taken as elapsed at once) or a cancel ends it.
            deadline = time.monotonic() + 30
            while timeout is None:
                if cancel is not None and cancel.wait(0.02):
                    self.stop(container)
                    raise UserCancelledError("run cancelled; the container was removed")
                assert time.monotonic() < deadline, "a hanging container nobody stopped"
            self.stop(container)
            record.outcome = ContainerOutcome(137, False, True)
            return record.outcome
        if cancel is not None and cancel.cancelled:
            self.stop(container)
            raise UserCancelledError("run cancelled; the container was removed")
        self._run(record)
        record.state = "exited"
        record.outcome = ContainerOutcome(behaviour.exit_code, behaviour.oom_killed, False)
        return record.outcome

    def _run(self, record: Container) -> None:
        """Write what the runner writes: the executed notebook (``python RUNNER IN OUT``,
        paths relative to the work directory) with ``metadata.mlbox``, and the scripted files."""
        from jupyter_mlbox.core.dockerfile import WORKDIR

        behaviour = record.behaviour
        if behaviour.outcome is not None:
            source, target = record.command[2], record.command[3]
            nb = nbformat.reads(record.files[f"{WORKDIR}/{source}"].decode(), as_version=4)
            nb.metadata["mlbox"] = dict(behaviour.outcome)
            record.files[f"{WORKDIR}/{target}"] = nbformat.writes(nb).encode()
        for name, data in behaviour.files.items():
            record.files[f"{WORKDIR}/{name}"] = bytes(data)

    def logs(self, container: ContainerHandle, tail: int = 50) -> str:
        lines = self._get(container).behaviour.output.splitlines(keepends=True)
        return "".join(lines[-tail:])

    def stop(self, container: ContainerHandle) -> None:
        record = self.containers.get(container.id)
        if record is not None and record.state == "running":
            record.state = "exited"

    def remove_container(self, container: ContainerHandle) -> None:
        self.calls.append(("remove", container.id))
        self.containers.pop(container.id, None)

    def list_containers(self, label: str) -> list[ContainerHandle]:
        key, _, value = label.partition("=")
        return [c.handle for c in self.containers.values()
                if key in c.handle.labels and (not value or c.handle.labels[key] == value)]

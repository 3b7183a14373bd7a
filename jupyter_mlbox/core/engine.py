"""The container engine interface: what the core needs from a daemon, and nothing of docker-py.

repo2docker's ``ContainerEngine`` is the model. Docker (``docker_engine.DockerEngine``) is the
one implementation today; another engine (Podman, a remote host) implements the same methods.
Containers are opaque :class:`ContainerHandle` values; images are named by reference and
described by the daemon's inspect JSON. Every failure is an ``EngineError`` subclass with a
sentence a user can act on.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import EngineError
from .events import CancelToken
from .options import GpuRequest

GPU_HELP = ("GPUs were requested but this Docker daemon has no NVIDIA support: install the "
            "NVIDIA Container Toolkit on the Docker host and restart dockerd, or run with "
            "--gpus none (or --gpus auto to use a GPU only when there is one).")


@dataclass(frozen=True)
class ContainerHandle:
    """A container, as the engine that made it knows it."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ContainerOutcome:
    """How a container ended."""

    exit_code: int | None
    oom_killed: bool
    timed_out: bool


class Engine(abc.ABC):
    """A connection to one container daemon."""

    # --- the daemon ----------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def host(self) -> str:
        """Where the daemon is, as DOCKER_HOST would name it."""

    @property
    def is_local(self) -> bool:
        return self.host.startswith("unix://") or "localhost" in self.host \
            or "127.0.0.1" in self.host

    @abc.abstractmethod
    def version(self) -> str: ...

    @property
    def engine_name(self) -> str:
        """Which engine answers ("Docker", "Podman"): what doctor and status name."""
        return "Docker"

    @abc.abstractmethod
    def gpu_support(self, probe_image: str) -> bool:
        """Whether a container with a GPU request starts here."""

    # --- images --------------------------------------------------------------------------------

    @abc.abstractmethod
    def image_exists(self, ref: str) -> bool: ...

    @abc.abstractmethod
    def image_attrs(self, ref: str) -> dict:
        """The daemon's inspect JSON of ``ref`` (``Id``, ``Size``, ``Config.Labels`` …);
        ImageNotFoundError when there is none."""

    @abc.abstractmethod
    def list_images(self, label: str) -> list[dict]:
        """Inspect JSON of every image carrying ``label`` (``key=value``)."""

    @abc.abstractmethod
    def remove_image(self, ref: str, force: bool = False) -> None:
        """ImageNotFoundError, or ConflictError when a container still uses it."""

    @abc.abstractmethod
    def pullable(self, ref: str) -> tuple[bool, str]:
        """Whether the registry in ``ref`` serves it, asked without pulling; and why not."""

    @abc.abstractmethod
    def pull(self, ref: str) -> None: ...

    @abc.abstractmethod
    def tag(self, source: str, target: str) -> None: ...

    @abc.abstractmethod
    def push(self, ref: str, on_line: Callable[[str], None]) -> None: ...

    @abc.abstractmethod
    def build(self, context_tar: bytes, tag: str, *, on_line: Callable[[str], None],
              on_step: Callable[[int, int, str], None], cancel: CancelToken | None = None,
              nocache: bool = False, step_label: tuple[str, str] | None = None,
              on_upload: Callable[[int, int], None] | None = None) -> str:
        """Build the tar'd context as ``tag``; return the image id. Cancelling stops the build
        for real and removes what the aborted step left (``step_label`` marks its containers).
        BuildError carries the failing step and the log."""

    # --- containers ----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_container(self, image: str, command: list[str], *,
                         environment: Mapping[str, str], labels: Mapping[str, str],
                         gpus: GpuRequest = GpuRequest(), memory: str | None = None,
                         cpus: float | None = None, shm_size: str | None = None,
                         network_mode: str | None = None,
                         auto_remove: bool = False, volumes: Mapping[str, str] | None = None,
                         user: str | None = None) -> ContainerHandle:
        """``auto_remove``: the daemon removes it once it exits (a session that stops itself
        leaves nothing, even when the host is gone). ``volumes``: named volume → path inside
        (the package cache's builder only; never a host path); ``user``: the image's unless
        given."""

    @abc.abstractmethod
    def start(self, container: ContainerHandle) -> None:
        """GPUUnavailableError when GPUs were requested and the daemon has none."""

    @abc.abstractmethod
    def put_files(self, container: ContainerHandle, directory: str,
                  files: Mapping[str, bytes], uid: int = 1000,
                  on_progress: Callable[[int, int], None] | None = None) -> None:
        """Copy ``files`` (relative name → bytes) into ``directory`` of the container;
        ``on_progress(sent, total)`` follows a large upload (bytes on the wire)."""

    @abc.abstractmethod
    def get_file(self, container: ContainerHandle, path: str) -> bytes | None:
        """The bytes of one file in the container, or None when it does not exist."""

    @abc.abstractmethod
    def wait(self, container: ContainerHandle, timeout: float | None,
             cancel: CancelToken | None,
             on_line: Callable[[str], None] | None = None) -> ContainerOutcome:
        """Wait for the container to exit, following its output; kill it on timeout, and on
        cancel (then raise UserCancelledError)."""

    @abc.abstractmethod
    def logs(self, container: ContainerHandle, tail: int = 50) -> str: ...

    @abc.abstractmethod
    def stop(self, container: ContainerHandle) -> None: ...

    @abc.abstractmethod
    def remove_container(self, container: ContainerHandle) -> None:
        """Remove it, whatever its state; quiet when it is already gone."""

    @abc.abstractmethod
    def list_containers(self, label: str) -> list[ContainerHandle]: ...

    def memory_usage(self, container: ContainerHandle) -> int | None:
        """Bytes of memory the running container uses now, as ``docker stats`` counts them;
        None where the engine cannot tell (or it is not running)."""
        return None

    # --- the package cache (package_cache.py) ---------------------------------------------------

    #: Whether this engine has named volumes and commits, which the package cache needs;
    #: without them a build installs in a Dockerfile RUN, with no cache.
    supports_package_cache = False

    def commit(self, container: ContainerHandle, ref: str, labels: Mapping[str, str]) -> str:
        """Save the stopped container's file system as image ``ref``; return its id."""
        raise EngineError(f"{type(self).__name__} cannot commit containers")

    def volume_exists(self, name: str) -> bool:
        return False

    def volume_size(self, name: str) -> int | None:
        """Bytes the named volume holds (None: there is no such volume)."""
        return None

    def remove_volume(self, name: str) -> bool:
        """Remove the named volume; False when there was none; ConflictError when a container
        uses it."""
        return False

    # --- talking to a running container (sessions) ---------------------------------------------

    def follow(self, container: ContainerHandle,
               on_line: Callable[[str], None]) -> Callable[[], None]:
        """Call ``on_line`` with each line the container writes from now on (stdout and
        stderr), in a thread, and ``on_line(None)`` when its output ends; return what stops
        following. Called before ``start`` so that no line is missed."""
        raise EngineError(f"{type(self).__name__} cannot follow a container's output")

    def send_line(self, container: ContainerHandle, line: str) -> bool:
        """Write ``line`` to the container's stdin (held since ``start``); False when this
        engine holds no stdin for it (the caller then falls back to files)."""
        return False


def connect(base_url: str | None = None) -> Engine:
    """The engine for ``base_url`` (default: what ``DOCKER_HOST`` names, else the local
    socket); DaemonUnavailableError when nothing answers."""
    from .docker_engine import DockerEngine

    return DockerEngine.connect(base_url)

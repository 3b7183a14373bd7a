"""The Docker implementation of the engine interface: the only module that imports ``docker``.

Every docker-py error is translated here into an ``EngineError`` a user can act on, and no
docker-py object leaves this module (containers are ``ContainerHandle``s). The client is made
``from_env``, so ``DOCKER_HOST``, ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` work as they do
for the docker CLI.
"""
from __future__ import annotations

import io
import re
import socket
import tarfile
import threading
from typing import Callable, Mapping

import docker
import docker.errors
from docker.types import DeviceRequest

from ..errors import (BuildError, ConflictError, DaemonGoneError, DaemonUnavailableError,
                      EngineError,
                      FileTooLargeError, GPUUnavailableError, ImageNotFoundError, PushError,
                      UserCancelledError)
from .dockerfile import escape_label
from .engine import GPU_HELP, ContainerHandle, ContainerOutcome, Engine
from .events import CancelToken
from .options import GpuRequest
from .orphans import owner_labels
from .podman import (PODMAN_GPU_HELP, build_extra_hosts, cdi_refused, engine_name_of,
                     familiar_tag, gpu_cdi_devices, loopback_registry)

#: dockerd's classic builder says "Step 2/9 : RUN …", Podman's (buildah) "STEP 2/9: RUN …"
_STEP = re.compile(r"^Step (\d+)/(\d+) ?: (.*)", re.IGNORECASE)
#: Processes and threads a run's container may hold at once (Docker's default: unlimited, so a
#: fork bomb in a cell took the host). Threads count: 2048 leaves room for a DataLoader's
#: workers with their BLAS threads on a large machine. Raise it here if a notebook needs more.
PIDS_LIMIT = 2048


def build_marker(build_id: str) -> str:
    """The /etc/hosts name that marks every step container of one build (its own id)."""
    return f"mlbox-build-{build_id}"
_NO_GPU_DRIVER = "could not select device driver"
#: The most one file copied out of a container (the executed notebook, the --out variables)
#: may hold. It is read into memory and then decoded (notebook JSON, arrays), so the peak is a
#: few times this: 2 GiB lets a cell return real arrays and frames while a runaway output
#: (a 50 GB file) stops at a known point. Raise it here, or per engine (max_file_bytes).
MAX_FILE_BYTES = 2 << 30
#: What a tar stream adds around one file (headers, long-name records, padding).
_TAR_SLACK = 1 << 20


#: Uploads larger than this (a run's files, a build context) say how far they are.
UPLOAD_PROGRESS_BYTES = 4 << 20


class _ProgressBody(io.RawIOBase):
    """``data`` as a request body that tells ``report(sent, total)`` as requests reads it
    (http.client sends a file-like body block by block, so this measures the upload itself);
    ``len()`` gives requests its Content-Length."""

    def __init__(self, data: bytes, report: Callable[[int, int], None]) -> None:
        self._view = memoryview(data)
        self._sent = 0
        self._report = report

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._view[self._sent:self._sent + len(buffer)]
        buffer[:len(chunk)] = chunk
        self._sent += len(chunk)
        if len(chunk):
            self._report(self._sent, len(self._view))
        return len(chunk)


def upload_body(data: bytes, *, compress: bool,
                on_progress: Callable[[int, int], None] | None):
    """What to send for a tar archive: gzip'd for a daemon that is not local (dockerd reads
    compressed archives for copies and build contexts alike), and reporting its progress when
    it is large; plain bytes otherwise."""
    import gzip

    if compress:
        data = gzip.compress(data, compresslevel=3)
    if on_progress is None or len(data) < UPLOAD_PROGRESS_BYTES:
        return data
    return _ProgressBody(data, on_progress)


def _size(count: int) -> str:
    return f"{count / (1 << 30):g} GiB" if count >= 1 << 30 else f"{count / (1 << 20):,.1f} MiB"


def _too_large(path: str, size: int | None, limit: int) -> str:
    told = f" is {_size(size)}," if size is not None else " is"
    return (f"{path} in the container{told} over the {_size(limit)} cap on a file "
            f"copied back out of a container (jupyter_mlbox.core.docker_engine.MAX_FILE_BYTES); "
            f"bring back less (fewer or smaller --out values, fewer large outputs), or raise "
            f"the cap")


class _CappedStream(io.RawIOBase):
    """The chunks of a get_archive stream as a file that raises ``too_large()`` once more
    than ``cap`` bytes came through."""

    def __init__(self, chunks, cap: int, too_large: Callable[[], Exception]) -> None:
        self._chunks, self._cap, self._too_large = iter(chunks), cap, too_large
        self._pending, self._seen = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            self._seen += len(self._pending)
            if self._seen > self._cap:
                raise self._too_large()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count



def gpu_device_requests(gpus: GpuRequest) -> list[DeviceRequest]:
    """A GPU request as docker-py's device requests (``auto`` asks for all of them)."""
    gpus = GpuRequest.parse(gpus)
    if gpus.mode in {"all", "auto"}:
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.mode == "count":
        return [DeviceRequest(count=gpus.count, capabilities=[["gpu"]])]
    if gpus.mode == "devices":
        return [DeviceRequest(device_ids=list(gpus.devices), capabilities=[["gpu"]])]
    return []


def socket_of(response):
    """The socket a streaming requests response reads from (None when it has none).

    The one place that reaches below the public API of requests and urllib3: ``raw`` is the
    urllib3 response, ``connection`` its (public) connection property, ``sock`` the socket of
    an ``http.client`` connection. tests/unit/test_engine_stream.py fails when that changes.
    """
    connection = getattr(getattr(response, "raw", None), "connection", None)
    return getattr(connection, "sock", None)


def abort_stream(response) -> None:
    """Shut a streaming response's socket down (which wakes the thread reading it, and makes
    dockerd see its client go) and close it."""
    if response is None:
        return
    sock = socket_of(response)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:  # noqa: BLE001 - best effort on an already broken stream
        pass


#: What a broken daemon connection raises from below docker-py: requests' and urllib3's
#: connection errors, a chunked stream cut short, the socket's own errors.
def _connection_errors() -> tuple[type[BaseException], ...]:
    import http.client

    import requests.exceptions
    import urllib3.exceptions

    return (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError, http.client.IncompleteRead, ConnectionError)


def daemon_gone(host: str, err: BaseException) -> DaemonGoneError | None:
    """The sentence for ``err`` when it means the daemon's connection broke, else None."""
    if not isinstance(err, _connection_errors()):
        return None
    reason = _innermost_reason(err)
    return DaemonGoneError(
        f"the Docker daemon at {host} went away ({reason}); start it again (or check the "
        f"connection to it): the next jupyter mlbox command removes what this run left there")


def _innermost_reason(err: BaseException) -> str:
    """``connection reset by peer`` from requests' nest of wrapped errors (an OSError's own
    words, found in the arguments or the cause), else the outermost error's first line."""
    seen, pending = set(), [err]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    text = str(err).splitlines()[0][:160] if str(err) else ""
    return text or type(err).__name__


def _translating_daemon_errors(cls):
    """Every public method of ``cls`` raises DaemonGoneError, one sentence, where a broken
    connection would surface as a chain of requests/urllib3 tracebacks. One place, so no call
    site can forget it."""
    import functools

    def translated(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except _connection_errors() as err:
                raise daemon_gone(self.host, err) from err
        return call

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and callable(member) and not isinstance(
                member, (classmethod, staticmethod, property)):
            setattr(cls, name, translated(member))
    return cls


def _explain(err: Exception) -> str:
    text = getattr(err, "explanation", None) or str(err)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text)


@_translating_daemon_errors
class DockerEngine(Engine):
    """A connection to one Docker daemon (or a Docker-compatible API: Podman's)."""

    def __init__(self, client: docker.DockerClient, connect_kwargs: dict | None = None) -> None:
        self._client = client
        self._connect_kwargs = connect_kwargs or {}
        self._containers: dict[str, object] = {}  # handle id → docker-py Container
        self._stdin: dict[str, object] = {}  # handle id → the attached stdin socket we hold
        self._gpu_refused: dict[str, str] = {}  # handle id → why Podman refused its GPU

    @classmethod
    def connect(cls, base_url: str | None = None, timeout: int = 120) -> "DockerEngine":
        """Connect to ``base_url`` (``--host``: a URL or a docker context name), else to what
        the environment names (docker_endpoint.py); fail with a sentence that names the fix."""
        from .docker_endpoint import resolve_endpoint, ssh_diagnosis

        endpoint = resolve_endpoint(base_url)
        try:
            kwargs = endpoint.client_kwargs()
            client = docker.DockerClient(timeout=timeout, **kwargs)
            client.ping()
        except Exception as err:  # docker raises DockerException, requests errors, OSError …
            where = f"{endpoint.shown()} (chosen by {endpoint.chosen_by})"
            reason = ssh_diagnosis(endpoint.url) if endpoint.is_ssh else None
            if reason:
                raise DaemonUnavailableError(f"cannot reach the Docker daemon at {where}: "
                                             f"{reason}") from err
            raise DaemonUnavailableError(
                f"cannot reach a Docker daemon at {where}: is Docker running? "
                f"(start it, e.g. scripts/ensure-docker.sh, or set DOCKER_HOST) "
                f"[{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}]"
            ) from err
        engine = cls(client, kwargs)
        engine.endpoint = endpoint
        return engine

    # --- the daemon ----------------------------------------------------------------------------

    #: the endpoint connect() chose, and why (docker_endpoint.py)
    endpoint = None

    @property
    def host(self) -> str:
        """Where the daemon is, as DOCKER_HOST would name it (without credentials)."""
        if self.endpoint is not None:
            return self.endpoint.shown()
        return self._connect_kwargs.get("base_url") or "unix:///var/run/docker.sock"

    @property
    def chosen_by(self) -> str:
        """The setting that chose this daemon (``--host``, DOCKER_HOST, a context …)."""
        return self.endpoint.chosen_by if self.endpoint is not None else "the caller"

    def info(self) -> dict:
        return self._call(self._client.info)

    def _version_info(self) -> dict:
        """The daemon's /version answer, asked once per connection."""
        if self._version_cache is None:
            self._version_cache = self._call(self._client.version)
        return self._version_cache

    _version_cache: dict | None = None

    def version(self) -> str:
        return self._version_info().get("Version", "?")

    @property
    def engine_name(self) -> str:
        """"Podman" when Podman's Docker-compatible service answers (its /version lists a
        "Podman Engine" component), else "Docker": a few calls differ (see is_podman)."""
        return engine_name_of(self._version_info())

    @property
    def is_podman(self) -> bool:
        return self.engine_name == "Podman"

    def gpu_support(self, probe_image: str) -> bool:
        """Whether a container with a GPU request starts here (the NVIDIA driver is registered).

        dockerd does not advertise its device drivers, so this starts a ``true`` container of
        ``probe_image`` with a GPU request and removes it.
        """
        if self.is_podman:
            return self._podman_gpu_support(probe_image)
        if "nvidia" in (self.info().get("Runtimes") or {}):
            return True
        try:
            container = self._client.containers.create(
                probe_image, ["true"], device_requests=gpu_device_requests(GpuRequest("all")),
                labels={"io.jupyter-mlbox.managed": "true", **owner_labels()},
                network_disabled=True)
        except docker.errors.ImageNotFound:
            return False
        try:
            container.start()
            container.wait(timeout=60)
            return True
        except docker.errors.APIError as err:
            if _NO_GPU_DRIVER in _explain(err):
                return False
            raise EngineError(f"GPU probe failed: {_explain(err)}") from err
        finally:
            self._remove_quietly(container)

    def _podman_gpu_support(self, probe_image: str) -> bool:
        """Podman: whether a container with the CDI GPU device can be made (it is checked at
        create; never started, so no GPU is touched)."""
        try:
            container = self._client.containers.create(
                probe_image, ["true"], devices=gpu_cdi_devices(GpuRequest("all")),
                labels={"io.jupyter-mlbox.managed": "true", **owner_labels()},
                network_disabled=True)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as err:
            if cdi_refused(_explain(err)):
                return False
            raise EngineError(f"GPU probe failed: {_explain(err)}") from err
        self._remove_quietly(container)
        return True

    # --- images --------------------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        try:
            self._client.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as err:
            raise EngineError(f"cannot inspect image {ref}: {_explain(err)}") from err

    def image_attrs(self, ref: str) -> dict:
        try:
            return self._client.images.get(ref).attrs
        except docker.errors.ImageNotFound as err:
            raise ImageNotFoundError(f"no image {ref} on this daemon") from err

    def list_images(self, label: str) -> list[dict]:
        """Attributes of every image carrying ``label``; tags as dockerd shows them (Podman
        says ``docker.io/mlbox/x:tag`` and ``localhost/x:tag`` for ``mlbox/x:tag``)."""
        found = [image.attrs for image in self._call(self._client.images.list,
                                                     filters={"label": label})]
        if self.is_podman:
            for attrs in found:
                attrs["RepoTags"] = [familiar_tag(t) for t in attrs.get("RepoTags") or []]
        return found

    def remove_image(self, ref: str, force: bool = False) -> None:
        try:
            self._client.images.remove(ref, force=force)
        except docker.errors.ImageNotFound as err:
            raise ImageNotFoundError(f"no image {ref} on this daemon") from err
        except docker.errors.APIError as err:
            error = ConflictError if err.status_code == 409 else EngineError
            raise error(f"cannot remove {ref}: {_explain(err)}") from err

    def pullable(self, ref: str) -> tuple[bool, str]:
        """Whether the registry in ``ref`` serves it, asked without pulling; and why not."""
        try:
            self._client.images.get_registry_data(ref)
            return True, ""
        except docker.errors.APIError as err:
            return False, _explain(err).splitlines()[0][:200]

    def pull(self, ref: str) -> None:
        try:
            self._client.images.pull(ref)
        except docker.errors.APIError as err:
            raise ImageNotFoundError(
                f"base image {ref} is not on this daemon and cannot be pulled "
                f"({_explain(err).splitlines()[0]}); pull or load it first "
                f"(scripts/ensure-base-image.sh makes one offline)") from err

    def tag(self, source: str, target: str) -> None:
        repository, _, tag = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] \
            else (target, "", "latest")
        self._call(self._client.api.tag, source, repository, tag)

    def push(self, ref: str, on_line: Callable[[str], None]) -> None:
        try:
            for chunk in self._push_stream(ref):
                if "error" in chunk:
                    raise PushError(f"push of {ref} failed: {chunk['error']}")
                if chunk.get("status"):
                    on_line(f"{chunk.get('id', '')} {chunk['status']}".strip())
        except docker.errors.APIError as err:
            raise PushError(f"push of {ref} failed: {_explain(err)}") from err

    def _push_stream(self, ref: str):
        """docker-py's push, plus ``tlsVerify=false`` for a loopback registry on Podman:
        dockerd treats 127.0.0.0/8 as an insecure registry by itself, Podman asks for HTTPS
        ("server gave HTTP response to HTTPS client") unless told."""
        from docker.utils import parse_repository_tag

        api = self._client.api
        if not (self.is_podman and loopback_registry(ref)):
            return api.push(ref, stream=True, decode=True)
        repository, tag = parse_repository_tag(ref)
        response = api._post_json(api._url("/images/{0}/push", repository), None,  # noqa: SLF001
                                  params={"tag": tag or "latest", "tlsVerify": "false"},
                                  stream=True)
        api._raise_for_status(response)  # noqa: SLF001
        return api._stream_helper(response, decode=True)  # noqa: SLF001

    def build(self, context_tar: bytes, tag: str, *, on_line: Callable[[str], None],
              on_step: Callable[[int, int, str], None], cancel: CancelToken | None = None,
              nocache: bool = False, step_label: tuple[str, str] | None = None,
              on_upload: Callable[[int, int], None] | None = None) -> str:
        """Build with the classic builder; return the image id.

        The build runs in a worker thread on a client of its own, so that Stop/Ctrl-C can close
        that client's connection, which makes dockerd abort the build. dockerd then keeps the
        aborted step's container, which is found by this build's own marker and removed: an
        extra /etc/hosts entry (``build_marker``) every step container of this build carries in
        its HostConfig. Not a LABEL: that would change the layers (no cache shared between
        notebooks), and a label shared by concurrent builds would remove their containers too.
        ``step_label`` is not used here.
        """
        import time
        import uuid

        marker = build_marker(uuid.uuid4().hex[:16])
        podman = self.is_podman
        started = time.time()
        api = docker.APIClient(version=self._client.api.api_version, timeout=None,
                               **self._connect_kwargs)
        streams: list = []  # the build's streaming response, caught by a requests hook
        api.hooks["response"].append(lambda response, **_: streams.append(response))
        log: list[str] = []
        state: dict = {"step": None, "error": None, "image": None}
        done = threading.Event()

        def stream() -> None:
            try:
                remote = not self.is_local
                body = upload_body(context_tar, compress=remote, on_progress=on_upload)
                for chunk in api.build(fileobj=body, custom_context=True,
                                       encoding="gzip" if remote else None, tag=tag, rm=True, forcerm=True, pull=False,
                                       nocache=nocache, decode=True,
                                       extra_hosts=build_extra_hosts(
                                           {marker: "127.0.0.1"}, podman)):
                    if "error" in chunk:
                        state["error"] = chunk["error"].strip()
                        continue
                    if "aux" in chunk and "ID" in chunk["aux"]:
                        state["image"] = chunk["aux"]["ID"]
                    text = chunk.get("stream", "")
                    for line in text.splitlines():
                        if not line.strip():
                            continue
                        log.append(line)
                        match = _STEP.match(line)
                        if match:
                            state["step"] = line
                            on_step(int(match.group(1)), int(match.group(2)), match.group(3))
                        else:
                            on_line(line)
            except Exception as err:  # noqa: BLE001 - reported on the calling thread
                state["exception"] = err
            finally:
                done.set()

        worker = threading.Thread(target=stream, name="mlbox-build", daemon=True)
        worker.start()
        try:
            while not done.wait(0.2):
                if cancel is not None and cancel.cancelled:
                    raise UserCancelledError("build cancelled")
        except BaseException:
            abort_stream(streams[-1] if streams else None)  # dockerd aborts a classic build whose client went away …
            worker.join(timeout=10)
            # … but keeps the step's container: ours only, never a concurrent build's
            self._remove_step_containers(marker, started)
            raise
        finally:
            api.close()
        if state.get("exception") is not None:
            err = state["exception"]
            gone = daemon_gone(self.host, err)
            if gone is not None:  # nothing can be removed through a connection that is gone
                raise gone from err
            raise BuildError(f"build of {tag} failed: {_explain(err)}", step=state["step"],
                             log="\n".join(log)) from err
        if state["error"]:
            raise BuildError(f"build of {tag} failed: {state['error']}", step=state["step"],
                             log="\n".join(log))
        return state["image"] or self.image_attrs(tag)["Id"]

    def build_containers(self, marker: str, since: float) -> list[str]:
        """Ids of the step containers of the build marked ``marker`` (created after ``since``):
        those whose HostConfig carries the marker host."""
        api = self._client.api
        found = []
        try:
            summaries = api.containers(all=True)
        except docker.errors.APIError:
            return []
        for summary in summaries:
            if summary.get("Created", 0) < since - 60:  # clock skew with a remote daemon
                continue
            try:
                hosts = (api.inspect_container(summary["Id"]).get("HostConfig") or {}) \
                    .get("ExtraHosts") or []
            except docker.errors.APIError:
                continue  # gone meanwhile
            if any(entry.split(":", 1)[0] == marker for entry in hosts):
                found.append(summary["Id"])
        return found

    def _remove_step_containers(self, marker: str, since: float) -> None:
        """Remove the containers of this aborted classic build's steps (dockerd leaves them)."""
        import time

        quiet_checks = 0
        for _ in range(30):  # dockerd may still be tearing the step down
            found = self.build_containers(marker, since)
            for container_id in found:
                try:
                    self._client.api.remove_container(container_id, force=True)
                except docker.errors.APIError:
                    pass  # already going; the next round sees
            quiet_checks = quiet_checks + 1 if not found else 0
            if quiet_checks >= 3:
                return
            time.sleep(0.3)

    # --- containers ----------------------------------------------------------------------------

    def create_container(self, image: str, command: list[str], *,
                         environment: Mapping[str, str], labels: Mapping[str, str],
                         gpus: GpuRequest = GpuRequest(), memory: str | None = None,
                         cpus: float | None = None, shm_size: str | None = None,
                         network_mode: str | None = None,
                         auto_remove: bool = False, volumes: Mapping[str, str] | None = None,
                         user: str | None = None) -> ContainerHandle:
        kwargs = {"pids_limit": PIDS_LIMIT}
        if volumes:  # as mounts, not binds: a commit would keep binds as VOLUMEs
            from docker.types import Mount

            kwargs["mounts"] = [Mount(path, name, type="volume")
                                for name, path in volumes.items()]
        if user:
            kwargs["user"] = user
        if auto_remove:
            kwargs["auto_remove"] = True
        if shm_size:
            kwargs["shm_size"] = shm_size
        if memory:
            kwargs["mem_limit"] = memory
            kwargs["memswap_limit"] = memory  # no swap: an OOM is an OOM, not a slow crawl
        if cpus:
            kwargs["nano_cpus"] = int(float(cpus) * 1e9)
        if network_mode:
            kwargs["network_mode"] = network_mode
        try:
            # stdin open, closed once its one attached client goes (StdinOnce, which docker-py
            # sets when not detached): start() attaches and never writes, so the runner inside
            # sees EOF exactly when this process is gone (SIGKILL, crash) and stops itself.
            if GpuRequest.parse(gpus).requested and self.is_podman:
                kwargs["devices"] = gpu_cdi_devices(gpus)
            else:
                kwargs["device_requests"] = gpu_device_requests(gpus)
            container = self._client.containers.create(
                image, command, environment=dict(environment), labels=dict(labels),
                detach=False, stdin_open=True, **kwargs)
        except docker.errors.ImageNotFound as err:
            raise ImageNotFoundError(f"no image {image} on this daemon") from err
        except docker.errors.APIError as err:
            if "devices" in kwargs and cdi_refused(_explain(err)):
                # Podman refuses a GPU at create, dockerd at start: the contract is start's
                # (a --gpus auto caller falls back to the CPU there), so make it without the
                # GPU and let start() say why
                return self._gpu_refused_container(image, command, environment, labels,
                                                   kwargs, _explain(err))
            raise EngineError(f"cannot create a container of {image}: {_explain(err)}") from err
        self._containers[container.id] = container
        return ContainerHandle(container.id, dict(labels))

    def _gpu_refused_container(self, image, command, environment, labels, kwargs,
                               reason: str) -> ContainerHandle:
        """A container without the refused CDI device, which start() refuses in turn."""
        devices = kwargs.pop("devices")
        try:
            container = self._client.containers.create(
                image, command, environment=dict(environment), labels=dict(labels),
                detach=False, stdin_open=True, **kwargs)
        except docker.errors.APIError as err:
            raise EngineError(f"cannot create a container of {image}: {_explain(err)}") from err
        self._containers[container.id] = container
        self._gpu_refused[container.id] = PODMAN_GPU_HELP.format(
            device=", ".join(devices), reason=reason.splitlines()[0][:200])
        return ContainerHandle(container.id, dict(labels))

    def _container(self, handle: ContainerHandle):
        container = self._containers.get(handle.id)
        if container is None:
            container = self._client.containers.get(handle.id)
            self._containers[handle.id] = container
        return container

    def _hold_stdin(self, container: ContainerHandle) -> None:
        """Attach to the container's stdin and keep the socket for its lifetime (see
        create_container). Best effort: without it, the orphan reaper still cleans up."""
        try:
            sock = self._client.api.attach_socket(container.id,
                                                  params={"stdin": 1, "stream": 1})
        except Exception:  # noqa: BLE001 - an API or transport that cannot attach
            return
        self._stdin[container.id] = sock

    def _release_stdin(self, container: ContainerHandle) -> None:
        sock = self._stdin.pop(container.id, None)
        if sock is not None:
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - already closed
                pass

    def start(self, container: ContainerHandle) -> None:
        refused = self._gpu_refused.pop(container.id, None)
        if refused is not None:
            raise GPUUnavailableError(refused)
        self._hold_stdin(container)
        try:
            self._container(container).start()
        except docker.errors.APIError as err:
            if _NO_GPU_DRIVER in _explain(err):
                raise GPUUnavailableError(GPU_HELP) from err
            raise EngineError(f"cannot start the container: {_explain(err)}") from err

    def put_files(self, container: ContainerHandle, directory: str,
                  files: Mapping[str, bytes], uid: int = 1000,
                  on_progress: Callable[[int, int], None] | None = None) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            made: set[str] = set()
            for name, data in sorted(files.items()):
                parts = name.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folder = "/".join(parts[:depth])
                    if folder not in made:
                        made.add(folder)
                        info = tarfile.TarInfo(folder)
                        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
                        tar.addfile(info)
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.uid, info.gid = len(data), 0o644, uid, uid
                tar.addfile(info, io.BytesIO(data))
        body = upload_body(buffer.getvalue(), compress=not self.is_local,
                           on_progress=on_progress)
        try:
            self._container(container).put_archive(directory, body)
        except docker.errors.APIError as err:
            raise EngineError(f"cannot copy files into the container: {_explain(err)}") from err

    #: Per engine override of MAX_FILE_BYTES (None: the module's value at the time of the call).
    max_file_bytes: int | None = None

    def get_file(self, container: ContainerHandle, path: str) -> bytes | None:
        """Streamed, and stopped at the cap: the container decides how big the file is, and a
        cell that writes 50 GB must not fill this machine's memory. None for a missing path or
        one that is not a regular file (a directory, a link)."""
        limit = self.max_file_bytes if self.max_file_bytes is not None else MAX_FILE_BYTES
        try:
            chunks, stat = self._container(container).get_archive(path, chunk_size=1 << 20)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as err:
            raise EngineError(f"cannot copy {path} out of the container: {_explain(err)}") \
                from err
        try:
            size = (stat or {}).get("size")
            if isinstance(size, int) and size > limit:
                raise FileTooLargeError(_too_large(path, size, limit), limit=limit)
            stream = _CappedStream(chunks, limit + _TAR_SLACK,
                                   lambda: FileTooLargeError(_too_large(path, None, limit),
                                                             limit=limit))
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                member = tar.next()
                if member is None or not member.isfile():
                    return None
                if member.size > limit:
                    raise FileTooLargeError(_too_large(path, member.size, limit), limit=limit)
                handle = tar.extractfile(member)
                return handle.read() if handle is not None else None
        except tarfile.TarError as err:
            raise EngineError(f"cannot copy {path} out of the container: {err}") from err
        finally:
            chunks.close()  # stops the transfer when we stopped reading early

    def wait(self, container: ContainerHandle, timeout: float | None,
             cancel: CancelToken | None,
             on_line: Callable[[str], None] | None = None) -> ContainerOutcome:
        import time

        handle, container = container, self._container(container)
        deadline = None if timeout is None else time.monotonic() + timeout
        follower = None
        if on_line is not None:
            def follow() -> None:
                try:
                    buffer = b""
                    for chunk in container.logs(stream=True, follow=True):
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for line in lines:
                            on_line(line.decode(errors="replace"))
                except Exception:  # noqa: BLE001 - the container went away: nothing to follow
                    pass
            follower = threading.Thread(target=follow, name="mlbox-logs", daemon=True)
            follower.start()
        timed_out = False
        while True:
            container.reload()
            # Podman says "stopped" for one that exited and is not cleaned up yet
            if container.status in {"exited", "dead", "stopped"}:
                break
            if cancel is not None and cancel.cancelled:
                self.stop(handle)
                raise UserCancelledError("run cancelled; the container was removed")
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                self.stop(handle)
                break
            if cancel is not None:
                cancel.wait(0.2)
            else:
                time.sleep(0.2)
        if follower is not None:
            follower.join(timeout=2)
        state = container.attrs.get("State", {})
        return ContainerOutcome(state.get("ExitCode"), bool(state.get("OOMKilled")), timed_out)

    def logs(self, container: ContainerHandle, tail: int = 50) -> str:
        try:
            return self._container(container).logs(tail=tail).decode(errors="replace")
        except docker.errors.APIError:
            return ""

    def stop(self, container: ContainerHandle) -> None:
        try:
            self._container(container).kill()
        except docker.errors.APIError:
            pass

    def remove_container(self, container: ContainerHandle) -> None:
        """Remove it; when the daemon is gone, leave it to the reaper (core/orphans.py) of the
        next start rather than hide why the run ended under a second error."""
        try:
            self._remove_quietly(self._container(container))
        except docker.errors.NotFound:
            pass
        except _connection_errors():
            pass
        finally:
            self._containers.pop(container.id, None)
            self._gpu_refused.pop(container.id, None)
            self._release_stdin(container)

    supports_package_cache = True

    def commit(self, container: ContainerHandle, ref: str, labels: Mapping[str, str]) -> str:
        repository, _, tag = ref.rpartition(":")
        changes = ["LABEL " + " ".join(f'{key}="{escape_label(value)}"'
                                       for key, value in labels.items())]
        image = self._call(self._container(container).commit, repository=repository, tag=tag,
                           changes=changes)
        return image.id

    def volume_exists(self, name: str) -> bool:
        try:
            self._client.volumes.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def volume_size(self, name: str) -> int | None:
        """From the daemon's disk usage report (it walks every volume: a second or so)."""
        for volume in self._call(self._client.api.df).get("Volumes") or []:
            if volume.get("Name") == name:
                return int((volume.get("UsageData") or {}).get("Size") or 0)
        return None

    def remove_volume(self, name: str) -> bool:
        try:
            volume = self._client.volumes.get(name)
        except docker.errors.NotFound:
            return False
        self._call(volume.remove)
        return True

    def follow(self, container: ContainerHandle,
               on_line: Callable[[str], None]) -> Callable[[], None]:
        """Through an attach of stdout/stderr (not the log file: no log driver in between,
        and it works with any log driver)."""
        from docker.utils.socket import frames_iter

        try:
            sock = self._client.api.attach_socket(container.id,
                                                  params={"stdout": 1, "stderr": 1, "stream": 1})
        except docker.errors.APIError as err:
            raise EngineError(f"cannot follow the container's output: {_explain(err)}") from err

        def read() -> None:
            buffer = b""
            try:
                for _, data in frames_iter(sock, tty=False):
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        on_line(line.decode(errors="replace"))
            except Exception:  # noqa: BLE001 - stopped, or the container went away
                pass
            finally:
                on_line(None)

        threading.Thread(target=read, name="mlbox-follow", daemon=True).start()

        def stop() -> None:
            raw = getattr(sock, "_sock", sock)
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
        return stop

    def send_line(self, container: ContainerHandle, line: str) -> bool:
        sock = self._stdin.get(container.id)
        if sock is None:
            return False
        data = (line.rstrip("\n") + "\n").encode()
        raw = getattr(sock, "_sock", sock)
        try:
            if hasattr(raw, "sendall"):
                raw.sendall(data)
            else:
                raw.write(data)
                getattr(raw, "flush", lambda: None)()
        except OSError:
            return False
        return True

    def list_containers(self, label: str) -> list[ContainerHandle]:
        # ignore_removed: one removed between the listing and its inspection (auto-remove, a
        # concurrent stop) is simply not there, not a "No such container" error
        found = self._call(self._client.containers.list, all=True, filters={"label": label},
                           ignore_removed=True)
        return [ContainerHandle(c.id, dict(c.labels or {})) for c in found]

    def memory_usage(self, container: ContainerHandle) -> int | None:
        # one sample (one-shot: no waiting for a second); what `docker stats` shows is the
        # usage less the page cache the kernel may drop (inactive_file, cgroup v1 or v2)
        api = self._client.api
        one_shot = True if not docker.utils.version_lt(api.api_version, "1.41") else None
        try:
            stats = api.stats(container.id, stream=False, one_shot=one_shot)
        except (docker.errors.DockerException, ValueError):
            return None
        memory = stats.get("memory_stats") or {}
        if "usage" not in memory:
            return None
        detail = memory.get("stats") or {}
        cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
        return max(0, int(memory["usage"]) - int(cache))

    def _remove_quietly(self, container) -> None:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            if "already in progress" not in _explain(err):
                raise EngineError(f"cannot remove container {container.short_id}: "
                                  f"{_explain(err)}") from err

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except docker.errors.APIError as err:
            error = ConflictError if err.status_code == 409 else EngineError
            raise error(_explain(err)) from err
        except docker.errors.DockerException as err:
            raise DaemonUnavailableError(f"the Docker daemon stopped answering: {err}") from err

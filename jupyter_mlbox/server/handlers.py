"""REST handlers under ``/mlbox/api/``: validate the request, call the core, answer JSON.

Docker calls never run on the event loop: quick ones go to a worker thread, long ones become
jobs (:class:`JobSubmitHandler`). An ``MlboxError`` a handler raises becomes a JSON error in
``write_error``, its HTTP code from one place, :func:`http_status_for`. Request ``options`` are
read by the same options model as the CLI's flags, over the same configured defaults.
"""
from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..core.options import BUILD_OPTIONS, RUN_OPTIONS, BuildOptions, RunOptions, check_keys
from ..core.options import LOCAL_PATH_OPTIONS
from .jobs import QueueFullError
from ..errors import (ConflictError, DaemonUnavailableError, GPUUnavailableError,
                      ImageNotFoundError, MlboxError, NotebookError, OptionError,
                      RequirementError, UserCancelledError)

API = "/mlbox/api"

#: A job's work, given the build options once the notebook's kernel was asked:
#: ``work(build, emit, cancel) -> result``.
TracedWork = Callable[[BuildOptions, Callable, Any], Any]

#: A request holds a path and options: a megabyte is far more than any real one.
MAX_BODY_BYTES = 1 << 20
#: How deep the JSON of a request may nest (options are two levels; lists of lists a few more).
MAX_JSON_DEPTH = 16


def _depth(value: Any, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep ``value`` nests, counted up to ``limit`` (no recursion: any depth is safe)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest >= limit:
                return deepest
            stack.extend((child, level + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


#: Options a request may not give: they name files on the server's disk.
SERVER_SIDE_ONLY = LOCAL_PATH_OPTIONS


class RequestError(MlboxError):
    """The request itself is wrong (missing field, bad type, path outside the root)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def http_status_for(err: MlboxError) -> int:
    """The one place where domain errors become HTTP status codes."""
    if isinstance(err, RequestError):
        return err.status
    if isinstance(err, QueueFullError):
        return 429
    if isinstance(err, (OptionError, NotebookError, RequirementError, GPUUnavailableError)):
        return 400
    if isinstance(err, ImageNotFoundError):
        return 404
    if isinstance(err, (ConflictError, UserCancelledError)):
        return 409
    if isinstance(err, DaemonUnavailableError):
        return 503
    return 500


class MlboxHandler(APIHandler):
    """What every MLBox handler needs: the app, safe paths, JSON bodies, worker threads, and
    MlboxError as a JSON answer with its status code."""

    @property
    def mlbox(self):
        return self.settings["mlbox"]

    @property
    def jobs(self):
        return self.mlbox.job_manager

    @property
    def username(self) -> str:
        """Who asks, where the server has several users (an identity provider of its own, e.g.
        JupyterHub's): their jobs are theirs alone to see and cancel. jupyter_server's own
        providers serve one person, and name each token request anew (an anonymous user per
        request), so there every caller is that one owner: ""."""
        from jupyter_server.auth import identity

        if type(self.identity_provider) in (identity.IdentityProvider,
                                            identity.PasswordIdentityProvider,
                                            identity.LegacyIdentityProvider):
            return ""
        user = self.current_user
        return getattr(user, "username", None) or str(user or "")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        err = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(err, MlboxError):
            return super().write_error(status_code, **kwargs)
        self.set_status(http_status_for(err))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": str(err), "error": type(err).__name__}))

    def log_exception(self, typ, value, tb) -> None:
        """An MlboxError is an answer, not a crash: one line, an error only for a 5xx."""
        if not isinstance(value, MlboxError):
            return super().log_exception(typ, value, tb)
        status = http_status_for(value)
        (self.log.error if status >= 500 else self.log.info)(
            "mlbox: %s %s: %s", status, self.request.uri, str(value).splitlines()[0]
            if str(value) else type(value).__name__)

    async def in_thread(self, function, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    def body(self) -> dict:
        """The JSON object of the request, refused (never a 500) when it is over
        MAX_BODY_BYTES, not JSON, or nested deeper than MAX_JSON_DEPTH."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise RequestError(f"the request body is {len(raw):,} bytes, over the "
                               f"{MAX_BODY_BYTES:,} this API takes (a path and options)", 413)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except RecursionError:
            raise RequestError(f"the request body is nested too deeply (more than "
                               f"{MAX_JSON_DEPTH} levels)") from None
        except ValueError as err:
            raise RequestError(f"the request body is not JSON: {err}") from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise RequestError(f"the request body is nested too deeply (more than "
                               f"{MAX_JSON_DEPTH} levels)")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise RequestError("the request body must be a JSON object")
        return data

    def root_dir(self) -> Path:
        root = getattr(self.contents_manager, "root_dir", None)
        if not root:
            raise RequestError("MLBox needs a file-based contents manager (one with root_dir)",
                               500)
        return Path(root).resolve()

    def resolve_path(self, api_path: Any, *, must_exist: bool = True,
                     suffix: str = ".ipynb") -> tuple[str, Path]:
        """(normalized API path, absolute file path), confined to the server root."""
        if not isinstance(api_path, str) or not api_path.strip():
            raise RequestError("'path' is required: a notebook path relative to the server root")
        text = api_path.strip().replace("\\", "/")
        if "\0" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) \
                or text.startswith("~"):
            raise RequestError(f"{api_path!r}: paths are relative to the server root; "
                               f"absolute paths are not allowed")
        parts = PurePosixPath(text).parts
        if ".." in parts:
            raise RequestError(f"{api_path!r}: '..' is not allowed in paths")
        root = self.root_dir()
        full = (root / Path(*parts)).resolve()
        if full != root and root not in full.parents:
            raise RequestError(f"{api_path!r} points outside the server root")
        if suffix and full.suffix != suffix:
            raise RequestError(f"{api_path!r} is not a {suffix} file")
        if not self.contents_manager.allow_hidden and any(p.startswith(".") for p in parts):
            raise RequestError(f"{api_path!r} is hidden", 404)
        if must_exist and not full.is_file():
            raise RequestError(f"{api_path!r}: no such notebook", 404)
        return PurePosixPath(*parts).as_posix(), full

    def options(self, body: dict, allowed=BUILD_OPTIONS) -> tuple[BuildOptions, RunOptions]:
        """The request's ``options`` (only ``allowed`` keys) over the configured defaults."""
        options = body.get("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise RequestError("'options' must be a JSON object")
        check_keys(options, set(allowed) - SERVER_SIDE_ONLY)
        self.mlbox.check_host(options.get("host"))  # only where the server's owner allows
        return self.mlbox.resolve_options(options)

    def _plan(self, path: Path, build: BuildOptions | None = None):
        """The image a build with ``build`` (default: the configured defaults) would make."""
        from ..core.build import plan_notebook

        return plan_notebook(path, build or self.mlbox.resolve_options()[0])[1]

    async def traced(self, api_path: str, path: Path,
                     build: BuildOptions) -> tuple[BuildOptions, str]:
        """``build`` with what the notebook's open kernel loaded and read (unless the request
        said ``trace: false``), and a note when that kernel could not be asked."""
        from dataclasses import replace

        from ..core.project import project_root
        from .live_kernel import live_trace

        if build.trace is False:
            return build, ""
        trace, note = await live_trace(self.serverapp, api_path,
                                       project_root(path.parent.resolve(), build.context))
        return (replace(build, live_trace=trace) if trace else build), note


# --- jobs: builds, runs, exports ----------------------------------------------------------------

class JobSubmitHandler(MlboxHandler):
    """``POST {path, options, …}`` → 202 and the queued job. A subclass validates the rest of
    the body and names its work (:meth:`work`)."""

    kind = ""
    #: Build options, and the daemon to build on
    allowed_options: tuple[str, ...] = BUILD_OPTIONS + ("host",)

    @web.authenticated
    async def post(self):
        body = self.body()
        api_path, path = self.resolve_path(body.get("path"))
        build, run = self.options(body, self.allowed_options)
        label, work = self.work(body, path, run)
        # The job is listed at once; asking the notebook's kernel (seconds, the first time) is
        # its first step, on this loop, while the job's thread waits for the answer.
        loop = asyncio.get_running_loop()

        def traced_work(emit, cancel):
            traced, note = asyncio.run_coroutine_threadsafe(
                self.traced(api_path, path, build), loop).result()
            if note:
                emit(_note(note))
            return work(traced, emit, cancel)

        root = self.root_dir()
        job = self.jobs.submit(self.kind, api_path, traced_work, label=label,
                               api_path=lambda file: _relative(file, root), owner=self.username)
        self.set_status(202)
        self.finish(job.as_dict())

    def work(self, body: dict, path: Path, run: RunOptions) -> tuple[str, TracedWork]:
        """``(label, work(build, emit, cancel) -> result)``; raise MlboxError for a bad body."""
        raise NotImplementedError


class BuildsHandler(JobSubmitHandler):
    kind = "build"

    def work(self, body, path, run):
        from ..core.build import build_notebook

        engine = partial(self.mlbox.engine, run.host)
        return f"Build {path.name}", lambda build, emit, cancel: build_notebook(
            engine(), path, build, on_event=emit, cancel=cancel)


class RunsHandler(JobSubmitHandler):
    kind = "run"
    allowed_options = BUILD_OPTIONS + RUN_OPTIONS

    def work(self, body, path, run):
        from ..core.notebook import default_output_path
        from ..core.run import run_notebook_file

        output = (self.resolve_path(body["output"], must_exist=False)[1] if body.get("output")
                  else default_output_path(path))
        if output == path:
            raise RequestError("the output would overwrite the input notebook")
        from ..core.notebook import check_output_path

        check_output_path(output, flag="'output'")  # a 400 now, not a lost result later
        engine = partial(self.mlbox.engine, run.host)
        return f"Run {path.name}", lambda build, emit, cancel: run_notebook_file(
            engine(), path, output=output, build_options=build, options=run, on_event=emit,
            cancel=cancel)


class ExportsHandler(JobSubmitHandler):
    kind = "export"

    def work(self, body, path, run):
        from ..core.export import export_image, normalized_tag

        if not isinstance(body.get("tag"), str):
            raise RequestError("'tag' is required: the image name, e.g. myteam/analysis:1.0")
        tag = normalized_tag(body["tag"])
        push = bool(body.get("push", False))
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise RequestError("'force' must be true or false")
        engine = partial(self.mlbox.engine, run.host)
        return f"Export {path.name} → {tag}", lambda build, emit, cancel: export_image(
            engine(), path, tag, build_options=build, push=push, on_event=emit, cancel=cancel,
            force=force)


class JobsHandler(MlboxHandler):
    @web.authenticated
    async def get(self):
        self.finish({"jobs": [job.as_dict(log=False)
                              for job in self.jobs.list(owner=self.username)]})


class JobHandler(MlboxHandler):
    def job(self, job_id: str):
        job = self.jobs.get(job_id)
        if job is None or job.owner != self.username:  # another's job is not there for you
            raise RequestError(f"no job {job_id}", 404)
        return job

    @web.authenticated
    async def get(self, job_id: str):
        self.finish(self.job(job_id).as_dict())

    @web.authenticated
    async def delete(self, job_id: str):
        job = self.job(job_id)
        if job.is_final:
            raise RequestError(f"job {job_id} is already {job.status}", 409)
        self.jobs.cancel(job)
        self.set_status(202)
        self.finish(job.as_dict())


# --- quick answers ------------------------------------------------------------------------------

class RequirementsHandler(MlboxHandler):
    @web.authenticated
    async def get(self):
        api_path, path = self.resolve_path(self.get_query_argument("path", None))
        build, _ = await self.traced(api_path, path, self.mlbox.resolve_options()[0])
        self.finish(await self.in_thread(self._requirements, api_path, path, build))

    def _requirements(self, api_path: str, path: Path, build: BuildOptions) -> dict:
        plan = self._plan(path, build)
        image: dict[str, Any] = {"tag": plan.tag, "exists": None, "detail": ""}
        try:
            image["exists"] = self.mlbox.engine().image_exists(plan.tag)
        except DaemonUnavailableError as err:
            image["detail"] = str(err)
        root = self.root_dir()
        data = plan.as_dict()
        return {"path": api_path, "requirements": data["requirements"],
                "warnings": data["warnings"],
                "local_modules": [_relative(p, root) for p in data["local_modules"]],
                "system_packages": data["system_packages"], "locked": data["locked"],
                "report": data["report"], "image": image}


class DockerfileHandler(MlboxHandler):
    @web.authenticated
    async def get(self):
        api_path, path = self.resolve_path(self.get_query_argument("path", None))
        build, _ = await self.traced(api_path, path, self.mlbox.resolve_options()[0])
        plan = await self.in_thread(self._plan, path, build)
        self.finish({"path": api_path, "tag": plan.tag, "dockerfile": plan.context.dockerfile})


class ImagesHandler(MlboxHandler):
    @web.authenticated
    async def get(self):
        from ..core.images import list_mlbox_images

        images = await self.in_thread(lambda: list_mlbox_images(self.mlbox.engine()))
        self.finish({"images": [image.as_dict() for image in images]})


class ImageHandler(MlboxHandler):
    @web.authenticated
    async def delete(self, tag: str):
        await self.in_thread(self._delete, tag)
        self.set_status(204)
        self.finish()

    def _delete(self, tag: str) -> None:
        from ..core.images import list_mlbox_images

        engine = self.mlbox.engine()
        if tag not in {image.tag for image in list_mlbox_images(engine)}:
            raise ImageNotFoundError(f"no image {tag} made by jupyter_mlbox on this daemon")
        engine.remove_image(tag)  # ConflictError (409) while a container uses it


class SessionsHandler(MlboxHandler):
    """``GET``: every ``%%mlbox --session`` container on this server's Docker host. Kernels
    start sessions, not requests, so they have no owner among the server's users: the list is
    the daemon's, whoever asks (unlike jobs, which are per user)."""

    @web.authenticated
    async def get(self):
        from ..core.session import list_sessions

        found = await self.in_thread(lambda: list_sessions(self.mlbox.engine(), memory=True))
        self.finish({"sessions": [info.describe() for info in found]})


class SessionHandler(MlboxHandler):
    """``DELETE /sessions/<key>``: remove that session's container (its kernel's next
    ``--session`` cell starts a new one); 404 when no session has that key (or container id).
    The key holds slashes: send it URL-encoded or as it is."""

    @web.authenticated
    async def delete(self, key: str):
        from ..core.session import stop_sessions

        stopped = await self.in_thread(
            lambda: stop_sessions(self.mlbox.engine(), key, by_name=False))
        if not stopped:
            raise RequestError(f"no session {key!r} on this server's Docker host", 404)
        self.set_status(204)
        self.finish()


class StatusHandler(MlboxHandler):
    """The checks of ``jupyter mlbox doctor``, with the app's daemon and cached GPU probe."""

    @web.authenticated
    async def get(self):
        self.finish(await self.in_thread(self._status))

    def _status(self) -> dict:
        from ..core import doctor

        app = self.mlbox
        checks = doctor.diagnose(app.effective_base_image(), host=app.docker_host or None,
                                 gpu_support=app.gpu_support)
        status = doctor.status(checks)
        status["defaults"] = app.defaults.configured()
        status["hosts"] = app.hosts()  # what a request may name as its host (the panel's list)
        return status


def _note(note: str):
    """A warning line in the job's log (why the notebook's kernel was not asked)."""
    from ..core.events import EventKind, Phase, ProgressEvent

    return ProgressEvent(Phase.INFERRING, EventKind.WARNING, note)


def _relative(path: Path | str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


default_handlers = [
    (f"{API}/requirements", RequirementsHandler),
    (f"{API}/dockerfile", DockerfileHandler),
    (f"{API}/builds", BuildsHandler),
    (f"{API}/runs", RunsHandler),
    (f"{API}/exports", ExportsHandler),
    (f"{API}/jobs", JobsHandler),
    (f"{API}/jobs/(?P<job_id>[0-9a-f]+)", JobHandler),
    (f"{API}/images", ImagesHandler),
    (f"{API}/images/(?P<tag>.+)", ImageHandler),
    (f"{API}/sessions", SessionsHandler),
    (f"{API}/sessions/(?P<key>.+)", SessionHandler),
    (f"{API}/status", StatusHandler),
]

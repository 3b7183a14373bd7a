"""REST handlers under ``/mlbox/api/``: validate the request, call the core, answer JSON.

Docker calls never run on the event loop: quick ones go to a worker thread, long ones become
jobs. Domain errors become HTTP codes in one place, ``http_status_for``.
"""
from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import (CancelledError, DaemonUnavailableError, GPUUnavailableError,
                      ImageNotFoundError, MlboxError, NotebookError, RequirementError)

API = "/mlbox/api"


class RequestError(MlboxError):
    """The request itself is wrong (missing field, bad type, path outside the root)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def http_status_for(err: MlboxError) -> int:
    """The one place where domain errors become HTTP status codes."""
    if isinstance(err, RequestError):
        return err.status
    if isinstance(err, DaemonUnavailableError):
        return 503
    if isinstance(err, ImageNotFoundError):
        return 404
    if isinstance(err, CancelledError):
        return 409
    if isinstance(err, (NotebookError, RequirementError, GPUUnavailableError)):
        return 400
    if getattr(err.__cause__, "status_code", None) == 409:  # e.g. image used by a container
        return 409
    return 500


def answers_errors(method):
    """Turn an MlboxError raised by a handler method into a JSON error with its HTTP code."""
    @functools.wraps(method)
    async def wrapper(self: "MlboxHandler", *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except MlboxError as err:
            status = http_status_for(err)
            if status >= 500:
                self.log.error("mlbox: %s", err)
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": str(err), "error": type(err).__name__}))
    return wrapper


class MlboxHandler(APIHandler):
    """What every MLBox handler needs: the app, safe paths, JSON bodies, worker threads."""

    @property
    def mlbox(self):
        return self.settings["mlbox"]

    @property
    def jobs(self):
        return self.mlbox.job_manager

    async def in_thread(self, function, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError as err:
            raise RequestError(f"the request body is not JSON: {err}") from err
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

    def api_path_of(self, path: Path) -> str:
        return path.resolve().relative_to(self.root_dir()).as_posix()


# --- option parsing (request JSON → core options) ----------------------------------------------

def _strings(options: Mapping, key: str) -> tuple[str, ...]:
    value = options.get(key) or []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"options.{key} must be a list of strings")
    return tuple(value)


def build_options_from(options: Any, base_image: str | None):
    from ..core.build import BuildOptions

    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise RequestError("'options' must be a JSON object")
    base = options.get("base_image") or base_image
    if base is not None and not isinstance(base, str):
        raise RequestError("options.base_image must be a string")
    return BuildOptions(base_image=base, pip=_strings(options, "pip"),
                        exclude=_strings(options, "exclude"),
                        rebuild=bool(options.get("rebuild", False)))


def run_options_from(options: Any):
    from ..core.run import RunOptions

    options = options or {}
    if not isinstance(options, dict):
        raise RequestError("'options' must be a JSON object")
    gpus = str(options.get("gpus", "none"))
    if not re.fullmatch(r"none|all|auto|\d+|device=[\w,-]+", gpus):
        raise RequestError("options.gpus must be none, all, auto, a number or device=ID[,ID]")
    numbers = {}
    for key in ("timeout", "cpus"):
        value = options.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise RequestError(f"options.{key} must be a positive number")
        numbers[key] = value
    memory = options.get("memory")
    if memory is not None and not (isinstance(memory, str)
                                   and re.fullmatch(r"\d+[bkmgBKMG]?", memory)):
        raise RequestError("options.memory must look like 512m or 4g")
    env = options.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        raise RequestError("options.env must be an object of NAME: value")
    parameters = options.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(k.isidentifier() for k in parameters):
        raise RequestError("options.parameters must be an object whose keys are Python names")
    return RunOptions(gpus=gpus, timeout=numbers["timeout"], memory=memory, cpus=numbers["cpus"],
                      env={k: str(v) for k, v in env.items()}, parameters=parameters)


# --- handlers ------------------------------------------------------------------------------------

class RequirementsHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def get(self):
        api_path, path = self.resolve_path(self.get_query_argument("path", None))
        self.finish(await self.in_thread(self._requirements, api_path, path))

    def _requirements(self, api_path: str, path: Path) -> dict:
        plan = _plan(path, build_options_from({}, self.mlbox.base_image))
        image: dict[str, Any] = {"tag": plan.tag, "exists": None, "detail": ""}
        try:
            image["exists"] = self.mlbox.engine().image_exists(plan.tag)
        except DaemonUnavailableError as err:
            image["detail"] = str(err)
        root = self.root_dir()
        return {
            "path": api_path,
            "requirements": [{"requirement": r.requirement, "origin": r.origin,
                              "imports": list(r.imports)} for r in plan.inference.requirements],
            "warnings": plan.warnings,
            "local_modules": [_relative(p, root) for p in plan.inference.local_modules],
            "image": image,
        }


class DockerfileHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def get(self):
        api_path, path = self.resolve_path(self.get_query_argument("path", None))
        plan = await self.in_thread(_plan, path, build_options_from({}, self.mlbox.base_image))
        self.finish({"path": api_path, "tag": plan.tag, "dockerfile": plan.context.dockerfile})


class BuildsHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def post(self):
        body = self.body()
        api_path, path = self.resolve_path(body.get("path"))
        options = build_options_from(body.get("options"), self.mlbox.base_image)
        app = self.mlbox

        def work(on_event, cancel):
            from ..core.build import build_image

            plan = _plan(path, options, on_event)
            result = build_image(app.engine(), plan, rebuild=options.rebuild, on_event=on_event,
                                 cancel=cancel)
            return {"tag": result.tag, "built": result.built, "size": result.size,
                    "seconds": round(result.seconds, 2)}

        job = self.jobs.submit("build", api_path, work, label=f"Build {path.name}")
        self.set_status(202)
        self.finish(job.as_dict())


class RunsHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def post(self):
        body = self.body()
        api_path, path = self.resolve_path(body.get("path"))
        raw = body.get("options") or {}
        build_options = build_options_from(raw, self.mlbox.base_image)
        run_options = run_options_from(raw)
        if body.get("output"):
            output_api, output = self.resolve_path(body["output"], must_exist=False)
        else:
            from ..core.notebook import default_output_path

            output = default_output_path(path)
            output_api = self.api_path_of(output)
        if output == path:
            raise RequestError("the output would overwrite the input notebook")
        app = self.mlbox

        def work(on_event, cancel):
            from ..core.run import run_notebook_file

            try:
                result = run_notebook_file(app.engine(), path, output=output,
                                           build_options=build_options, options=run_options,
                                           on_event=on_event, cancel=cancel)
            except MlboxError as err:
                if output.exists() and getattr(err, "notebook", None) is not None:
                    err.mlbox_result = {"output_path": output_api}
                raise
            return {"output_path": output_api, "seconds": round(result.seconds, 2),
                    "gpu": result.gpu, "tag": result.build.tag if result.build else None,
                    "built": bool(result.build and result.build.built)}

        job = self.jobs.submit("run", api_path, work, label=f"Run {path.name}")
        self.set_status(202)
        self.finish(job.as_dict())


class ExportsHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def post(self):
        from ..core.export import _normalized_tag

        body = self.body()
        api_path, path = self.resolve_path(body.get("path"))
        if not isinstance(body.get("tag"), str):
            raise RequestError("'tag' is required: the image name, e.g. myteam/analysis:1.0")
        try:
            tag = _normalized_tag(body["tag"])
        except MlboxError as err:
            raise RequestError(str(err)) from err
        push = bool(body.get("push", False))
        options = build_options_from(body.get("options"), self.mlbox.base_image)
        app = self.mlbox

        def work(on_event, cancel):
            from ..core.export import export_image

            result = export_image(app.engine(), path, tag, build_options=options, push=push,
                                  on_event=on_event, cancel=cancel)
            return {"tag": result.tag, "size": result.size, "pushed": result.pushed,
                    "content_tag": result.content_tag, "seconds": round(result.seconds, 2)}

        job = self.jobs.submit("export", api_path, work, label=f"Export {path.name} → {tag}")
        self.set_status(202)
        self.finish(job.as_dict())


class JobsHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def get(self):
        self.finish({"jobs": [job.as_dict(log=False) for job in self.jobs.list()]})


class JobHandler(MlboxHandler):
    def job(self, job_id: str):
        job = self.jobs.get(job_id)
        if job is None:
            raise RequestError(f"no job {job_id}", 404)
        return job

    @web.authenticated
    @answers_errors
    async def get(self, job_id: str):
        self.finish(self.job(job_id).as_dict())

    @web.authenticated
    @answers_errors
    async def delete(self, job_id: str):
        job = self.job(job_id)
        if job.is_final:
            raise RequestError(f"job {job_id} is already {job.status}", 409)
        self.jobs.cancel(job)
        self.set_status(202)
        self.finish(job.as_dict())


class ImagesHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def get(self):
        from ..core.images import list_mlbox_images

        images = await self.in_thread(lambda: list_mlbox_images(self.mlbox.engine()))
        self.finish({"images": [image.as_dict() for image in images]})


class ImageHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def delete(self, tag: str):
        await self.in_thread(self._delete, tag)
        self.set_status(204)
        self.finish()

    def _delete(self, tag: str) -> None:
        from ..core.images import list_mlbox_images

        engine = self.mlbox.engine()
        if tag not in {image.tag for image in list_mlbox_images(engine)}:
            raise ImageNotFoundError(f"no image {tag} made by jupyter_mlbox on this daemon")
        engine.remove_image(tag)


class StatusHandler(MlboxHandler):
    @web.authenticated
    @answers_errors
    async def get(self):
        self.finish(await self.in_thread(self._status))

    def _status(self) -> dict:
        app = self.mlbox
        base = app.effective_base_image()
        host = app.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        try:
            engine = app.engine()
        except DaemonUnavailableError as err:
            return {"daemon": {"ok": False, "host": host, "detail": str(err)},
                    "base_image": {"name": base, "present": None}, "gpu": None}
        try:
            gpu, gpu_detail = app.gpu_support(engine), ""
        except MlboxError as err:
            gpu, gpu_detail = None, str(err)
        return {"daemon": {"ok": True, "host": engine.host, "local": engine.is_local,
                           "version": engine.version(), "detail": ""},
                "base_image": {"name": base, "present": engine.image_exists(base)},
                "gpu": gpu, "gpu_detail": gpu_detail}


def _plan(path: Path, options, on_event=None):
    from ..core.build import plan_notebook
    from ..core.events import ignore_progress

    return plan_notebook(path, options, on_event=on_event or ignore_progress)[1]


def _relative(path: Path, root: Path) -> str:
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
    (f"{API}/status", StatusHandler),
]

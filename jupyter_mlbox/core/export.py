"""Export a notebook as a self-contained Docker image that executes it when run.

The image holds the notebook, the local files it uses and its pinned dependencies; its
entrypoint executes the notebook and writes the executed copy to ``/out/<notebook>``::

    mkdir -p out && chmod 777 out        # the image runs as uid 1000: /out must be writable
    docker run --rm -v "$PWD/out:/out" TAG [-p NAME VALUE]... [--params-json JSON]
    docker run --rm -e MLBOX_PARAM_n=3 -v "$PWD/out:/out" TAG

(``--user "$(id -u)"`` instead of chmod works as well.) The exit status is non-zero when a cell
fails (1), the kernel dies (2), a cell times out (3) or /out is unusable (4).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConflictError, OptionError
from .build import build_image, plan_notebook
from .dockerfile import KIND_LABEL, MANAGED_LABEL, NOTEBOOK_LABEL, SOURCE_LABEL
from .engine import Engine
from .events import CancelToken, ProgressCallback, ProgressEvent, ignore_progress
from .options import BuildOptions


@dataclass(frozen=True)
class ExportResult:
    #: The name the user asked for (``registry/repo:tag``).
    tag: str
    size: int
    pushed: bool
    #: The content-hash tag the image was built under (``mlbox/<slug>:<12 hex>``).
    content_tag: str
    seconds: float = 0.0
    #: the command that runs it where it was built: ``podman`` on Podman, whose Docker API
    #: (4.3) makes ``docker run --rm`` exit 0 whatever the notebook did
    runner: str = "docker"

    def as_dict(self) -> dict:
        return {"tag": self.tag, "size": self.size, "pushed": self.pushed,
                "content_tag": self.content_tag, "seconds": round(self.seconds, 2)}

    def summary(self) -> str:
        return (f"exported {self.tag}" + (" and pushed it" if self.pushed else "")
                + f"; run it with: {self.runner} run --rm -v \"$PWD/out:/out\" {self.tag}")


def export_image(engine: Engine, path: str | Path, tag: str, *,
                 build_options: BuildOptions = BuildOptions(), push: bool = False,
                 on_event: ProgressCallback = ignore_progress,
                 cancel: CancelToken | None = None, force: bool = False) -> ExportResult:
    """Build an image that executes the notebook at ``path``, tag it ``tag``, maybe push it.

    An existing ``tag`` this notebook's exports did not make is refused before the build
    (``force`` moves it), and a base image or a content-hash tag never (see check_export_tag).
    """
    started = time.monotonic()
    path = Path(path)
    tag = normalized_tag(tag)
    _, plan = plan_notebook(path, build_options, on_event=on_event, self_contained=True)
    check_export_tag(engine, tag, notebook_name=plan.spec.notebook_name,
                     base_image=plan.spec.base_image, force=force,
                     source=plan.spec.source_id)
    if cancel is not None:
        cancel.raise_if_cancelled()
    build = build_image(engine, plan, rebuild=build_options.rebuild, on_event=on_event,
                        cancel=cancel)
    engine.tag(build.tag, tag)
    on_event(ProgressEvent("building", "info", f"tagged {build.tag} as {tag}"))
    pushed = False
    if push:
        if cancel is not None:
            cancel.raise_if_cancelled()
        on_event(ProgressEvent("pushing", "phase", f"pushing {tag}"))
        engine.push(tag, on_line=lambda line: on_event(ProgressEvent("pushing", "log", line)))
        pushed = True
    seconds = time.monotonic() - started
    on_event(ProgressEvent("done", "phase", f"exported {tag}" + (" and pushed it" if pushed
                                                                   else "")))
    return ExportResult(tag, build.size, pushed, build.tag, seconds,
                        runner="podman" if engine.engine_name == "Podman" else "docker")


def normalized_tag(tag: str) -> str:
    """``name`` → ``name:latest``; reject what docker would reject, with a clear message."""
    import re

    tag = tag.strip()
    reference = re.compile(
        r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
        r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$")
    if not tag or not reference.match(tag):
        raise OptionError(f"{tag!r} is not a valid image name: use [REGISTRY/]NAME[:TAG] with a "
                         f"lowercase NAME, e.g. myteam/analysis:1.0")
    if ":" not in tag.rsplit("/", 1)[-1]:
        tag += ":latest"
    return tag


#: jupyter_mlbox's content-hash tags (``mlbox/<slug>:<12 hex>``): runs reuse an image by this
#: name, so another image under it would run in their place.
_CACHE_TAG = re.compile(r"^(?:docker\.io/)?mlbox/[^:/]+:[0-9a-f]{12}$")


def canonical_reference(ref: str) -> str:
    """``python`` and ``docker.io/library/python:latest`` are the same image name."""
    ref = ref.strip()
    if ":" not in ref.rsplit("/", 1)[-1] and "@" not in ref:
        ref += ":latest"
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/",
                   "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    if "/" not in ref.split(":", 1)[0]:
        ref = "library/" + ref
    return ref


def _base_images(engine: Engine, base_image: str) -> set[str]:
    """This export's base, and every base a jupyter_mlbox image on the daemon was built on."""
    names = {canonical_reference(base_image)}
    for attrs in engine.list_images(f"{MANAGED_LABEL}=true"):
        base = ((attrs.get("Config") or {}).get("Labels") or {}).get(
            "org.opencontainers.image.base.name")
        if base:
            names.add(canonical_reference(base))
    return names


def check_export_tag(engine: Engine, tag: str, *, notebook_name: str, base_image: str,
                     force: bool = False, source: str = "") -> None:
    """Refuse to move ``tag`` off an image that is not an earlier export of this notebook.

    Never (not even with ``force``): a content-hash tag (``mlbox/NAME:HASH``) or a base image
    (this export's or any jupyter_mlbox image's, by name or by id): moving one broke every later
    build. Without ``force``: any other existing image whose labels do not say "exported by
    jupyter_mlbox from this notebook" (``source``: notebook.source_id, this file; an export
    made before that label existed is judged by the notebook's name)."""
    if _CACHE_TAG.match(tag):
        example = notebook_name.rsplit(".", 1)[0].lower()
        raise ConflictError(f"{tag} is a jupyter_mlbox content-hash tag (mlbox/NAME:HASH) that "
                            f"runs reuse by name; exporting onto it would make them run another "
                            f"image: choose another tag, e.g. myteam/{example}:1.0")
    bases = _base_images(engine, base_image)
    if canonical_reference(tag) in bases:
        raise ConflictError(f"{tag} is a base image jupyter_mlbox builds on; moving it would "
                            f"break every later build: choose another tag")
    if not engine.image_exists(tag):
        return
    attrs = engine.image_attrs(tag)
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    for base in bases:  # the same image under another name (python:3.11 = python:3.11-slim…)
        try:
            if engine.image_exists(base) and engine.image_attrs(base).get("Id") == attrs.get("Id"):
                raise ConflictError(f"{tag} is the base image {base.removeprefix('library/')} "
                                    f"under another name; moving it would break every later "
                                    f"build: choose another tag")
        except ConflictError:
            raise
        except Exception:  # noqa: BLE001 - a base that cannot be inspected is not this one
            continue
    same_file = (labels[SOURCE_LABEL] == source if labels.get(SOURCE_LABEL) and source
                 else labels.get(NOTEBOOK_LABEL) == notebook_name)
    ours = (labels.get(MANAGED_LABEL) == "true" and labels.get(KIND_LABEL) == "export"
            and same_file)
    if ours or force:
        return
    namesake = " from another folder" if labels.get(NOTEBOOK_LABEL) == notebook_name else ""
    made = (f"an export of {labels.get(NOTEBOOK_LABEL)}{namesake}"
            if labels.get(KIND_LABEL) == "export"
            else "a jupyter_mlbox environment image" if labels.get(MANAGED_LABEL) == "true"
            else "an image jupyter_mlbox did not make")
    raise ConflictError(f"{tag} already exists and is {made}, not an export of {notebook_name}; "
                        f"choose another tag, or pass --force (\"force\": true over the REST API) "
                        f"to move the tag to this export")

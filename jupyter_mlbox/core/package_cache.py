"""The package cache: uv's cache in a named volume on the daemon, shared by every build.

A classic-builder ``RUN`` keeps no cache between builds, so each new set of requirements
downloaded, installed and copied everything again. The cached build (venv_recipe.py) installs
in a container instead, with uv's cache in the volume ``mlbox-package-cache``, starting from the
venv image that already holds most of the packages, and commits it: the second notebook that
shares most of its packages downloads, installs and stores only the ones it adds.

- The volume lives where the daemon is, so a remote ``DOCKER_HOST`` keeps its cache there;
  nothing travels but the requirements.
- Volumes are not part of a commit: neither the cache nor uv nor the index settings and the CA
  bundle (in a per-build volume, removed after) reach an image.
- uv locks its cache, so concurrent builds share it safely.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from .dockerfile import BUILD_STEP_LABEL, MANAGED_LABEL, BuildContext, ImageSpec
from .engine import Engine
from .events import CancelToken, ProgressCallback, ProgressEvent
from .orphans import owner_labels
from .venv_recipe import (BUILD_DIR, CACHE_DIR, REFRESH_FILE, STAGE_LABEL, TOOLS_DIR,
                          VENV_REQUIREMENTS_LABEL, VENV_STEP, VenvRecipe, venv_recipe)
from ..errors import BuildError, ConflictError, UserCancelledError

#: The named volume that holds uv's cache.
CACHE_VOLUME = "mlbox-package-cache"
#: A venv image grows from the nearest one by one layer; past this many layers it starts from
#: the stage image again (overlayfs allows 128).
MAX_LAYERS = 48
#: Start from a venv image only when it has at least this share of the requirements.
NEAR_ENOUGH = 0.5
#: ... and at most this share of them again in requirements the build does not want: what the
#: install removes stays in the lower layers, so the image would carry it (a venv grown from
#: one with SciPy and Dask was 175 MB over the same venv grown from the stage).
AT_MOST_EXTRA = 0.1


@dataclass(frozen=True)
class CacheInfo:
    """What ``jupyter mlbox cache info`` shows."""

    volume: str
    exists: bool
    size: int
    venv_images: int

    def text(self) -> str:
        if not self.exists:
            return f"package cache: none yet (volume {self.volume}; the next build makes it)"
        return (f"package cache: {self.size / 1e6:.0f} MB in volume {self.volume}; "
                f"{self.venv_images} venv image(s) (jupyter mlbox prune removes them)")


def cached_build_context(engine: Engine, spec: ImageSpec, context: BuildContext, *,
                         refresh: bool, on_event: ProgressCallback,
                         cancel: CancelToken | None = None) -> BuildContext:
    """The final build of ``context``'s image, ``FROM`` its venv image, made (or reused) here
    through the cache."""
    recipe = venv_recipe(spec, context)
    if refresh or not engine.image_exists(recipe.tag):
        _image(engine, recipe.tools_tag, recipe.tools_dockerfile, recipe.tools_files,
               "the builder tools", on_event, cancel)
        _image(engine, recipe.stage_tag, recipe.stage_dockerfile, recipe.stage_files,
               "the base stage", on_event, cancel)
        _venv_image(engine, recipe, refresh=refresh, on_event=on_event, cancel=cancel)
    else:
        on_event(ProgressEvent("building", "info", f"the venv {recipe.tag} is there already"))
    return recipe.final


def _image(engine: Engine, tag: str, dockerfile: str, files, what: str,
           on_event: ProgressCallback, cancel: CancelToken | None) -> None:
    """A small Docker build (its layers are cached too), unless ``tag`` is there."""
    if engine.image_exists(tag):
        return
    on_event(ProgressEvent("building", "info", f"making {what} {tag}"))
    engine.build(BuildContext(dockerfile, files, {}, tag).tar_bytes(), tag,
                 on_line=lambda line: on_event(ProgressEvent("building", "log", line)),
                 on_step=lambda i, n, text: None, cancel=cancel)


def nearest_venv(engine: Engine, recipe: VenvRecipe) -> tuple[str, int]:
    """The image to install on: the venv image of the same lineage (stage, pruning) with the
    most of ``recipe``'s requirements (and room for a layer, and little the build does not
    want), else the stage image; and how many."""
    wanted = set(recipe.requirements)
    best, shared = recipe.stage_tag, 0
    for attrs in engine.list_images(f"{BUILD_STEP_LABEL}={VENV_STEP}"):
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        tags = [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]
        if labels.get(STAGE_LABEL) != recipe.lineage or not tags:
            continue
        if len((attrs.get("RootFS") or {}).get("Layers") or []) > MAX_LAYERS:
            continue
        has = set(labels.get(VENV_REQUIREMENTS_LABEL, "").split(",")) - {""}
        if len(has - wanted) > AT_MOST_EXTRA * len(wanted):
            continue
        common = len(wanted & has)
        if common > shared:
            best, shared = tags[0], common
    if shared < NEAR_ENOUGH * len(wanted):
        return recipe.stage_tag, 0
    return best, shared


def _venv_image(engine: Engine, recipe: VenvRecipe, *, refresh: bool,
                on_event: ProgressCallback, cancel: CancelToken | None) -> None:
    start, shared = nearest_venv(engine, recipe)
    _tools_volume(engine, recipe)
    whence = (f"on {start} ({shared} of its {len(recipe.requirements)} requirements there "
              f"already)" if shared else "")
    on_event(ProgressEvent("building", "step", f"installing the requirements {whence} "
                                               f"(package cache: volume {CACHE_VOLUME})"
                           .replace("  ", " "), 1, 2))
    build_volume = f"mlbox-build-{uuid.uuid4().hex[:12]}"
    container = engine.create_container(
        start, ["sh", f"{BUILD_DIR}/install.sh"], environment={},
        labels={MANAGED_LABEL: "true", BUILD_STEP_LABEL: VENV_STEP, **owner_labels()},
        volumes={CACHE_VOLUME: CACHE_DIR, _tools_volume_name(recipe): TOOLS_DIR,
                 build_volume: BUILD_DIR}, user="0")
    lines: list[str] = []

    def said(line: str) -> None:
        lines.append(line)
        on_event(ProgressEvent("building", "log", line))

    try:
        files = dict(recipe.files)
        if refresh:
            files[REFRESH_FILE] = b""
        engine.put_files(container, BUILD_DIR, files, uid=0)
        engine.start(container)
        outcome = engine.wait(container, None, cancel, on_line=said)
        if outcome.exit_code != 0:
            raise BuildError(f"installing the requirements failed (exit code "
                             f"{outcome.exit_code})",
                             step="uv pip compile + uv pip sync (install.sh)",
                             log="\n".join(lines) or engine.logs(container, tail=200))
        on_event(ProgressEvent("building", "step", f"saving the venv as {recipe.tag}", 2, 2))
        # a commit keeps the container's labels: the owner's are emptied, or a container
        # someone runs from the image would look like an orphan of this process
        engine.commit(container, recipe.tag, {
            **{key: "" for key in owner_labels()}, BUILD_STEP_LABEL: VENV_STEP,
            STAGE_LABEL: recipe.lineage, VENV_REQUIREMENTS_LABEL: ",".join(recipe.requirements)})
    except UserCancelledError:
        raise UserCancelledError("build cancelled; its install container was removed") from None
    finally:
        engine.remove_container(container)
        engine.remove_volume(build_volume)


def _tools_volume_name(recipe: VenvRecipe) -> str:
    return f"mlbox-uv-{recipe.tools_tag.rsplit(':', 1)[-1]}"


def _tools_volume(engine: Engine, recipe: VenvRecipe) -> None:
    """uv in a volume, mounted where the tools image has it: Docker fills an empty named
    volume from the image's folder at the first mount."""
    name = _tools_volume_name(recipe)
    if engine.volume_exists(name):
        return
    container = engine.create_container(recipe.tools_tag, [f"{TOOLS_DIR}/bin/uv", "--version"],
                                        environment={}, labels={MANAGED_LABEL: "true",
                                                                **owner_labels()},
                                        volumes={name: TOOLS_DIR}, user="0")
    try:
        engine.start(container)
        engine.wait(container, 120, None)
    finally:
        engine.remove_container(container)


def cache_info(engine: Engine) -> CacheInfo:
    size = engine.volume_size(CACHE_VOLUME)
    venvs = engine.list_images(f"{BUILD_STEP_LABEL}={VENV_STEP}")
    return CacheInfo(CACHE_VOLUME, size is not None, size or 0, len(venvs))


def prune_cache(engine: Engine) -> str:
    """Remove the cache volume (the next build downloads again); one sentence saying what
    happened. A build that uses it right now keeps it."""
    size = engine.volume_size(CACHE_VOLUME)
    try:
        removed = engine.remove_volume(CACHE_VOLUME)
    except ConflictError:
        return (f"the package cache (volume {CACHE_VOLUME}) is in use by a build right now; "
                f"kept it: try again when the build is done")
    if not removed:
        return "no package cache to remove"
    return f"removed the package cache (volume {CACHE_VOLUME}, {(size or 0) / 1e6:.0f} MB)"

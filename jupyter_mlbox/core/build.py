"""Plan and build an image: inference + rendering (pure), then the engine builds it.

The tag is the content hash of the rendered build, so an unchanged environment finds its image
already there and nothing is built.
"""
from __future__ import annotations

import importlib.metadata as metadata
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from packaging.utils import canonicalize_name

from .dockerfile import RUNTIME_PACKAGES, BuildContext, ImageSpec, default_base_image, \
    render_build_context
from .engine import DockerEngine
from .events import CancelToken, ProgressCallback, ProgressEvent, ignore_progress
from .inference import InferenceResult, infer_requirements, installable_pin
from .pip_settings import PipSettings, host_pip_settings


@dataclass(frozen=True)
class BuildOptions:
    """What a user can say about the image (CLI flags, magic arguments, server options)."""

    base_image: str | None = None
    pip: tuple[str, ...] = ()
    requirements_file: Path | None = None
    exclude: tuple[str, ...] = ()
    rebuild: bool = False


@dataclass
class ImagePlan:
    """An image before it is built: what was inferred and what would be built.

    ``warnings`` are about the notebook (guesses, unreadable cells); warnings about the host's
    pip settings are reported when a build runs, and by ``doctor``.
    """

    inference: InferenceResult
    spec: ImageSpec
    context: BuildContext
    warnings: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return self.context.tag


@dataclass(frozen=True)
class BuildResult:
    tag: str
    built: bool
    size: int
    seconds: float


def runtime_requirements(already: Iterable[str]) -> list[str]:
    """Pins for what executing a notebook in the image needs, skipping what the notebook pins.

    Pinned to this kernel's versions, so the container's kernel behaves like the local one.
    """
    taken = {canonicalize_name(name) for name in already}
    pins = []
    for name in RUNTIME_PACKAGES:
        if canonicalize_name(name) in taken:
            continue
        try:
            pins.append(installable_pin(name, metadata.version(name))[0])
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def plan_image(sources: Iterable[str], *, notebook_name: str, search_dir: Path | None,
               options: BuildOptions = BuildOptions(), pip: PipSettings | None = None,
               embedded_files: Mapping[str, bytes] | None = None,
               entry_notebook: str | None = None) -> ImagePlan:
    """Infer requirements for ``sources`` and render the build. Pure: no Docker."""
    inference = infer_requirements(sources, search_dir=search_dir,
                                   requirements_file=options.requirements_file,
                                   extra=options.pip, exclude=options.exclude)
    pip = host_pip_settings() if pip is None else pip
    requirements = [r.requirement for r in inference.requirements]
    requirements += runtime_requirements(inference.names())
    spec = ImageSpec(requirements=tuple(requirements), notebook_name=notebook_name,
                     base_image=options.base_image or default_base_image(), pip=pip,
                     embedded_files=dict(embedded_files or {}), entry_notebook=entry_notebook)
    return ImagePlan(inference, spec, render_build_context(spec), list(inference.warnings))


def build_image(engine: DockerEngine, plan: ImagePlan, *, rebuild: bool = False,
                on_event: ProgressCallback = ignore_progress,
                cancel: CancelToken | None = None) -> BuildResult:
    """Build ``plan`` unless an image with its tag exists already.

    ``rebuild`` builds from scratch, ignoring the layer cache, so unpinned requirements are
    resolved anew.
    """
    started = time.monotonic()
    tag = plan.tag
    if not rebuild and engine.image_exists(tag):
        on_event(ProgressEvent("building", "info", f"image {tag} is up to date; nothing to build"))
        return BuildResult(tag, False, engine.image_attrs(tag).get("Size", 0),
                           time.monotonic() - started)
    base = plan.spec.base_image
    if not engine.image_exists(base):
        on_event(ProgressEvent("building", "info", f"pulling base image {base}"))
        engine.pull(base)
    on_event(ProgressEvent("building", "phase", f"building {tag}"))
    for warning in plan.spec.pip.warnings:  # host pip settings a build could not carry over
        on_event(ProgressEvent("building", "warning", warning))
    engine.build(
        plan.context.tar_bytes(), tag,
        on_line=lambda line: on_event(ProgressEvent("building", "log", line)),
        on_step=lambda i, n, text: on_event(ProgressEvent("building", "step", text, i, n)),
        cancel=cancel, nocache=rebuild)
    size = engine.image_attrs(tag).get("Size", 0)
    on_event(ProgressEvent("building", "info", f"built {tag} ({size / 1e6:.0f} MB)"))
    return BuildResult(tag, True, size, time.monotonic() - started)

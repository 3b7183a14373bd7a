"""Plan and build an image: inference + rendering (pure), then the engine builds it.

The tag is the content hash of the rendered build, so an unchanged environment finds its image
already there and nothing is built.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from packaging.utils import canonicalize_name

from .dockerfile import RUNTIME_PACKAGES, BuildContext, ImageSpec, default_base_image, \
    render_build_context
from .engine import Engine
from .events import (CancelToken, ProgressCallback, ProgressEvent, ignore_progress,
                     upload_progress)
from .options import BuildOptions
from .distributions import installed_closure
from .inference import InferenceResult, infer_requirements, installable_pin
from .notebook import code_cell_sources, read_notebook, source_id
from .pip_settings import PipSettings, host_pip_settings
from .system_packages import SystemPackage, plan_system_packages
from .report import PlanReport, import_sources, plan_report
from .project import (collect_files, local_code, project_for, project_root,
                      referenced_paths, sys_path_dirs)
from .lock import locked, python_of
from .declared import (Declared, base_image_for, discover, inference_input, lock_for,
                       locked_names, settle_file_requirements)
from .package_cache import cached_build_context
from .build_lock import build_lock
from .trace import trace_notebook
from .venv_pruning import leave_out_candidates
from .shared_libraries import stop_sentence
from ..errors import BuildError, MissingLibraryError



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
    #: Debian packages for the image (apt.txt, --apt, inferred) and why each is there.
    system_packages: list[SystemPackage] = field(default_factory=list)
    #: Files of the project the notebook uses, by path relative to the project root (filled
    #: when planned from a notebook file), and the notebook's folder relative to that root.
    local_files: dict[str, bytes] = field(default_factory=dict)
    notebook_dir: str = ""
    #: Top-level modules the notebook's own cells import ("import") or only ``%load_ext``
    #: ("magic"), so the report can tell a local module's imports apart; None: not known.
    imported: dict[str, str] | None = None
    #: The project's declared environment (declared.py), when planned from a notebook file,
    #: and the file the lock came from (``x.mlbox.lock``, ``uv.lock``; None: no lock).
    declared: Declared | None = None
    lock_file: str | None = None

    @property
    def tag(self) -> str:
        return self.context.tag

    def as_dict(self) -> dict:
        return {"tag": self.tag, "warnings": list(self.warnings),
                "requirements": [{"requirement": r.requirement, "origin": r.origin,
                                  "imports": list(r.imports), "verified": r.verified,
                                  "where": r.where}
                                 for r in self.inference.requirements],
                "local_modules": [str(p) for p in self.inference.local_modules],
                "system_packages": [{"name": p.name, "origin": p.origin, "because": p.because}
                                    for p in self.system_packages],
                "locked": self.spec.lock_text is not None,
                "report": self.report().as_dict(),
                "dockerfile": self.context.dockerfile}

    def report(self) -> "PlanReport":
        """What this plan reproduces and what it could not verify, said before the build."""
        return plan_report(self)

    def summary(self) -> str:
        return (f"{len(self.inference.requirements)} requirements → {self.tag}"
                + (f" ({len(self.warnings)} warnings)" if self.warnings else ""))


@dataclass(frozen=True)
class BuildResult:
    tag: str
    built: bool
    size: int
    seconds: float

    def as_dict(self) -> dict:
        return {"tag": self.tag, "built": self.built, "size": self.size,
                "seconds": round(self.seconds, 2)}

    def summary(self) -> str:
        """``built mlbox/x:abc (504 MB, 16.0 s)`` / ``reused …``."""
        return (f"{'built' if self.built else 'reused'} {self.tag} "
                f"({self.size / 1e6:.0f} MB, {self.seconds:.1f} s)")


def runtime_requirements(already: Iterable[str], python_version: str | None = None, *,
                         with_pip: bool = False) -> list[str]:
    """Pins for the kernel stack that executes a notebook in the image — ipykernel, nbclient,
    nbformat, cloudpickle and everything they need (IPython, traitlets, jupyter_client, comm …)
    — at this kernel's versions, so the container's kernel behaves like the local one (a helper
    that imports from IPython gets the same IPython). What the notebook pins itself is skipped.
    ``with_pip``: a cell runs pip (%pip, !pip), so pip is one of them (else the venv leaves it
    out, venv_pruning.RUNTIME_ONLY).
    """
    import sys

    python_version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    taken = {canonicalize_name(name) for name in already}
    packages = RUNTIME_PACKAGES + (("pip",) if with_pip else ())
    stack = installed_closure(packages, python_version)
    pins = [installable_pin(name, version)[0] for name, version in sorted(stack.items())
            if name not in taken]
    pins += [name for name in packages  # not in this kernel: the newest
             if canonicalize_name(name) not in stack and canonicalize_name(name) not in taken]
    return pins


def infer_declared(code: list[str], *, notebook_dir: Path, root: Path,
                   options: BuildOptions = BuildOptions(), traced: Iterable[str] = (),
                   module_dirs: Iterable[Path] = ()) -> tuple[InferenceResult, Declared]:
    """The requirements of ``code`` (cells, and the local code they run) in ``notebook_dir`` of
    the project at ``root``: a requirements file (-r, or the declared one: pyproject, uv.lock,
    requirements.txt, environment.yml) replaces inference, and then a local install stays a
    local build and an import no requirement provides is a warning. Precedence: flags > the
    lock beside the notebook (plan_image) > declared files > inference."""
    module_dirs = list(module_dirs)
    declared = discover(notebook_dir, root, requirements=options.requirements_file is None,
                        python=options.base_image is None, exclude=options.exclude)
    requirements_file, declared_lines = inference_input(declared, root)
    inference = infer_requirements(code, search_dir=notebook_dir, traced=traced,
                                   module_dirs=module_dirs,
                                   requirements_file=options.requirements_file
                                   or requirements_file, declared=declared_lines,
                                   extra=options.pip, exclude=options.exclude)
    file_used = options.requirements_file or requirements_file or (
        notebook_dir / "requirements.txt" if (notebook_dir / "requirements.txt").is_file()
        else None)
    inference.warnings[:0] = list(declared.warnings) + (settle_file_requirements(
        inference, code, declared_lines[0] if declared_lines else Path(file_used).name,
        search_dirs=[notebook_dir, *module_dirs], locked=locked_names(declared),
        exclude=options.exclude) if file_used or declared_lines else [])
    return inference, declared


def plan_image(sources: Iterable[str], *, notebook_name: str, search_dir: Path | None,
               options: BuildOptions = BuildOptions(), pip: PipSettings | None = None,
               embedded_files: Mapping[str, bytes] | None = None,
               entry_notebook: str | None = None,
               inference: InferenceResult | None = None,
               traced: Iterable[str] = (), lock_beside: Path | None = None,
               source_id: str = "", declared: Declared | None = None) -> ImagePlan:
    """Infer requirements for ``sources`` (unless ``inference`` is given) and render the build.

    ``lock_beside`` is the notebook whose ``.mlbox.lock`` the build installs when there is one
    (``options.relock`` makes it anew); else a ``declared`` uv.lock is installed. ``declared``'s
    Python picks the base image unless --base does. Pure but for those: no Docker.
    """
    sources = list(sources)
    if inference is None and search_dir is not None:  # a kernel's cells: its folder's project
        inference, declared = infer_declared(
            sources, notebook_dir=search_dir,
            root=project_root(search_dir.resolve(), options.context), options=options,
            traced=traced)
    elif inference is None:
        inference = infer_requirements(sources, search_dir=None, traced=traced,
                                       requirements_file=options.requirements_file,
                                       extra=options.pip, exclude=options.exclude)
    pip = host_pip_settings() if pip is None else pip
    requirements = [r.requirement for r in inference.requirements]
    base_image = options.base_image or base_image_for(declared) or default_base_image()
    leave_out = leave_out_candidates(sources, inference.names())
    requirements += runtime_requirements(inference.names(), python_of(base_image),
                                         with_pip="pip" not in leave_out)
    system = plan_system_packages(sources, search_dir=search_dir, explicit=options.apt,
                                  exclude=options.exclude_apt, requirements=requirements)
    lock = None if lock_beside is None else locked(
        lock_beside, requirements, python_version=python_of(base_image), pip=pip,
        relock=options.relock, local_wheels=inference.local_wheels)
    spec = ImageSpec(requirements=tuple(requirements), notebook_name=notebook_name,
                     base_image=base_image, pip=pip,
                     embedded_files=dict(embedded_files or {}), entry_notebook=entry_notebook,
                     source_id=source_id, keep_tests=options.keep_tests, apt=system.names(),
                     lock_text=lock.text if lock else lock_for(
                         declared, requirements, python_version=python_of(base_image), pip=pip),
                     local_wheels=inference.local_wheels,
                     apt_excluded=tuple(sorted(set(options.exclude_apt))),
                     leave_out=leave_out)
    lock_file = lock.path.name if lock else (
        declared.file.name if spec.lock_text is not None and declared else None)
    return ImagePlan(inference, spec, render_build_context(spec),
                     list(inference.warnings) + system.warnings,
                     system_packages=list(system.packages), declared=declared,
                     lock_file=lock_file)


def local_files_for(notebook_dir: Path, sources: Iterable[str],
                    local_modules: Iterable[Path], read_files: Iterable[Path] = ()
                    ) -> dict[str, bytes]:
    """Files below the notebook's folder that it needs (for a cell run from a kernel, whose
    project is its folder): its local modules, the data files it names, e.g.
    ``pd.read_csv("data/iris.csv")``, and ``read_files`` a traced kernel read."""
    notebook_dir = notebook_dir.resolve()
    wanted = referenced_paths(sources, notebook_dir, notebook_dir)
    wanted |= {Path(p).resolve() for p in [*local_modules, *read_files]
               if notebook_dir in Path(p).resolve().parents}
    return collect_files(wanted, notebook_dir)


def plan_notebook(path: str | Path, options: BuildOptions = BuildOptions(), *,
                  on_event: ProgressCallback = ignore_progress, self_contained: bool = False,
                  pip: PipSettings | None = None):
    """Read the notebook at ``path`` and plan its image; return ``(notebook, plan)``.

    ``self_contained`` bakes the notebook and its local files into the image and makes it
    execute the notebook when run (``jupyter mlbox export``).
    """
    path = Path(path)
    read_warnings: list[str] = []
    nb = read_notebook(path, read_warnings)
    on_event(ProgressEvent("inferring", "phase", f"reading the imports of {path.name}"))
    sources = code_cell_sources(nb)
    trace = options.live_trace if options.trace is not False else None
    if trace is not None:
        on_event(ProgressEvent("inferring", "info", f"counting what the kernel of {path.name} "
                                                    f"loaded and read"))
    elif options.trace:
        on_event(ProgressEvent("inferring", "info", f"--trace: executing {path.name} locally "
                                                    f"once to see what it loads and reads"))
        trace = trace_notebook(sources, path.parent,
                               project_root(path.parent.resolve(), options.context))
    traced = trace.modules if trace else ()
    module_dirs = sys_path_dirs(sources, path.parent)
    own_code = local_code(sources, [path.parent.resolve(), *module_dirs])
    code = sources + list(own_code.values())  # the cells, %run scripts, local modules
    root = project_root(path.parent.resolve(), options.context)
    inference, declared = infer_declared(code, notebook_dir=path.parent, root=root,
                                         options=options, traced=traced,
                                         module_dirs=module_dirs)
    project = project_for(path, code, [*inference.local_modules, *own_code],
                          options.context, read_files=trace.files if trace else ())
    in_project = f"{project.notebook_dir}/{path.name}".lstrip("/")
    embedded = {**project.files, in_project: path.read_bytes()} if self_contained else None
    plan = plan_image(sources, notebook_name=path.name, search_dir=path.parent,
                      options=options, pip=pip, embedded_files=embedded,
                      entry_notebook=in_project if self_contained else None,
                      inference=inference, lock_beside=path,
                      source_id=source_id(path) if self_contained else "",
                      declared=declared)
    plan.local_files = project.files
    plan.notebook_dir = project.notebook_dir
    plan.imported = import_sources(sources)
    plan.warnings[:0] = read_warnings + project.warnings
    for warning in plan.warnings:
        on_event(ProgressEvent("inferring", "warning", warning))
    on_event(ProgressEvent("inferring", "report", plan.report().text()))
    return nb, plan


def build_image(engine: Engine, plan: ImagePlan, *, rebuild: bool = False,
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
    # One build per tag: a concurrent request for it (another job, kernel or CLI run on this
    # host) waits here, then reuses what that build made.
    with build_lock(f"{engine.host} {tag}", cancel=cancel, what=f"a concurrent build of {tag}",
                    on_wait=lambda: on_event(ProgressEvent(
                        "building", "info", f"waiting for a concurrent build of {tag}"))) \
            as waited:
        if (waited or not rebuild) and engine.image_exists(tag):
            on_event(ProgressEvent("building", "info", f"image {tag} is up to date (made by a "
                                                       f"concurrent build); nothing to build"))
            return BuildResult(tag, False, engine.image_attrs(tag).get("Size", 0),
                               time.monotonic() - started)
        return _build_locked(engine, plan, rebuild=rebuild, on_event=on_event, cancel=cancel,
                             started=started)


def _build_locked(engine: Engine, plan: ImagePlan, *, rebuild: bool,
                  on_event: ProgressCallback, cancel: CancelToken | None,
                  started: float) -> BuildResult:
    tag = plan.tag
    base = plan.spec.base_image
    if not engine.image_exists(base):
        on_event(ProgressEvent("building", "info", f"pulling base image {base}"))
        engine.pull(base)
    on_event(ProgressEvent("building", "phase", f"building {tag}"))
    for warning in plan.spec.pip.warnings:  # host pip settings a build could not carry over
        on_event(ProgressEvent("building", "warning", warning))
    try:
        context = plan.context
        if engine.supports_package_cache:
            context = cached_build_context(engine, plan.spec, context, refresh=rebuild,
                                           on_event=on_event, cancel=cancel)
        engine.build(
            context.tar_bytes(), tag,
            on_line=lambda line: on_event(ProgressEvent("building", "log", line)),
            on_step=lambda i, n, text: on_event(ProgressEvent("building", "step", text, i, n)),
            cancel=cancel, nocache=rebuild,
            on_upload=upload_progress(on_event, "building", "the build context", engine.host))
    except BuildError as err:  # the library check's sentence is the message, not "returned 3"
        sentence = stop_sentence(err.log)
        if sentence is None:
            raise
        raise MissingLibraryError(sentence, log=err.log) from err
    size = engine.image_attrs(tag).get("Size", 0)
    on_event(ProgressEvent("building", "info", f"built {tag} ({size / 1e6:.0f} MB)"))
    return BuildResult(tag, True, size, time.monotonic() - started)


def build_notebook(engine: Engine, path: str | Path, options: BuildOptions = BuildOptions(), *,
                   on_event: ProgressCallback = ignore_progress,
                   cancel: CancelToken | None = None) -> BuildResult:
    """The build job for a notebook file: plan it, then build (or reuse) its image."""
    _, plan = plan_notebook(path, options, on_event=on_event)
    return build_image(engine, plan, rebuild=options.rebuild, on_event=on_event, cancel=cancel)

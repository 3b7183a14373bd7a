"""What the kernel's environment says about distributions: which one provides a module,
its installed version, the pin an image can install, pipreqs' name table for the rest."""
from __future__ import annotations

import importlib.metadata as metadata
import importlib.resources
from functools import lru_cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# ---------------------------------------------------------------------------------------------
# environment lookups
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    """Top-level module → distributions, editable installs included (their RECORD lists a
    ``.pth`` or finder, not the package: provenance.editable_modules reads those)."""
    from .provenance import editable_modules

    found = metadata.packages_distributions()
    for module, names in editable_modules().items():
        found[module] = sorted(set(found.get(module, [])) | set(names))
    return found


#: Import names pipreqs' table lacks (or gets wrong) that data-science notebooks use often.
MAPPING_ADDITIONS = {
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "lightgbm": "lightgbm",
    "dotenv": "python-dotenv",
}


@lru_cache(maxsize=1)
def pipreqs_mapping() -> dict[str, str]:
    """pipreqs' import name → PyPI name table (e.g. PIL → Pillow), plus MAPPING_ADDITIONS."""
    try:
        text = importlib.resources.files("pipreqs").joinpath("mapping").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pipreqs missing: degrade, don't crash
        return {}
    mapping = {}
    for line in text.splitlines():
        if ":" in line:
            import_name, dist = line.strip().split(":", 1)
            mapping[import_name] = dist
    return {**mapping, **MAPPING_ADDITIONS}


def distribution_for(module: str, candidates: list[str]) -> str:
    """Pick among the distributions that provide a top-level name (namespace packages).

    ``google.cloud.storage`` is provided by google-cloud-storage, not by protobuf which also
    installs into ``google/``: the distribution whose files contain the deepest part of the
    dotted path wins.
    """
    if len(candidates) == 1:
        return candidates[0]
    parts = module.split(".")
    best, best_depth = sorted(candidates)[0], 0
    for dist_name in sorted(candidates):
        try:
            files = metadata.distribution(dist_name).files or []
        except metadata.PackageNotFoundError:
            continue
        paths = {str(f).replace("\\", "/") for f in files}
        for depth in range(len(parts), 0, -1):
            prefix = "/".join(parts[:depth])
            if any(p.startswith(prefix + "/") or p == prefix + ".py" for p in paths):
                if depth > best_depth:
                    best, best_depth = dist_name, depth
                break
    return best


def installed_version(dist_name: str) -> str | None:
    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return None


#: PyTorch's CPU-only wheels (``torch==2.3.0+cpu``), a few hundred MB where PyPI's Linux build of
#: the same version pulls in the multi-GB CUDA libraries.
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYTORCH_CPU_PACKAGES = ("torch", "torchvision", "torchaudio")


def is_pytorch_cpu_pin(requirement: str) -> bool:
    """``torch==2.3.0+cpu`` (or torchvision/torchaudio): a pin only PyTorch's CPU index has."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    return canonicalize_name(req.name) in PYTORCH_CPU_PACKAGES and any(
        spec.operator in {"==", "==="} and spec.version.endswith("+cpu") for spec in req.specifier)


def installable_pin(name: str, version: str) -> tuple[str, str | None]:
    """``name==version`` that an index can serve, and a warning when the version had to change.

    Local version labels (``2.3.0+cpu``) name builds that exist only on other indexes; the
    public release is pinned instead and the user is told. Except PyTorch's CPU builds
    (torch, torchvision, torchaudio ``+cpu``): they keep their pin, and the image installs them
    from :data:`PYTORCH_CPU_INDEX` (see dockerfile.py).
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        return name, f"{name}: installed version {version!r} is not a valid version; left unpinned"
    if parsed.local == "cpu" and canonicalize_name(name) in PYTORCH_CPU_PACKAGES:
        return (f"{name}=={version}",
                f"{name}: installed as {version}, a CPU-only build: the image installs it from "
                f"PyTorch's CPU index {PYTORCH_CPU_INDEX}, not PyPI's CUDA build (--pip "
                f"{name}=={parsed.public} chooses PyPI's)")
    if parsed.local:
        public = parsed.public
        return (f"{name}=={public}",
                f"{name}: installed as {version}; the local label '+{parsed.local}' names a "
                f"build PyPI does not have, pinned {name}=={public} instead")
    return f"{name}=={version}", None


def is_local_module(name: str, search_dir: Path | None) -> Path | None:
    """The file or package next to the notebook that provides ``name``, if any (a Cython
    ``name.pyx`` that pyximport or a build compiles counts too)."""
    if search_dir is None:
        return None
    for candidate in (search_dir / f"{name}.py", search_dir / name, search_dir / f"{name}.pyx"):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.py"))):
            return candidate
    return None


def image_environment(python_version: str) -> dict[str, str]:
    """Marker environment of the image (Linux, CPython ``python_version``, no extra): what
    requirement markers are read against, since the image, not the kernel's OS, installs them."""
    import platform

    return {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": platform.machine(), "python_version": python_version,
            "python_full_version": f"{python_version}.0", "extra": "",
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def required_on_image(texts, python_version: str) -> list[str]:
    """Canonical names of the requirements ``texts`` (``Requires-Dist`` lines) that apply on
    the image: markers read as there (image_environment), an extra's requirements left out."""
    from packaging.markers import UndefinedEnvironmentName

    environment = image_environment(python_version)
    names = []
    for text in texts or ():
        try:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
        except (InvalidRequirement, UndefinedEnvironmentName):
            continue
        names.append(canonicalize_name(requirement.name))
    return names


def installed_closure(names, python_version: str) -> dict[str, str]:
    """The installed distributions ``names`` need, transitively (``names`` included): canonical
    name → installed version, requirement markers read as on the image (Linux, CPython
    ``python_version``, no extras). What the kernel lacks is skipped."""
    found: dict[str, str] = {}
    pending = [canonicalize_name(n) for n in names]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist.version
        pending.extend(required_on_image(dist.requires, python_version))
    return found

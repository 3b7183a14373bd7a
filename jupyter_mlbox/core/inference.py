"""From code to pinned requirements: imports → distributions → pins.

The kernel's own environment is the source of truth (``importlib.metadata``): what the notebook
imports and the kernel has installed is pinned to the installed version. Imports the kernel lacks
fall back to pipreqs' import-name → PyPI-name mapping (namespace imports such as
``google.generativeai`` by their dotted path) and are left unpinned, with a warning — but only
once the package index confirms that the distribution exists and its wheel installs the module
(index.py: the only network access here). A guess the index refutes stops the plan with an
UnverifiedGuessError; one it could not be asked about is added, marked unverified.
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.resources
import re
import shlex
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import RequirementError, UnverifiedGuessError
from . import index as package_index
from .implied import extension_modules, implied_by
from .notebook import parse_cells

#: Never installed into an image: the tool itself lives only on the host.
ALWAYS_EXCLUDED = {"jupyter-mlbox"}

#: pip options that take a value (their value is not a requirement).
_PIP_OPTIONS_WITH_VALUE = {
    "-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
    "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--python-version",
    "--platform", "--implementation", "--abi", "--trusted-host", "--cert", "--proxy",
    "--progress-bar", "--src", "--upgrade-strategy", "--config-settings", "-C",
}


@dataclass(frozen=True)
class PinnedRequirement:
    """One line of requirements.txt and where it came from.

    ``origin`` is "installed" (pinned to the kernel's version), "traced" (no import statement
    shows it but the kernel that ran the notebook had it loaded; pinned), "implied" (needed by a pattern
    in the code rather than an import, see implied.py; pinned), "guess" (not installed here,
    unpinned), "pip-magic" (a ``%pip install`` line), "explicit" (``--pip``) or "file"
    (a requirements file).

    ``verified`` is for guesses only: True when the package index confirmed that the
    distribution installs the imported module, False when the index could not be reached (the
    guess is then only a name); None for every other origin (nothing to verify).
    """

    requirement: str
    origin: str
    imports: tuple[str, ...] = ()
    verified: bool | None = None

    @property
    def name(self) -> str:
        return canonicalize_name(Requirement(self.requirement).name)


@dataclass
class InferenceResult:
    """What a notebook needs: pinned requirements, local files, and what could not be decided."""

    requirements: list[PinnedRequirement] = field(default_factory=list)
    local_modules: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def requirements_txt(self) -> str:
        return "".join(f"{r.requirement}\n" for r in self.requirements)

    def names(self) -> set[str]:
        return {r.name for r in self.requirements}


def validate_requirement(text: str) -> Requirement:
    """Parse ``text`` as one PEP 508 requirement, or raise a RequirementError that says why."""
    text = text.strip()
    if not text or any(ch in text for ch in "\r\n\0\\`$"):
        raise RequirementError(f"{text!r} is not a valid requirement (PEP 508)")
    try:
        req = Requirement(text)
    except InvalidRequirement as err:
        raise RequirementError(f"{text!r} is not a valid requirement (PEP 508): {err}") from err
    if req.url:
        raise RequirementError(f"{text!r}: direct URL requirements are not supported; "
                               f"publish the package to an index or use --pip NAME==VERSION")
    return req


# ---------------------------------------------------------------------------------------------
# imports and %pip lines
# ---------------------------------------------------------------------------------------------

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names)


def _import_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        # ``from google.cloud import storage``: storage may be the submodule that decides which
        # distribution is meant.
        return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names
                                if alias.name != "*"}
    return set()


def imported_modules(tree: ast.AST) -> set[str]:
    """Absolute module names imported anywhere in ``tree`` (functions, try/except, if …)."""
    return set(classified_imports(tree))


def classified_imports(tree: ast.AST) -> dict[str, bool]:
    """Every absolute import in ``tree`` → whether it is optional.

    An import is optional when every occurrence sits in the body of a ``try`` whose handlers
    catch ImportError: the notebook copes without it.
    """
    optional: dict[str, bool] = {}

    def visit(node: ast.AST, guarded: bool) -> None:
        for name in _import_names(node):
            optional[name] = optional.get(name, True) and guarded
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            body_guarded = guarded or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, body_guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return optional


def pip_install_arguments(tree: ast.AST) -> list[str]:
    """Requirement strings from ``%pip install …`` and ``!pip install …`` lines."""
    commands = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)
                and isinstance(a.value, str)]
        if node.func.attr == "run_line_magic" and len(args) == 2 and args[0] == "pip":
            commands.append(args[1])
        elif node.func.attr in {"system", "getoutput"} and args:
            match = re.match(r"\s*(?:python3?\s+-m\s+)?pip3?\s+(.*)", args[0])
            if match:
                commands.append(match.group(1))
    requirements = []
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        if not words or words[0] != "install":
            continue
        skip_next = False
        for word in words[1:]:
            if skip_next:
                skip_next = False
            elif word in _PIP_OPTIONS_WITH_VALUE:
                skip_next = True
            elif not word.startswith("-"):
                requirements.append(word)
    return requirements


# ---------------------------------------------------------------------------------------------
# environment lookups
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


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


def _distribution_for(module: str, candidates: list[str]) -> str:
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


def _installed_version(dist_name: str) -> str | None:
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
    """The file or package next to the notebook that provides ``name``, if any."""
    if search_dir is None:
        return None
    for candidate in (search_dir / f"{name}.py", search_dir / name):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.py"))):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# the whole inference
# ---------------------------------------------------------------------------------------------

def read_requirements_file(path: Path) -> tuple[list[str], list[str]]:
    """Requirement lines of a requirements.txt, and warnings for what was skipped."""
    requirements, warnings = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            warnings.append(f"{path.name}:{number}: pip option {line.split()[0]} ignored "
                            f"(index settings come from the host's pip configuration)")
            continue
        requirements.append(line)
    return requirements, warnings


def infer_requirements(sources: Iterable[str], *, search_dir: Path | None = None,
                       module_dirs: Iterable[Path] = (), traced: Iterable[str] = (),
                       requirements_file: Path | None = None,
                       extra: Iterable[str] = (), exclude: Iterable[str] = ()
                       ) -> InferenceResult:
    """Pinned requirements for code cells ``sources``.

    Local modules are found in ``search_dir`` (the notebook's folder) and ``module_dirs``
    (folders the notebook adds to ``sys.path``). ``traced`` are modules a kernel that ran the
    notebook had loaded (trace.py): installed or local ones count like imports (origin
    "traced"), never as guesses. ``requirements_file`` (or a requirements.txt
    in ``search_dir``) replaces inference;
    ``extra`` (``--pip``) adds to it and ``exclude`` removes names from it.
    """
    result = InferenceResult()
    excluded = {canonicalize_name(n) for n in exclude} | ALWAYS_EXCLUDED
    extra = list(extra)  # read twice: guesses it settles, then added
    by_name: dict[str, PinnedRequirement] = {}

    def add(requirement: str, origin: str, imports: tuple[str, ...] = (),
            verified: bool | None = None) -> None:
        try:
            req = validate_requirement(requirement)
        except RequirementError as err:
            if origin in {"explicit", "file"}:
                raise
            result.warnings.append(f"skipped: {err}")
            return
        key = canonicalize_name(req.name)
        if key in excluded:
            return
        previous = by_name.get(key)
        if previous is not None and previous.origin == "installed" and origin == "implied":
            origin = "installed"  # imported anyway: the import is the reason it is there
        if previous is not None and previous.origin in {"explicit", "file", "pip-magic"} \
                and origin in {"installed", "traced", "implied", "guess"}:
            return  # what the user wrote wins over what was inferred
        by_name[key] = PinnedRequirement(str(req), origin,
                                         tuple(sorted(set(imports) | set(
                                             previous.imports if previous else ()))),
                                         verified if origin == "guess" else None)

    cells = parse_cells(list(sources))
    for cell in cells:
        if cell.error:
            result.warnings.append(f"{cell.error} (its imports were not read)")

    if requirements_file is None and search_dir is not None \
            and (search_dir / "requirements.txt").is_file():
        requirements_file = search_dir / "requirements.txt"

    if requirements_file is not None:
        if not Path(requirements_file).is_file():
            raise RequirementError(f"{requirements_file}: no such requirements file")
        lines, warnings = read_requirements_file(Path(requirements_file))
        result.warnings.extend(warnings)
        result.warnings.append(f"using {requirements_file} instead of inferring from imports")
        for line in lines:
            add(line, "file")
    else:
        _infer_from_cells(cells, [search_dir, *module_dirs], result, add, excluded=excluded,
                          named=extra, traced=traced)

    for requirement in extra:
        add(requirement, "explicit")
    result.requirements = sorted(by_name.values(), key=lambda r: r.name)
    return result


def _infer_from_cells(cells, search_dirs, result: InferenceResult, add, *,
                      excluded: Iterable[str] = (), named: Iterable[str] = (),
                      traced: Iterable[str] = ()) -> None:
    optional: dict[str, bool] = {}
    first_cell: dict[str, int] = {}  # module → the first code cell importing it
    required_in: dict[str, int] = {}  # … the first that imports it outside try/except
    named = list(named)
    for cell in cells:
        if cell.tree is None:
            continue
        for module, guarded in classified_imports(cell.tree).items():
            optional[module] = optional.get(module, True) and guarded
            first_cell.setdefault(module, cell.index)
            if not guarded:
                required_in.setdefault(module, cell.index)
        for module in extension_modules(cell.tree):  # %load_ext NAME imports NAME
            optional[module] = False
            required_in.setdefault(module, cell.index)
        for requirement in pip_install_arguments(cell.tree):
            add(requirement, "pip-magic")
            named.append(requirement)
    cell_of = {**first_cell, **required_in}
    guesser = _Guesser(result, add, set(excluded), named)
    imported_tops = {module.split(".")[0] for module in optional}
    for module in traced:
        optional.setdefault(module, False)
    traced_only = {module.split(".")[0] for module in optional} - imported_tops

    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    top_levels: dict[str, list[str]] = {}
    for module in sorted(optional):
        top_levels.setdefault(module.split(".")[0], []).append(module)

    installed = _packages_distributions()
    mapping = pipreqs_mapping()
    for top, dotted in sorted(top_levels.items()):
        if top in stdlib or top.startswith("_"):
            continue
        local = next((found for folder in search_dirs
                      if (found := is_local_module(top, folder)) is not None), None)
        if local is not None:
            if local not in result.local_modules:
                result.local_modules.append(local)
            continue
        if top in NAMESPACE_ROOTS:
            _infer_namespace(top, dotted, optional, cell_of, installed.get(top, []), guesser)
            continue
        if top in installed:
            deepest = max(dotted, key=lambda m: m.count("."))
            dist = _distribution_for(deepest, installed[top])
            version = _installed_version(dist)
            if version is None:
                add(dist, "guess", (top,))
                continue
            pin, warning = installable_pin(canonicalize_name(dist), version)
            if warning:
                result.warnings.append(warning)
            add(pin, "traced" if top in traced_only else "installed", (top,))
        elif top in traced_only:
            continue  # loaded by the kernel from somewhere no index serves: not a guess
        elif all(optional[m] for m in dotted):
            result.warnings.append(
                f"{top}: optional import (inside try/except ImportError) that this kernel does "
                f"not have either; not added (--pip {top} adds it)")
        else:
            dist = _provided_by(top) or mapping.get(top, top)
            guesser.guess(top, cell_of.get(top), [(dist, top)])
    guesser.finish()
    _add_implied(cells, set(optional), result, add)


# ---------------------------------------------------------------------------------------------
# guesses, verified on the package index
# ---------------------------------------------------------------------------------------------

#: Top-level names many distributions install into (namespace packages): never a distribution
#: on their own; the dotted path decides (``google.generativeai`` → google-generativeai).
NAMESPACE_ROOTS = frozenset({
    "google", "azure", "mpl_toolkits", "zope", "jaraco", "sphinxcontrib", "backports", "zc",
    "plone", "collective", "flufl", "ruamel",
})
#: Namespaces inside those (``google.cloud.storage`` → google-cloud-storage, never google-cloud).
NAMESPACE_PACKAGES = NAMESPACE_ROOTS | {"google.cloud", "google.ai", "azure.mgmt", "azure.storage",
                                        "azure.ai", "azure.cognitiveservices"}

#: Modules shipped inside a distribution of another name; the longest dotted prefix wins.
PROVIDED_BY = {
    "pylab": "matplotlib",
    "mpl_toolkits.mplot3d": "matplotlib",
    "mpl_toolkits.axes_grid1": "matplotlib",
    "mpl_toolkits.axisartist": "matplotlib",
    "mpl_toolkits.basemap": "basemap",
}


def _provided_by(module: str) -> str | None:
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        dist = PROVIDED_BY.get(".".join(parts[:depth]))
        if dist:
            return dist
    return None


def _namespace_depth(module: str) -> int:
    """``google.cloud.storage`` → 2: how many leading parts are a shared namespace."""
    parts = module.split(".")
    return max((d for d in range(1, len(parts) + 1)
                if ".".join(parts[:d]) in NAMESPACE_PACKAGES), default=0)


def _installed_depth(dist_name: str, module: str) -> int:
    """How many leading parts of ``module`` are a regular module of the installed
    ``dist_name`` (a namespace folder it also installs into does not count)."""
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        return 0
    paths = {str(f).replace("\\", "/") for f in files}
    return package_index.regular_depth(paths, module)


def _infer_namespace(root: str, dotted: list[str], optional: dict[str, bool],
                     cell_of: dict[str, int], installed: list[str], guesser: "_Guesser") -> None:
    """``google.cloud.storage``, ``google.generativeai`` …: each dotted import on its own.

    The kernel's distribution counts only when its files hold the part below the root
    (protobuf installs ``google/protobuf``, not ``google/generativeai``)."""
    leaves = [m for m in dotted if not any(o.startswith(m + ".") for o in dotted)]
    for module in leaves:
        shared = _namespace_depth(module)
        best, depth = None, shared
        for dist in sorted(installed):
            found = _installed_depth(dist, module)
            if found > depth:
                best, depth = dist, found
        version = _installed_version(best) if best else None
        if version is not None:
            pin, warning = installable_pin(canonicalize_name(best), version)
            if warning:
                guesser.result.warnings.append(warning)
            guesser.add(pin, "installed", (".".join(module.split(".")[:depth]),))
            continue
        if optional[module]:
            guesser.result.warnings.append(
                f"{module}: optional import (inside try/except ImportError) that this kernel "
                f"does not have either; not added (--pip NAME adds it)")
            continue
        parts = module.split(".")
        if len(parts) <= shared:
            guesser.fail(module, cell_of.get(module),
                         f"'{module}' is a namespace many distributions share; import the "
                         f"sub-package you use (e.g. {module}.something)", exclude_name=None)
            continue
        table = _provided_by(module)
        if table:
            prefix = next(".".join(parts[:d]) for d in range(len(parts), 0, -1)
                          if ".".join(parts[:d]) in PROVIDED_BY)
            candidates = [(table, prefix)]
        else:  # the dotted path joined with '-', then shorter prefixes
            candidates = [("-".join(parts[:d]), ".".join(parts[:d]))
                          for d in range(len(parts), shared, -1)]
        guesser.guess(module, cell_of.get(module), candidates, namespace=not table)


class _Guesser:
    """Checks guesses on the package index; collects what failed and raises it once."""

    def __init__(self, result: InferenceResult, add, excluded: set[str],
                 named: list[str]) -> None:
        self.result, self.add, self.excluded = result, add, excluded
        self.named: list[str] = []
        for text in named:
            try:
                self.named.append(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
        self.problems: list[tuple[str, int | None, str, str | None]] = []

    def guess(self, module: str, cell: int | None, candidates: list[tuple[str, str]], *,
              namespace: bool = False) -> None:
        """``candidates``: (distribution, the module it must install), best first."""
        keys = {canonicalize_name(d) for d, _ in candidates}
        if keys & self.excluded or canonicalize_name(module) in self.excluded \
                or canonicalize_name(module.split(".")[0]) in self.excluded:
            return  # --exclude: the user builds without it
        if keys & set(self.named):
            return  # --pip / %pip install names it: what the user wrote is installed
        checks = []
        for dist, provided in candidates:
            check = package_index.check_module(dist, provided)
            if check.verified:
                self.result.warnings.append(
                    f"{provided}: not installed in this kernel; guessed package '{dist}', "
                    f"verified ({check.detail}); unpinned: the newest release will be installed")
                self.add(dist, "guess", (provided,), True)
                return
            checks.append(check)
            if check.status == "unreachable":
                break
        if checks and checks[-1].status == "unreachable" and not namespace:
            dist = candidates[0][0]
            self.result.warnings.append(
                f"{module}: not installed in this kernel; guessing PyPI package '{dist}' "
                f"(unpinned: the newest release will be installed); not verified: the index "
                f"could not be reached")
            self.add(dist, "guess", (module,), False)
            return
        if self._named_provides([p for _, p in candidates]):
            return
        if checks and checks[-1].status == "unreachable":
            reason = (f"it belongs to the namespace '{module.split('.')[0]}' and the index "
                      f"could not be reached to find which distribution provides it")
        else:
            reason = "; ".join(c.detail for c in checks)
        self.fail(module, cell, reason, exclude_name=candidates[0][0])

    def _named_provides(self, modules: list[str]) -> bool:
        """Whether a distribution the user named (``--pip``, ``%pip install``) installs one of
        ``modules``."""
        for name in self.named:
            for module in modules:
                if package_index.check_module(name, module).status in {"verified",
                                                                       "unreachable"}:
                    return True
        return False

    def fail(self, module: str, cell: int | None, reason: str, *,
             exclude_name: str | None) -> None:
        self.problems.append((module, cell, reason, exclude_name))

    def finish(self) -> None:
        if not self.problems:
            return
        lines = []
        for module, cell, reason, exclude_name in self.problems:
            where = f"cell {cell + 1}" if cell is not None else "the notebook"
            top = module.split(".")[0]
            fixes = [f"--pip NAME (the distribution that provides {module})",
                     f"put {top}.py or {top}/ beside the notebook if it is your own module"]
            if exclude_name:
                fixes.append(f"--exclude {canonicalize_name(exclude_name)} to build without it")
            lines.append(f"import {module} ({where}): not in this kernel, and {reason}. Fix: "
                         + "; or ".join(fixes))
        head = ("cannot tell what to install for an import" if len(lines) == 1 else
                f"cannot tell what to install for {len(lines)} imports")
        raise UnverifiedGuessError(head + ":\n" + "\n".join(f"  - {line}" for line in lines),
                                   problems=tuple((m, None if c is None else c + 1, r)
                                                  for m, c, r, _ in self.problems))


def _add_implied(cells, imported: set[str], result: InferenceResult, add) -> None:
    """Pinned when the kernel has it, else a warning naming --pip (never an unverified guess)."""
    added: set[str] = set()
    for cell in cells:
        if cell.tree is None:
            continue
        for implied in implied_by(cell.tree, imported):
            key = canonicalize_name(implied.distribution)
            if key in added:
                continue
            added.add(key)
            version = _installed_version(implied.distribution)
            if version is None:
                result.warnings.append(
                    f"{implied.because} needs {implied.distribution}, which this kernel does "
                    f"not have: not added (--pip {implied.distribution} adds it)")
                continue
            pin, warning = installable_pin(key, version)
            if warning:
                result.warnings.append(warning)
            add(pin, "implied", (implied.because,))

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
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import RequirementError
from .distributions import (_packages_distributions, distribution_for, installable_pin,
                            installed_version, is_local_module, pipreqs_mapping)
from .extras import extras_needed, with_extras
from .guesses import NAMESPACE_ROOTS, Guesser, infer_namespace, provided_by
from .implied import extension_modules, implied_by, magics
from .local_wheels import direct_pin
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
    in the code rather than an import, see implied.py; pinned), "extra" (brought by the extra
    of an imported distribution that a submodule import needs, see extras.py: ``dask[dataframe]``
    for ``import dask.dataframe``; pinned), "guess" (not installed here,
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
    #: For "local" (a wheel built on the host from the kernel's local install), "vcs" (pinned to
    #: the kernel's commit) and "url": where it came from (local_wheels.direct_pin).
    where: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(Requirement(self.requirement).name)


@dataclass
class InferenceResult:
    """What a notebook needs: pinned requirements, local files, and what could not be decided."""

    requirements: list[PinnedRequirement] = field(default_factory=list)
    local_modules: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Wheels built from the kernel's local packages, ``<key>/<file>`` → bytes (ImageSpec's).
    local_wheels: dict[str, bytes] = field(default_factory=dict)

    def requirements_txt(self) -> str:
        return "".join(f"{r.requirement}\n" for r in self.requirements)

    def names(self) -> set[str]:
        return {r.name for r in self.requirements}


#: Origins of requirements made from the kernel's direct-URL installs (local_wheels.direct_pin).
DIRECT_ORIGINS = ("local", "vcs", "url")


def _image_can_fetch(url: str) -> bool:
    """A direct URL the builder can install from: a shipped wheel, a VCS or a remote archive
    (never a host path, which does not exist in the image)."""
    from .local_wheels import IMAGE_URL

    return url.startswith((IMAGE_URL, "git+https://", "git+ssh://", "git+http://",
                           "hg+https://", "https://", "http://"))


def validate_requirement(text: str, *, direct_url: bool = False) -> Requirement:
    """Parse ``text`` as one PEP 508 requirement, or raise a RequirementError that says why.

    ``direct_url`` admits the URL requirements the plan itself makes (DIRECT_ORIGINS); what a
    user writes is refused them."""
    text = text.strip()
    if not text or any(ch in text for ch in "\r\n\0\\`$"):
        raise RequirementError(f"{text!r} is not a valid requirement (PEP 508)")
    try:
        req = Requirement(text)
    except InvalidRequirement as err:
        raise RequirementError(f"{text!r} is not a valid requirement (PEP 508): {err}") from err
    if req.url and not (direct_url and _image_can_fetch(req.url)):
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
# the whole inference
# ---------------------------------------------------------------------------------------------

def read_requirements_file(path: Path) -> tuple[list[str], list[str]]:
    """Requirement lines of a requirements.txt, and warnings for what was skipped."""
    requirements, warnings = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RequirementError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at "
                               f"offset {err.start}); save it as UTF-8, e.g. iconv -f latin1 "
                               f"-t utf-8 {path.name} -o {path.name}.utf8 and rename it") from None
    except OSError as err:
        raise RequirementError(f"{path}: cannot be read ({err.strerror})") from None
    for number, raw in enumerate(text.splitlines(), 1):
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
                       extra: Iterable[str] = (), exclude: Iterable[str] = (),
                       declared: tuple[str, Iterable[str]] | None = None
                       ) -> InferenceResult:
    """Pinned requirements for code cells ``sources``.

    Local modules are found in ``search_dir`` (the notebook's folder) and ``module_dirs``
    (folders the notebook adds to ``sys.path``). ``traced`` are modules a kernel that ran the
    notebook had loaded (trace.py): installed or local ones count like imports (origin
    "traced"), never as guesses. ``requirements_file`` (or a requirements.txt
    in ``search_dir``) replaces inference;
    ``extra`` (``--pip``) adds to it and ``exclude`` removes names from it.
    ``declared`` — ``(file label, requirement lines)`` of the project's declared environment
    (declared.py) — replaces inference the same way when no requirements file is given.
    """
    result = InferenceResult()
    excluded = {canonicalize_name(n) for n in exclude} | ALWAYS_EXCLUDED
    extra = list(extra)  # read twice: guesses it settles, then added
    by_name: dict[str, PinnedRequirement] = {}

    def add(requirement: str, origin: str, imports: tuple[str, ...] = (),
            verified: bool | None = None, where: str = "") -> None:
        try:
            req = validate_requirement(requirement, direct_url=origin in DIRECT_ORIGINS)
        except RequirementError as err:
            if origin in {"explicit", "file"}:
                raise
            result.warnings.append(f"skipped: {err}")
            return
        key = canonicalize_name(req.name)
        if key in excluded:
            return
        previous = by_name.get(key)
        if previous is not None and previous.origin == "installed" \
                and origin in {"implied", "extra"}:
            origin = "installed"  # imported anyway: the import is the reason it is there
        if previous is not None and previous.origin == "extra" \
                and origin in {"implied", "traced"}:
            origin = "extra"  # the extra names the import that needs it
        if previous is not None and previous.origin in {"explicit", "file", "pip-magic"} \
                and origin in {"installed", "traced", "implied", "extra", "guess"}:
            return  # what the user wrote wins over what was inferred
        if previous is not None and previous.origin in DIRECT_ORIGINS \
                and origin in {"installed", "traced", "implied", "extra", "guess"}:
            return  # the kernel's local build, never the same name from an index
        by_name[key] = PinnedRequirement(str(req), origin,
                                         tuple(sorted(set(imports) | set(
                                             previous.imports if previous else ()))),
                                         verified if origin == "guess" else None, where)

    cells = parse_cells(list(sources))
    for cell in cells:
        if cell.error:
            result.warnings.append(cell.error if cell.tree is not None
                                   else f"{cell.error} (its imports were not read)")

    if requirements_file is None and search_dir is not None \
            and (search_dir / "requirements.txt").is_file():
        requirements_file = search_dir / "requirements.txt"

    if requirements_file is None and declared is not None:
        label, lines = declared
        result.warnings.append(f"using {label} instead of inferring from imports")
        for line in lines:
            add(line, "file", where=label)
    elif requirements_file is not None:
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
    written = written_modules(cells)
    guesser = Guesser(result, add, set(excluded), named)
    imported_tops = {module.split(".")[0] for module in optional}
    written_imports = set(optional)  # extras follow these only: a traced pandas.io.parquet is
    # pandas importing itself, not the notebook asking for pandas[parquet]
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
        if top in written:
            continue  # the notebook writes this module itself (%%writefile): never a guess
        if top in NAMESPACE_ROOTS:
            infer_namespace(top, dotted, optional, cell_of, installed.get(top, []), guesser)
            continue
        if top in installed:
            deepest = max(dotted, key=lambda m: m.count("."))
            dist = distribution_for(deepest, installed[top])
            version = installed_version(dist)
            if version is None:
                add(dist, "guess", (top,))
                continue
            direct = None if canonicalize_name(dist) in excluded else direct_pin(dist)
            if direct is not None:  # local path, VCS, URL: never asked of an index by name
                if direct.wheel is not None:
                    result.local_wheels[direct.wheel.relative] = direct.wheel.data
                add(direct.requirement, direct.origin, (top,), where=direct.where)
                continue
            pin, warning = installable_pin(canonicalize_name(dist), version)
            if warning:
                result.warnings.append(warning)
            needs, notes = extras_needed(  # import dask.dataframe → dask[dataframe]
                dist, [module for module in dotted if module in written_imports])
            result.warnings.extend(notes)
            add(with_extras(pin, needs), "traced" if top in traced_only else "installed", (top,))
            for need in needs:
                for member, member_version in sorted(need.members.items()):
                    member_pin, warning = installable_pin(member, member_version)
                    if warning:
                        result.warnings.append(warning)
                    add(member_pin, "extra", (need.module,))
        elif top in traced_only:
            continue  # loaded by the kernel from somewhere no index serves: not a guess
        elif all(optional[m] for m in dotted):
            result.warnings.append(
                f"{top}: optional import (inside try/except ImportError) that this kernel does "
                f"not have either; not added (--pip {top} adds it)")
        else:
            dist = provided_by(top) or mapping.get(top, top)
            guesser.guess(top, cell_of.get(top), [(dist, top)])
    guesser.finish()
    _add_implied(cells, set(optional), result, add)


def written_modules(cells) -> set[str]:
    """Modules a ``%%writefile NAME.py`` / ``%%file NAME.py`` cell writes (their folder's name
    for ``pkg/mod.py``): the notebook makes them, so they are local."""
    found = set()
    for cell in cells:
        for kind, magic, arguments in magics(cell.tree) if cell.tree is not None else ():
            words = [w for w in arguments.split() if not w.startswith("-")]
            if kind == "cell" and magic in {"writefile", "file"} and words \
                    and words[-1].endswith((".py", ".pyx")):
                found.add(words[-1].replace("\\", "/").split("/")[0].rsplit(".", 1)[0])
    return found


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
            version = installed_version(implied.distribution)
            if version is None:
                result.warnings.append(
                    f"{implied.because} needs {implied.distribution}, which this kernel does "
                    f"not have: not added (--pip {implied.distribution} adds it)")
                continue
            pin, warning = installable_pin(key, version)
            if warning:
                result.warnings.append(warning)
            add(pin, "implied", (implied.because,))

"""Guesses, verified on the package index: an import the kernel lacks becomes a requirement
only when the index has the distribution and its wheel installs the module (index.py).
Namespace roots are never guessed alone; dotted paths decide."""
from __future__ import annotations

import importlib.metadata as metadata

from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import UnverifiedGuessError
from . import index as package_index
from .distributions import installable_pin, installed_version

if TYPE_CHECKING:
    from .inference import InferenceResult

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


def provided_by(module: str) -> str | None:
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


def infer_namespace(root: str, dotted: list[str], optional: dict[str, bool],
                     cell_of: dict[str, int], installed: list[str], guesser: "Guesser") -> None:
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
        version = installed_version(best) if best else None
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
        table = provided_by(module)
        if table:
            prefix = next(".".join(parts[:d]) for d in range(len(parts), 0, -1)
                          if ".".join(parts[:d]) in PROVIDED_BY)
            candidates = [(table, prefix)]
        else:  # the dotted path joined with '-', then shorter prefixes
            candidates = [("-".join(parts[:d]), ".".join(parts[:d]))
                          for d in range(len(parts), shared, -1)]
        guesser.guess(module, cell_of.get(module), candidates, namespace=not table)


class Guesser:
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

"""Extras a submodule import needs, read from the distribution's own metadata (no table).

``import dask.dataframe`` works only with ``dask[dataframe]`` (pandas, pyarrow): plain ``dask``
installs neither, so an image built from the import alone fails where the kernel did not. The
distribution says which packages each extra brings (``Provides-Extra``, and ``Requires-Dist``
with an ``extra == "…"`` marker); what it cannot say is which extra a module needs. The rule,
kept narrow so that it can be explained in one line:

- an extra is wanted when its name is a component of the imported module below the top-level
  package (``dask.dataframe`` → ``dataframe``, ``ray.tune`` → ``tune``,
  ``fsspec.implementations.http`` → ``http``) and the distribution really ships that
  submodule (its RECORD lists ``dask/dataframe/``), so ``from pkg import some_function`` named
  like an extra does not count;
- its requirements (markers read as on the image; extras they name followed, ``dask[array]``
  inside ``dask[dataframe]``) are all installed in the kernel: the kernel ran the notebook with
  them, and they are pinned to its versions like any import. An extra the kernel lacks a part
  of is not added (the kernel could not use it either); a note names ``--pip``.
"""
from __future__ import annotations

import importlib.metadata as metadata
import sys
from dataclasses import dataclass
from typing import Iterable, Iterator

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion

from .distributions import image_environment, installed_version


@dataclass(frozen=True)
class ExtraNeed:
    """``dask[dataframe]`` because of ``import dask.dataframe``, and what it brings."""

    distribution: str  # canonical name
    extra: str  # as the distribution spells it in Provides-Extra
    module: str  # the import that names it
    #: The extra's requirements (through nested extras), canonical name → the kernel's version.
    members: dict[str, str]
    #: Installed versions outside the extra's own specifiers ("pandas 1.5.3 (wants >=2.0)"):
    #: the kernel's versions are still pinned, but not under the ``[extra]`` that forbids them.
    conflicts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.distribution}[{self.extra}]"


def extras_needed(distribution: str, modules: Iterable[str],
                  python_version: str | None = None) -> tuple[list[ExtraNeed], list[str]]:
    """The extras of ``distribution`` that the imports ``modules`` need, and notes on those
    named but not installed. ``python_version`` is the image's (default: the kernel's)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return [], []
    provided = {canonicalize_name(e): e for e in dist.metadata.get_all("Provides-Extra") or []}
    if not provided:
        return [], []
    environment = image_environment(python_version or
                                    f"{sys.version_info.major}.{sys.version_info.minor}")
    named: dict[str, str] = {}  # extra → the first import that names it
    for module in sorted(modules):
        parts = module.split(".")
        for depth in range(2, len(parts) + 1):
            extra = provided.get(canonicalize_name(parts[depth - 1]))
            if extra is not None and extra not in named and _ships(dist, parts[:depth]):
                named[extra] = module
    needs, notes = [], []
    root = canonicalize_name(distribution)
    for extra, module in named.items():
        members, missing, conflicts = _members(root, extra, environment)
        if missing:
            notes.append(f"{module}: {root}[{extra}] needs {', '.join(missing)}, which this "
                         f"kernel does not have: not added (--pip '{root}[{extra}]' adds it)")
        elif members:  # an extra with no requirements (dask[delayed]) brings nothing
            if conflicts:
                notes.append(f"{module}: the kernel's {'; '.join(conflicts)}: pinned as "
                             f"installed, without the [{extra}] extra that would refuse them")
            needs.append(ExtraNeed(root, extra, module, members, tuple(conflicts)))
    return needs, notes


def with_extras(pin: str, needs: Iterable[ExtraNeed]) -> str:
    """``dask==2024.8.0`` → ``dask[dataframe]==2024.8.0``: the extras whose requirements the
    kernel's versions satisfy (the others' packages are pinned on their own lines)."""
    extras = {need.extra for need in needs if not need.conflicts}
    if not extras:
        return pin
    requirement = Requirement(pin)
    requirement.extras |= extras
    return str(requirement)


def _members(root: str, extra: str, environment: dict[str, str]
             ) -> tuple[dict[str, str], list[str], list[str]]:
    """What ``root[extra]`` installs: installed members → version, missing requirements, and
    installed versions its specifiers refuse. Extras of members are followed."""
    members: dict[str, str] = {}
    missing: list[str] = []
    conflicts: list[str] = []
    pending, seen = [(root, extra)], set()
    while pending:
        name, wanted = pending.pop()
        if (name, canonicalize_name(wanted)) in seen:
            continue
        seen.add((name, canonicalize_name(wanted)))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # already reported missing by whoever required it
        for requirement in _extra_requirements(dist, wanted, environment):
            member = canonicalize_name(requirement.name)
            pending += [(member, e) for e in sorted(requirement.extras)]
            if member in {name, root}:
                continue  # ``dask[array]`` inside ``dask[dataframe]``: only its extra counts
            version = installed_version(member)
            if version is None:
                missing.append(f"{requirement.name}{requirement.specifier}")
                continue
            members[member] = version
            if not _satisfies(requirement, version):
                conflicts.append(f"{member} {version} ({name}[{wanted}] wants "
                                 f"{requirement.specifier})")
    return members, missing, conflicts


def _extra_requirements(dist: metadata.Distribution, extra: str,
                        environment: dict[str, str]) -> Iterator[Requirement]:
    """Requirements that apply with ``extra`` on the image and not without it."""
    for text in dist.requires or []:
        try:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and marker.evaluate({**environment, "extra": extra}) \
                    and not marker.evaluate(environment):
                yield requirement
        except (InvalidRequirement, UndefinedEnvironmentName):
            continue


def _satisfies(requirement: Requirement, version: str) -> bool:
    try:
        return requirement.specifier.contains(version, prereleases=True)
    except InvalidVersion:
        return False


def _ships(dist: metadata.Distribution, parts: list[str]) -> bool:
    """Whether the distribution's files hold module ``parts`` (a package, a .py, an extension
    module). No RECORD (rare): the name alone decides."""
    files = dist.files
    if files is None:
        return True
    prefix = "/".join(parts)
    return any(path.startswith(prefix + "/") or path == prefix + ".py"
               or (path.startswith(prefix + ".") and path.endswith((".so", ".pyd")))
               for path in (str(f).replace("\\", "/") for f in files))

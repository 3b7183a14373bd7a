"""What a plan could and could not reproduce, said before the build (issue 13 item 7).

A ``ModuleNotFoundError`` ten minutes into a run is the worst way to learn that an import was
a guess. :func:`plan_report` reads an :class:`~jupyter_mlbox.core.build.ImagePlan` once —
requirements by where each came from, the lock, the files shipped, the system packages and
anything unverified — into a :class:`PlanReport`; front ends only render it (its text on a
terminal or in a widget, its dict in the panel). Pure: no Docker, no network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from .implied import extension_modules
from .inference import classified_imports
from .lock import Lock, lock_path
from .notebook import parse_cells

if TYPE_CHECKING:
    from .build import ImagePlan
    from .inference import PinnedRequirement

#: Where a requirement came from, in the order the report lists them, and how each reads.
SOURCES = {
    "import": "imports",
    "local-module": "local modules' imports",
    "magic": "magics (%load_ext, %pip)",
    "implied": "implied",
    "trace": "traced",
    "explicit": "--pip",
    "file": "requirements file",
    "local": "local builds (wheels of the kernel's local installs)",
    "vcs": "VCS / URL (pinned to the kernel's commit)",
}
#: How many names one line lists before "+N more".
SHOWN = 8
#: How many shipped files the text names, and how many its dict lists.
FILES_SHOWN, FILES_LISTED = 4, 50


def import_sources(sources: Iterable[str]) -> dict[str, str]:
    """Top-level module → "import" (an import statement of these cells) or "magic" (only a
    ``%load_ext`` names it): what a requirement of the notebook itself was read from. A
    module the notebook's requirements need that is not here came from a local module."""
    found: dict[str, str] = {}
    for cell in parse_cells(list(sources)):
        if cell.tree is None:
            continue
        for module in extension_modules(cell.tree):
            found.setdefault(module.split(".")[0], "magic")
        for module in classified_imports(cell.tree):
            found[module.split(".")[0]] = "import"
    return found


def requirement_source(req: "PinnedRequirement",
                       imported: Mapping[str, str] | None = None) -> str:
    """One of :data:`SOURCES` for ``req``; ``imported`` is :func:`import_sources` of the
    notebook's own cells (None: every import counts as the notebook's)."""
    origin = req.origin
    if origin in {"installed", "guess"}:
        if imported is None:
            return "import"
        kinds = {imported.get(name.split(".")[0]) for name in req.imports}
        if "import" in kinds:
            return "import"
        return "magic" if "magic" in kinds else "local-module"
    return {"traced": "trace", "pip-magic": "magic", "implied": "implied",
            "explicit": "explicit", "file": "file", "local": "local", "vcs": "vcs",
            "url": "vcs"}.get(origin, "import")


def _listed(names: list[str], shown: int = SHOWN) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f", +{more} more" if more > 0 else "")


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _why(package: dict) -> str:
    """Why a system package is there: the pattern that implied it, or where it was named."""
    return package["because"] or {"explicit": "--apt"}.get(package["origin"], package["origin"])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class ReportLine:
    """One line of the report: ``key`` names its kind (requirements source, lock, files,
    system, unverified) for a front end to style it; ``label: text`` is how it reads."""

    key: str
    label: str
    text: str

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "text": self.text}


@dataclass
class PlanReport:
    """The summary shown before a build; :meth:`text` for terminals and widgets,
    :meth:`as_dict` for the panel and the API."""

    notebook: str
    requirements: list[dict] = field(default_factory=list)
    runtime: int = 0
    lock: dict | None = None
    files: dict = field(default_factory=lambda: {"count": 0, "bytes": 0, "names": []})
    system_packages: list[dict] = field(default_factory=list)
    unverified: list[dict] = field(default_factory=list)
    #: Where the requirements and the Python version come from (declared.py), when a file
    #: declares them: {"requirements": label | None, "python": "3.10" | None, "python_file",
    #: "base_image"}.
    environment: dict | None = None

    def by_source(self) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for req in self.requirements:
            grouped.setdefault(req["source"], []).append(req)
        return {source: grouped[source] for source in SOURCES if source in grouped}

    def headline(self) -> str:
        """One line: ``3 requirements · no lock · 2 files (1.2 kB) · 1 unverified``."""
        parts = [_plural(len(self.requirements), "requirement"),
                 f"lock {self.lock['file']}" if self.lock else "no lock"]
        if self.files["count"]:
            parts.append(f"{_plural(self.files['count'], 'file')} "
                         f"({_size(self.files['bytes'])})")
        if self.system_packages:
            parts.append(_plural(len(self.system_packages), "system package"))
        if self.unverified:
            parts.append(f"{len(self.unverified)} unverified")
        return " · ".join(parts)

    def lines(self) -> list[ReportLine]:
        """Everything but the headline, one line per kind; empty kinds are left out (but for
        the requirements and the lock, whose absence is worth saying)."""
        lines = []
        for source, reqs in self.by_source().items():
            names = []
            for req in reqs:
                name = req["name"]
                if req["source"] == "implied" and req["imports"]:
                    name += f" ({', '.join(req['imports'])})"
                elif req["source"] in {"local", "vcs"} and req.get("where"):
                    name += f" ({req['where'].removeprefix('local build of ')})"
                elif req["origin"] == "guess":
                    name += " (guess)" if req["verified"] else " (unverified guess)"
                names.append(name)
            lines.append(ReportLine(f"requirements-{source}", SOURCES[source], _listed(names)))
        if self.environment and self.environment.get("requirements"):
            lines.append(ReportLine("environment", "environment", f"declared by "
                                    f"{self.environment['requirements']}, not inferred "
                                    f"(precedence: --pip, -r, --base > .mlbox.lock > "
                                    f"declared files > inference)"))
        if self.environment and self.environment.get("python"):
            lines.append(ReportLine("python", "python", f"{self.environment['python']} from "
                                    f"{self.environment['python_file']} → "
                                    f"{self.environment['base_image']}"))
        if not self.requirements:
            lines.append(ReportLine("requirements-none", "requirements",
                                    "none beyond the standard library"))
        if self.lock:
            lines.append(ReportLine("lock", "lock", f"{self.lock['file']} pins "
                                    f"{self.lock['distributions']} distributions, with hashes"))
        else:
            lines.append(ReportLine("lock", "lock", "none, so only the direct requirements are "
                                    "pinned (`jupyter mlbox lock` pins the closure)"))
        if self.files["count"]:
            shown = self.files["names"][:FILES_SHOWN]
            more = ", …" if self.files["count"] > len(shown) else ""
            lines.append(ReportLine("files", "files", f"{self.files['count']} "
                                    f"({_size(self.files['bytes'])}): {', '.join(shown)}{more}"))
        if self.system_packages:
            lines.append(ReportLine("system", "system packages", _listed(
                [f"{p['name']} ({_why(p)})" for p in self.system_packages])))
        for item in self.unverified:
            imports = f" for `import {', '.join(item['imports'])}`" if item["imports"] else ""
            lines.append(ReportLine("unverified", "unverified", f"{item['name']} (a guess{imports} "
                                    f"the package index could not confirm; --pip NAME or "
                                    f"--exclude NAME settles it)"))
        return lines

    def text(self) -> str:
        """The headline, then ``  label: text`` lines: what a terminal or widget shows."""
        return "\n".join([f"before the build: {self.headline()}"]
                         + [f"  {line.label}: {line.text}" for line in self.lines()])

    def as_dict(self) -> dict:
        return {"notebook": self.notebook, "headline": self.headline(),
                "lines": [line.as_dict() for line in self.lines()],
                "requirements": list(self.requirements), "runtime": self.runtime,
                "lock": self.lock, "files": dict(self.files),
                "system_packages": list(self.system_packages),
                "unverified": list(self.unverified), "environment": self.environment}


def plan_report(plan: "ImagePlan") -> PlanReport:
    """The report of ``plan`` (see the module docstring)."""
    requirements = [{"requirement": r.requirement, "name": r.name, "origin": r.origin,
                     "source": requirement_source(r, plan.imported), "imports": list(r.imports),
                     "verified": r.verified, "where": r.where}
                    for r in plan.inference.requirements]
    lock = None
    if plan.spec.lock_text is not None:
        name = getattr(plan, "lock_file", None) or lock_path(Path(plan.spec.notebook_name)).name
        lock = {"file": name, "distributions": len(Lock(Path(name), plan.spec.lock_text).names())}
    # largest first: a data folder shipped by accident shows at once
    names = sorted(plan.local_files, key=lambda name: (-len(plan.local_files[name]), name))
    files = {"count": len(names), "bytes": sum(len(data) for data in plan.local_files.values()),
             "names": names[:FILES_LISTED]}
    system = [{"name": p.name, "origin": p.origin, "because": p.because}
              for p in plan.system_packages]
    unverified = [{"requirement": r["requirement"], "name": r["name"], "imports": r["imports"]}
                  for r in requirements if r["origin"] == "guess" and r["verified"] is False]
    declared = getattr(plan, "declared", None)
    environment = None
    if declared is not None and (declared.file is not None or declared.python):
        label = next((r["where"] for r in requirements if r["origin"] == "file" and r["where"]),
                     declared.label() if declared.file else None)
        environment = {"requirements": label, "python": declared.python,
                       "python_file": declared.python_file.name if declared.python_file
                       else None, "base_image": plan.spec.base_image}
    return PlanReport(plan.spec.notebook_name, requirements,
                      len(plan.spec.requirements) - len(requirements), lock, files, system,
                      unverified, environment)

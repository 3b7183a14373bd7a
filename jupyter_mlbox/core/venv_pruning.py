"""Leave the installed packages' own test suites out of the image: a third of numpy, pandas,
scikit-learn and SciPy on disk is their ``tests/`` folders, which no notebook imports.

Runs in the builder stage as ``python -I venv_pruning.py /opt/venv`` (standard library only,
like the runner), before the venv is copied into the final stage; ``--keep-tests`` skips it.
A ``tests`` folder stays when a module outside the tests imports from that folder (the rule
the image test checks by importing every module of every distribution).
``testing`` folders always stay: ``numpy.testing`` and ``pandas.testing`` are public APIs.

``--unused VENV NAME...`` prints which of the runtime stack's tools (RUNTIME_ONLY) nothing
installed needs; the build uninstalls those with uv (``--keep-tests`` does not keep them; a
notebook that needs one names it: an import, ``--pip NAME``, or ``%pip`` for pip).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import metadata

#: What the kernel's runtime stack and the venv's seed install that an executed notebook never
#: loads, and the stack's own distributions that require it: jedi (and its parso) complete
#: code in IPython, debugpy is ipykernel's debugger (both import them only when present), pip
#: installs, setuptools builds (a Python 3.12 venv has none: a package that needs its
#: pkg_resources at run time says so). 58 MB of a 565 MB image (BENCHMARKS.md).
RUNTIME_ONLY = {"debugpy": {"ipykernel"}, "jedi": {"ipython"}, "parso": set(), "pip": set(),
                "setuptools": set()}
#: A cell that may run pip (%pip, !pip, subprocess … "pip") needs it in the container; an
#: option such as ``%mlbox … --pip NAME`` is not pip.
_MENTIONS_PIP = re.compile(r"(?<![-\w])pip3?\b")
#: A line that surely runs it: ``%pip``, ``!pip``, ``!python -m pip``.
_PIP_LINE = re.compile(r"^[ \t]*(?:%pip\b|!\s*(?:pip3?|python3?\s+-m\s+pip)\b)", re.MULTILINE)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

#: Import statements: ``from (dots)(module) import (names)`` and ``import a.b, c``.
_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)",
                   re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w.]+(?:[ \t]*,[ \t]*[\w.]+)*)", re.MULTILINE)


def site_packages(venv: str) -> list[str]:
    lib = os.path.join(venv, "lib")
    return [os.path.join(lib, name, "site-packages") for name in sorted(os.listdir(lib))
            if os.path.isdir(os.path.join(lib, name, "site-packages"))]


def _size(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def _tests_folder(base: str, parts: list[str]) -> str | None:
    """The ``tests`` folder a dotted path below ``base`` reaches into, if any."""
    if "tests" not in parts:
        return None
    return os.path.normpath(os.path.join(base, *parts[:parts.index("tests") + 1]))


def _imported_tests(package: str, site: str) -> set[str]:
    """The ``tests`` folders that modules of ``package`` outside the tests import from:
    ``from .tests import x``, ``from pkg.sub.tests.helpers import y``, ``import pkg.tests``,
    ``from . import tests`` (SciPy's ``special/_precompute`` imports ``special/tests`` alone)."""
    kept: set[str] = set()
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "tests"]
        for name in files:
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8",
                          errors="replace") as handle:
                    text = handle.read()
            except OSError:
                continue
            if "tests" not in text:
                continue
            for dots, module, names in _FROM.findall(text):
                parts = module.split(".") if module else []
                base = site
                if dots:
                    base = folder
                    for _ in range(len(dots) - 1):
                        base = os.path.dirname(base)
                found = _tests_folder(base, parts)
                if found is None and re.search(r"\btests\b", names):
                    found = os.path.normpath(os.path.join(base, *parts, "tests"))
                if found:
                    kept.add(found)
            for modules in _IMPORT.findall(text):
                for module in modules.split(","):
                    found = _tests_folder(site, module.strip().split("."))
                    if found:
                        kept.add(found)
    return kept


def prune(venv: str) -> tuple[list[str], int]:
    """Remove the ``tests`` folders of every top-level package in ``venv`` whose own code
    does not import them; ``(removed paths, bytes freed)``."""
    removed, freed = [], 0
    for site in site_packages(venv):
        for name in sorted(os.listdir(site)):
            package = os.path.join(site, name)
            if not os.path.isdir(package) or name.endswith((".dist-info", ".egg-info")) \
                    or name == "__pycache__":
                continue
            imported = _imported_tests(package, site)
            for folder, dirs, _ in os.walk(package):
                if "tests" in dirs:
                    path = os.path.join(folder, "tests")
                    suite = os.path.isfile(os.path.join(path, "__init__.py")) \
                        or any(n.endswith(".py") for n in os.listdir(path))
                    if suite and os.path.normpath(path) not in imported:
                        freed += _size(path)
                        shutil.rmtree(path, ignore_errors=True)
                        removed.append(os.path.relpath(path, site))
                dirs[:] = [d for d in dirs if d != "tests"]
    return removed, freed


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runs_pip(sources, *, surely: bool = False) -> bool:
    """Whether a cell may run pip: any mention of it (a false yes costs 15 MB, a false no a
    failing cell); ``surely``: a ``%pip``/``!pip`` line (a cell is refused for it)."""
    pattern = _PIP_LINE if surely else _MENTIONS_PIP
    return any(pattern.search(source) for source in sources)


def leave_out_candidates(sources, requirement_names) -> tuple[str, ...]:
    """On the host: the RUNTIME_ONLY names the notebook does not ask for itself (a requirement
    of that name, or for pip a cell that runs it)."""
    asked = {_canonical(name) for name in requirement_names}
    needs_pip = runs_pip(sources)
    return tuple(name for name in sorted(RUNTIME_ONLY)
                 if name not in asked and not (name == "pip" and needs_pip))


def unused(venv: str, candidates) -> list[str]:
    """In the venv: the ``candidates`` (RUNTIME_ONLY names) no installed distribution requires,
    but for the runtime stack's own and one another. A requirement only of an extra counts not."""
    required: dict[str, set[str]] = {}
    installed = set()
    for dist in metadata.distributions(path=site_packages(venv)):
        owner = _canonical(dist.metadata["Name"] or "")
        installed.add(owner)
        for requirement in dist.requires or ():
            name, _, marker = requirement.partition(";")
            found = _NAME.match(name)
            if found and "extra" not in marker:
                required.setdefault(_canonical(found.group(1)), set()).add(owner)
    left = {c for c in candidates if c in RUNTIME_ONLY and c in installed}
    while True:  # a kept tool keeps what it requires (jedi keeps parso)
        kept = {c for c in left
                if required.get(c, set()) - left - RUNTIME_ONLY[c]}
        if not kept:
            return sorted(left)
        left -= kept


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "--unused":
        print(" ".join(unused(args[1], args[2:])))
        return 0
    if len(args) != 1:
        print("usage: venv_pruning.py VENV | venv_pruning.py --unused VENV NAME...",
              file=sys.stderr)
        return 2
    removed, freed = prune(args[0])
    print(f"mlbox: left out {len(removed)} test folders of installed packages "
          f"({freed / 1e6:.1f} MB; --keep-tests keeps them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

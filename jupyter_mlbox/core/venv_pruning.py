"""Leave the installed packages' own test suites out of the image: a third of numpy, pandas,
scikit-learn and SciPy on disk is their ``tests/`` folders, which no notebook imports.

Runs in the builder stage as ``python -I venv_pruning.py /opt/venv`` (standard library only,
like the runner), before the venv is copied into the final stage; ``--keep-tests`` skips it.
A ``tests`` folder stays when a module of its package outside the tests imports from it (the
rule the image test checks by importing every top-level module of every distribution).
``testing`` folders always stay: ``numpy.testing`` and ``pandas.testing`` are public APIs.
"""
from __future__ import annotations

import os
import re
import shutil
import sys

#: An import that reaches into a ``tests`` package: ``from .tests import x``,
#: ``from pkg.sub.tests.helpers import y``, ``import pkg.tests``, ``from . import tests``.
_IMPORTS_TESTS = re.compile(
    r"^\s*(?:from\s+[\w.]*\btests\b[\w.]*\s+import|import\s+[\w.]+\.tests\b"
    r"|from\s+[\w.]+\s+import\s+(?:\(?\s*)?tests\b)", re.MULTILINE)


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


def _imports_tests(package: str) -> bool:
    """Whether a module of ``package`` outside its ``tests`` folders imports from one."""
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "tests"]
        for name in files:
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8",
                          errors="replace") as handle:
                    if _IMPORTS_TESTS.search(handle.read()):
                        return True
            except OSError:
                continue
    return False


def prune(venv: str) -> tuple[list[str], int]:
    """Remove the ``tests`` folders of every top-level package in ``venv`` whose own code
    does not import them; ``(removed paths, bytes freed)``."""
    removed, freed = [], 0
    for site in site_packages(venv):
        for name in sorted(os.listdir(site)):
            package = os.path.join(site, name)
            if not os.path.isdir(package) or name.endswith((".dist-info", ".egg-info")) \
                    or name == "__pycache__" or _imports_tests(package):
                continue
            for folder, dirs, _ in os.walk(package):
                if "tests" in dirs:
                    path = os.path.join(folder, "tests")
                    if os.path.isfile(os.path.join(path, "__init__.py")) \
                            or any(n.endswith(".py") for n in os.listdir(path)):
                        freed += _size(path)
                        shutil.rmtree(path, ignore_errors=True)
                        removed.append(os.path.relpath(path, site))
                dirs[:] = [d for d in dirs if d != "tests"]
    return removed, freed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: venv_pruning.py VENV", file=sys.stderr)
        return 2
    removed, freed = prune(args[0])
    print(f"mlbox: left out {len(removed)} test folders of installed packages "
          f"({freed / 1e6:.1f} MB; --keep-tests keeps them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

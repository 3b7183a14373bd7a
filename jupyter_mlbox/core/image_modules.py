"""What a running image can import, and what a cell imports beyond it: a warm session's image
was built for the cells it started with, so a later cell's new import is said before the cell
runs (naming the package and how to rebuild), not as a ModuleNotFoundError from inside.

``importable_top_level()`` runs in the container (session_runner.py sends its answer once, when
the session is ready); ``missing_imports()`` runs on the host for each cell: an ast walk, a few
milliseconds."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable


def importable_top_level() -> list[str]:
    """Top-level module names this interpreter can import: stdlib, builtins, every module and
    package on sys.path, and folders there without ``__init__`` (namespace packages such as
    ``google`` or ``mpl_toolkits``, which pkgutil does not list)."""
    import pkgutil

    names = set(sys.builtin_module_names) | set(getattr(sys, "stdlib_module_names", ()))
    names |= {module.name for module in pkgutil.iter_modules()}
    for entry in sys.path:
        try:
            for name in os.listdir(entry or "."):
                if name.isidentifier() and os.path.isdir(os.path.join(entry or ".", name)):
                    names.add(name)
        except OSError:
            continue
    return sorted(names)


def missing_imports(cells: Iterable[str], importable: Iterable[str],
                    search_dir: Path | None = None) -> list[str]:
    """Top-level modules ``cells`` import (not in a try/except ImportError) that the image
    cannot import and that are not the project's own files beside the notebook; ``pip`` for a
    cell that runs it in an image without it."""
    from .inference import classified_imports
    from .notebook import parse_cells
    from .venv_pruning import runs_pip

    available = set(importable)
    missing = set()
    for parsed in parse_cells(list(cells)):
        if parsed.tree is None:
            continue
        for name, optional in classified_imports(parsed.tree).items():
            top = name.split(".")[0]
            if optional or top in available or top in missing:
                continue
            if search_dir is not None and ((search_dir / f"{top}.py").is_file()
                                           or (search_dir / top).is_dir()):
                continue
            missing.add(top)
    if "pip" not in available and runs_pip(cells, surely=True):  # the image left pip out (venv_pruning)
        missing.add("pip")
    return sorted(missing)


def distributions_of(modules: Iterable[str]) -> dict[str, str]:
    """module → the distribution that provides it in this (the kernel's) environment, where
    one does: what to name to the user."""
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    return {module: provided[module][0] for module in modules if provided.get(module)}

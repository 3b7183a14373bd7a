"""Runtime tracing: what a notebook really imported is in its kernel's ``sys.modules``.

Static inference reads import statements; a kernel that ran the notebook also knows what those
imports pulled in and what no statement shows (``load_iris(as_frame=True)`` loads pandas, a
``%run`` script imports its own modules). The modules a kernel has loaded beyond a fresh
kernel's baseline are mapped to distributions and pinned like static imports (origin
"traced"). Static inference stays the default and the fallback.

Two sources: the live kernel of ``%%mlbox`` (its ``sys.modules``), and ``--trace`` for files
(the notebook executed once locally with nbclient, then asked).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from ..errors import MlboxError

#: The cell put first in a traced run: record the files the kernel reads (opened.py).
_RECORD = "from jupyter_mlbox.core.opened import record_opened as _r\n_r()"
#: The cell appended to a traced run: it prints what the kernel has loaded and read.
_ASK = ("import sys as _s, json as _j, os as _o\n"
        "from jupyter_mlbox.core.opened import opened_files as _f\n"
        "print('MLBOX-MODULES ' + _j.dumps({'modules': sorted(_s.modules), "
        "'files': _f(_o.environ.get('MLBOX_TRACE_ROOT', '/'))}))")


def traced_modules(loaded: Iterable[str], baseline: Iterable[str]) -> set[str]:
    """Modules in ``loaded`` beyond ``baseline``, without the standard library, private
    modules and jupyter_mlbox itself."""
    stdlib = set(sys.stdlib_module_names)
    base = set(baseline)
    found = set()
    for name in loaded:
        top = name.split(".")[0]
        if name in base or top in stdlib or top.startswith("_") or top in {
                "jupyter_mlbox", "__main__", "builtins"}:
            continue
        found.add(name)
    return found


def _report_of(nb) -> dict:
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if output.get("output_type") == "stream" and text.startswith("MLBOX-MODULES "):
            return json.loads(text[len("MLBOX-MODULES "):].strip())
    raise MlboxError("--trace: the kernel did not report its modules")


def _execute(sources: list[str], cwd: Path, timeout: float, root: Path | None = None) -> dict:
    """Run ``sources`` in a local kernel from ``cwd``: ``{"modules": […], "files": […]}``,
    the files being those it read under ``root``."""
    import os

    from nbclient import NotebookClient

    from .notebook import new_notebook_from_cells

    nb = new_notebook_from_cells([_RECORD, *sources, _ASK])
    env = {**os.environ, "MLBOX_TRACE_ROOT": str(root or cwd)}
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute(env=env)
    return _report_of(nb)


#: The baseline kernel also loads jupyter_mlbox itself, whole, and what its views use: what the
#: magic brings into a kernel is not the notebook's.
_OWN = ("import importlib, pkgutil, jupyter_mlbox\n"
        "for _m in pkgutil.walk_packages(jupyter_mlbox.__path__, 'jupyter_mlbox.'):\n"
        "    try:\n        importlib.import_module(_m.name)\n"
        "    except Exception:\n        pass\n"
        "import ipywidgets")


@lru_cache(maxsize=1)
def fresh_kernel_modules(timeout: float = 120) -> frozenset[str]:
    """What a fresh local kernel has loaded once jupyter_mlbox is in it (the baseline)."""
    return frozenset(_execute(["%load_ext jupyter_mlbox", _OWN], Path.cwd(),
                              timeout)["modules"])


@dataclass(frozen=True)
class Trace:
    """What one local execution of a notebook loaded (beyond a fresh kernel) and read."""

    modules: frozenset[str]
    files: tuple[Path, ...]


def trace_notebook(sources: list[str], cwd: Path, root: Path | None = None,
                   timeout: float = 600) -> Trace:
    """Execute the notebook's code cells once in a local kernel (from ``cwd``): the modules it
    loaded beyond a fresh kernel's, and the files it read under ``root``. Cells that raise do
    not stop it."""
    try:
        report = _execute(sources, cwd, timeout, root)
        return Trace(frozenset(traced_modules(report["modules"], fresh_kernel_modules())),
                     tuple(Path(f) for f in report["files"]))
    except MlboxError:
        raise
    except Exception as err:  # noqa: BLE001 - nbclient/kernel failures: say so, plainly
        raise MlboxError(f"--trace: executing the notebook locally failed "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); run "
                         f"without --trace to use its imports only") from err

"""Runtime tracing: what a notebook really imported is in its kernel's ``sys.modules``.

Static inference reads import statements; a kernel that ran the notebook also knows what those
imports pulled in and what no statement shows (``load_iris(as_frame=True)`` loads pandas, a
``%run`` script imports its own modules). The modules a kernel has loaded beyond a fresh
kernel's baseline are mapped to distributions and pinned like static imports (origin
"traced"). Static inference stays the default and the fallback.

Two sources: a live kernel (``%%mlbox`` asks its own ``sys.modules``; the server asks the
notebook's kernel through :func:`live_report`), on by default, and ``--trace`` for files (the
notebook executed once locally with nbclient, then asked), off by default because it runs the
notebook. The baseline needs a fresh kernel, so it is computed once per environment, in the
background at ``%load_ext``, and kept on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
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


#: Modules that appeared while jupyter_mlbox itself worked in this process (:func:`own_work`).
_own_loaded: set[str] = set()


@contextmanager
def own_work():
    """What jupyter_mlbox does in a kernel — the files it reads (the notebook, apt.txt), the
    modules it loads (pipreqs' mapping, the readers of --out values) — is not the notebook's:
    neither is recorded as the notebook's."""
    from .opened import not_recorded

    before = sys.modules.copy()
    try:
        with not_recorded():
            yield
    finally:
        _own_loaded.update(name for name in sys.modules.copy() if name not in before)


def kernel_modules() -> set[str]:
    """What this live kernel loaded beyond a fresh kernel's baseline and jupyter_mlbox's own
    work."""
    return traced_modules(list(sys.modules.copy()), fresh_kernel_modules() | _own_loaded)


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


#: The baseline kernel also loads jupyter_mlbox itself, whole but for the server extension
#: (never loaded in a kernel; it would hide jinja2 and tornado), what its views use, and the
#: libraries its functions import when called (a trace runs nbclient, a cell pickles its
#: --in values, inference reads pipreqs' mapping): what the magic brings into a kernel is not
#: the notebook's.
_OWN = ("import importlib, pkgutil, jupyter_mlbox\n"
        "for _m in pkgutil.walk_packages(jupyter_mlbox.__path__, 'jupyter_mlbox.'):\n"
        "    try:\n        _m.name.startswith('jupyter_mlbox.server') or "
        "importlib.import_module(_m.name)\n"
        "    except Exception:\n        pass\n"
        "import ipywidgets, nbclient, nbformat, cloudpickle, uv, pipreqs\n"
        "import packaging.requirements, packaging.markers, packaging.specifiers")


_baseline: frozenset[str] | None = None
_baseline_lock = threading.Lock()


def _environment_key() -> str:
    """What decides a fresh kernel's modules: this Python, its installed distributions,
    jupyter_mlbox's own files and IPython's startup files."""
    from importlib import metadata

    import jupyter_mlbox

    parts = [sys.executable, sys.version]
    parts += sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    own = Path(jupyter_mlbox.__file__).parent
    parts += sorted(f"{p}:{p.stat().st_mtime_ns}" for p in own.rglob("*.py"))
    startup = Path(os.environ.get("IPYTHONDIR", Path.home() / ".ipython"))
    parts += sorted(f"{p}:{p.stat().st_mtime_ns}"
                    for p in startup.glob("profile_default/startup/*") if p.is_file())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "jupyter_mlbox" / f"baseline-{_environment_key()}.json"


def fresh_kernel_modules(timeout: float = 120) -> frozenset[str]:
    """What a fresh local kernel has loaded once jupyter_mlbox is in it (the baseline):
    computed once per environment (a fresh kernel, seconds) and kept on disk."""
    global _baseline
    with _baseline_lock:
        if _baseline is None:
            cache = _cache_file()
            try:
                _baseline = frozenset(json.loads(cache.read_text()))
            except (OSError, ValueError):
                modules = _execute(["%load_ext jupyter_mlbox", _OWN], Path.cwd(),
                                   timeout)["modules"]
                _baseline = frozenset(modules)
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_text(json.dumps(sorted(modules)))
                    tmp.replace(cache)
                except OSError:
                    pass  # a read-only home: computed again next time
        return _baseline


def warm_baseline() -> None:
    """Compute the baseline in the background (at ``%load_ext``), so the first ``%%mlbox``
    does not wait for a fresh kernel. Failures are left for the foreground call to report."""
    def work():
        try:
            fresh_kernel_modules()
        except Exception:  # noqa: BLE001 - the foreground call says what went wrong
            pass

    threading.Thread(target=work, name="mlbox-trace-baseline", daemon=True).start()


def live_report(root: str) -> str:
    """Called in a live kernel (by the server, through the kernel's ``user_expressions``):
    JSON of the modules it loaded beyond a fresh kernel's and the files it read under
    ``root`` (recorded since ``%load_ext jupyter_mlbox``)."""
    from .opened import opened_files

    return json.dumps({"modules": sorted(kernel_modules()),
                       "files": opened_files(root)})


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

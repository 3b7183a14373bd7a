"""Where a cell's dependencies come from: the kernel's notebook file when the front end said
which it is (``__session__``, ``JPY_SESSION_NAME``, ``__vsc_ipynb_file__``), else the cells run in
this kernel (its input history)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .setup_cells import is_mlbox_cell

#: The image name used when the kernel's notebook is not known.
KERNEL_NOTEBOOK_NAME = "kernel"


@dataclass
class KernelContext:
    """The sources to infer from, the cells before this one, and the names the image takes."""

    sources: list[str]
    earlier: list[tuple[str, str]]  # (label, source) of cells before this one
    notebook_name: str
    search_dir: Path
    notebook_path: Path | None = None

    @property
    def described(self) -> str:
        return str(self.notebook_path) if self.notebook_path else "the cells run in this kernel"


def _is_this_cell(source: str, body: str) -> bool:
    """Whether notebook/history cell ``source`` is the ``%%mlbox`` cell whose body is ``body``."""
    return is_mlbox_cell(source) and source.lstrip().partition("\n")[2].strip() == body.strip()


def kernel_notebook(shell) -> Path | None:
    """The notebook this kernel belongs to, when the front end said so (and it exists)."""
    namespace = getattr(shell, "user_ns", {}) or {}
    for candidate in (namespace.get("__session__"), os.environ.get("JPY_SESSION_NAME"),
                      namespace.get("__vsc_ipynb_file__")):
        if not candidate or not str(candidate).endswith(".ipynb"):
            continue
        path = Path(str(candidate)).expanduser()
        for option in ([path] if path.is_absolute()
                       else [Path.cwd() / path, Path.cwd() / path.name]):
            if option.is_file():
                return option.resolve()
    return None


def kernel_context(shell, cell: str | None = None) -> KernelContext:
    """The context of ``cell`` (None: of the kernel as a whole, for ``%mlbox`` commands)."""
    from ..core.notebook import code_cell_sources, read_notebook

    path = kernel_notebook(shell)
    current = (cell or "").strip()
    raw = list(getattr(getattr(shell, "history_manager", None), "input_hist_raw", []))
    numbered = [(f"In[{n}]", source) for n, source in enumerate(raw) if n and source.strip()]
    if numbered and current and _is_this_cell(numbered[-1][1], current):
        numbered = numbered[:-1]  # IPython stores the running cell before it runs
    if path is not None:
        cells = code_cell_sources(read_notebook(path))
        before = [(f"cell {i + 1}", s) for i, s in enumerate(cells)]
        positions = [i for i, s in enumerate(cells) if current and _is_this_cell(s, current)]
        earlier = before[:positions[0]] if positions else list(numbered)
        return KernelContext(cells + ([cell] if cell else []), earlier, path.name, path.parent,
                             path)
    sources = [source for _, source in numbered] + ([cell] if cell else [])
    return KernelContext(sources, list(numbered), KERNEL_NOTEBOOK_NAME, Path.cwd())


def tracing(options) -> bool:
    """In a live kernel tracing is on unless ``--no-trace``: asking sys.modules is cheap."""
    return options.trace is not False


def kernel_traced_modules(options) -> set[str]:
    """What this live kernel has loaded beyond a fresh kernel with jupyter_mlbox in it
    (core/trace.py); nothing with ``--no-trace``."""
    if not tracing(options):
        return set()
    from ..core.trace import kernel_modules

    return kernel_modules()


def kernel_read_files(options, folder: Path) -> list[Path]:
    """The files this kernel has read under ``folder`` since ``%load_ext jupyter_mlbox``
    (core/opened.py); none with ``--no-trace``."""
    if not tracing(options):
        return []
    from ..core.opened import opened_files

    return [Path(p) for p in opened_files(folder)]


def with_live_trace(shell, path: Path, options):
    """``options`` with what this kernel loaded and read, when ``path`` is this kernel's own
    notebook (``%mlbox run``, ``%mlbox lock``); another notebook's kernel is not this one."""
    from dataclasses import replace

    from ..core.project import project_root
    from ..core.trace import Trace

    own = kernel_notebook(shell)
    if not tracing(options) or own is None or own != Path(path).resolve():
        return options
    root = project_root(own.parent, options.context)
    return replace(options, live_trace=Trace(frozenset(kernel_traced_modules(options)),
                                             tuple(kernel_read_files(options, root))))

"""jupyter_mlbox: run a notebook, or one cell of it, in a container built from its imports.

Only entry points live here; their imports are lazy so ``import jupyter_mlbox`` stays light.
"""
from ._version import __version__


def load_ipython_extension(ipython):
    """``%load_ext jupyter_mlbox``: register the ``%%mlbox`` / ``%mlbox`` magics."""
    from .core.opened import record_opened
    from .core.trace import warm_baseline
    from .magics import MlboxMagics

    record_opened()  # what the notebook reads from now on: those files travel with %%mlbox
    warm_baseline()  # a fresh kernel's modules, so the first %%mlbox need not wait for them
    _reap_in_background()  # containers of runs whose process was killed (SIGKILL, a crash)
    ipython.register_magics(MlboxMagics(ipython))


def _reap_in_background() -> None:
    """Remove orphaned containers (core/orphans.py) off the caller's thread: a slow or absent
    daemon never delays a kernel or a server start."""
    import threading

    from .core.orphans import reap_quietly

    threading.Thread(target=reap_quietly, name="mlbox-reaper", daemon=True).start()


def _jupyter_server_extension_points():
    from .server.app import MlboxApp

    return [{"module": "jupyter_mlbox.server.app", "app": MlboxApp}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-mlbox"}]


__all__ = ["__version__", "load_ipython_extension"]

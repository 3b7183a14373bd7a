"""Defaults for ``jupyter mlbox``, read the Jupyter way: ``jupyter_mlbox_config.py`` or
``.json`` in any directory of ``jupyter --paths`` (config), e.g.

    c.MlboxDefaults.gpus = "auto"
    c.MlboxDefaults.memory = "8g"

Command-line flags override these.
"""
from __future__ import annotations

from jupyter_core.paths import jupyter_config_path
from traitlets import Float, List, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

CONFIG_NAME = "jupyter_mlbox_config"


class MlboxDefaults(Configurable):
    """What a user sets once instead of on every command."""

    base_image = Unicode(None, allow_none=True, help="Base image; default python:<the "
                         "kernel's major.minor>-slim.").tag(config=True)
    gpus = Unicode("none", help="Default --gpus: all, none, auto, N or device=ID."
                   ).tag(config=True)
    timeout = Float(None, allow_none=True, help="Default --timeout in seconds (whole run and "
                    "each cell).").tag(config=True)
    memory = Unicode(None, allow_none=True, help="Default --memory, e.g. 8g.").tag(config=True)
    cpus = Float(None, allow_none=True, help="Default --cpus.").tag(config=True)
    pip = List(Unicode(), help="Requirements always added (like --pip).").tag(config=True)
    exclude = List(Unicode(), help="Distributions always dropped (like --exclude)."
                   ).tag(config=True)


def load_defaults() -> MlboxDefaults:
    """Merge every config file on Jupyter's config path, later (more local) ones winning."""
    merged = Config()
    for directory in reversed(jupyter_config_path()):
        for loader_class, suffix in ((JSONFileConfigLoader, ".json"),
                                     (PyFileConfigLoader, ".py")):
            try:
                merged.merge(loader_class(CONFIG_NAME + suffix, path=directory).load_config())
            except ConfigFileNotFound:
                continue
    return MlboxDefaults(config=merged)

"""Defaults every front end starts from, read the Jupyter way: ``jupyter_mlbox_config.py`` or
``.json`` in any directory of ``jupyter --paths`` (config), e.g.

    c.MlboxDefaults.gpus = "auto"
    c.MlboxDefaults.memory = "8g"

The CLI, ``%%mlbox`` / ``%mlbox`` and the server (hence the panel) read the same files; the
server also reads ``c.MlboxDefaults`` from its own config (``jupyter_server_config.py``).
Flags and request options override these.
"""
from __future__ import annotations

from jupyter_core.paths import jupyter_config_path
from traitlets import Bool, Float, List, TraitError, Unicode, validate
from traitlets.config import Config, Configurable
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

from .core.options import BY_NAME, help_of
from .errors import OptionError

CONFIG_NAME = "jupyter_mlbox_config"


class MlboxDefaults(Configurable):
    """What a user sets once instead of on every command (each trait is the option of the
    same name; its help is the option's)."""

    base_image = Unicode(None, allow_none=True, help=help_of("base_image")).tag(config=True)
    gpus = Unicode("none", help=help_of("gpus")).tag(config=True)
    host = Unicode(None, allow_none=True, help=help_of("host")).tag(config=True)
    timeout = Float(None, allow_none=True, help=help_of("timeout")).tag(config=True)
    memory = Unicode(None, allow_none=True, help=help_of("memory")).tag(config=True)
    cpus = Float(None, allow_none=True, help=help_of("cpus")).tag(config=True)
    shm_size = Unicode(None, allow_none=True, help=help_of("shm_size")).tag(config=True)
    inactivity = Float(None, allow_none=True, help=help_of("inactivity")).tag(config=True)
    network_mode = Unicode(None, allow_none=True, help=help_of("network_mode")).tag(config=True)
    pip = List(Unicode(), help=help_of("pip")).tag(config=True)
    exclude = List(Unicode(), help=help_of("exclude")).tag(config=True)
    apt = List(Unicode(), help=help_of("apt")).tag(config=True)
    exclude_apt = List(Unicode(), help=help_of("exclude_apt")).tag(config=True)
    out_pickle = Bool(False, help=help_of("out_pickle")).tag(config=True)
    keep_tests = Bool(False, help=help_of("keep_tests")).tag(config=True)
    session_idle = Float(None, allow_none=True,
                         help=help_of("session_idle")).tag(config=True)

    @validate("gpus", "timeout", "memory", "cpus", "shm_size", "apt", "exclude_apt",
              "base_image", "inactivity", "network_mode", "session_idle")
    def _valid_option(self, proposal):
        """A bad configured value fails where it is read, naming the option and the file."""
        value = proposal["value"]
        if value is None:
            return value
        try:
            BY_NAME[proposal["trait"].name].read(value)
        except (ValueError, OptionError) as err:
            raise TraitError(f"c.MlboxDefaults.{proposal['trait'].name} = {value!r}: {err}") \
                from None
        return value

    def configured(self) -> dict:
        """The values that differ from the built-in defaults (what ``%mlbox config`` shows)."""
        return {name: getattr(self, name) for name, trait in self.traits(config=True).items()
                if getattr(self, name) != trait.default()}


def config_from_files() -> Config:
    """Every config file on Jupyter's config path merged, later (more local) ones winning."""
    merged = Config()
    for directory in reversed(jupyter_config_path()):
        for loader_class, suffix in ((JSONFileConfigLoader, ".json"),
                                     (PyFileConfigLoader, ".py")):
            try:
                merged.merge(loader_class(CONFIG_NAME + suffix, path=directory).load_config())
            except ConfigFileNotFound:
                continue
    return merged


def load_defaults(config: Config | None = None) -> MlboxDefaults:
    """The defaults from the config files, then ``config`` (e.g. a server's own) over them.

    A bad value in a file raises OptionError, naming the option."""
    merged = config_from_files()
    if config is not None:
        merged.merge(config)
    try:
        return MlboxDefaults(config=merged)
    except TraitError as err:
        raise OptionError(f"jupyter_mlbox configuration: {err}") from None

"""``%mlbox config``: the :class:`~jupyter_mlbox.config.MlboxDefaults` every ``%%mlbox`` /
``%mlbox`` call of this kernel starts from. Loaded from the Jupyter config files
(``c.MlboxDefaults.gpus = "auto"`` in ``jupyter_mlbox_config.py``) when the extension loads, then
changed with the same flags a cell takes."""
from __future__ import annotations

import argparse
import shlex

from IPython.core.error import UsageError
from traitlets import TraitError

from ..core.options import BY_NAME, OPTIONS, GpuRequest

#: Flags of one cell, never defaults.
PER_CELL = {"inputs": "--in", "outputs": "--out", "with_setup": "--with-setup"}
#: How a call shows its progress: given per call.
PER_CALL = {"quiet": "--quiet", "verbose": "--verbose"}


def configurable(defaults) -> list:
    """The options ``defaults`` has a setting for."""
    return [o for o in OPTIONS if o.configurable and defaults.has_trait(o.name)]


def set_defaults(defaults, args: argparse.Namespace) -> None:
    """Set the settings ``args`` (parsed by a magic's parser, so validated) gives; UsageError
    for a flag that cannot be a default. All are set, or none."""
    for dest, flag in PER_CELL.items():
        if getattr(args, dest, None):
            raise UsageError(f"{flag} is per cell; it cannot be a default")
    settable = configurable(defaults)
    given = [o for o in OPTIONS if getattr(args, o.name, None) not in (None, [])]
    fixed = [o.flags[-1] for o in given if o not in settable] \
        + [flag for dest, flag in PER_CALL.items() if getattr(args, dest, None)]
    if fixed:
        raise UsageError(f"{', '.join(fixed)} cannot be a default; defaults are "
                         f"{', '.join(o.flags[-1] for o in settable)}")
    try:
        with defaults.hold_trait_notifications():
            for option in given:
                value = getattr(args, option.name)
                if option.many:  # repeatable: adds to what is configured
                    value = list(getattr(defaults, option.name)) + list(value)
                elif isinstance(value, GpuRequest):
                    value = str(value)
                setattr(defaults, option.name, value)
    except TraitError as err:
        raise UsageError(str(err)) from None


def described(defaults) -> str:
    """The configured settings as the flags that would set them, or ``(none)``."""
    configured = defaults.configured()
    parts = []
    for option in OPTIONS:
        if option.name in configured:
            value = configured[option.name]
            if option.switch:  # a switch is its flag (or nothing)
                parts += [option.flags[-1]] if value else []
                continue
            for item in (value if option.many else [value]):
                text = f"{item:g}" if isinstance(item, float) else str(item)
                parts.append(f"{option.flags[-1]} {shlex.quote(text)}")
    parts += [f"{name}={value!r}" for name, value in configured.items() if name not in BY_NAME]
    return " ".join(parts) or "(none)"

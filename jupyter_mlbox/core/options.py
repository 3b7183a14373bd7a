"""One options model for every front end: each option is declared once, here.

``OPTIONS`` declares every option a user can give (flag, help, how its value is read). From it
come the argparse arguments of the CLI and of the magics (:func:`add_arguments`), the help of
the configurable defaults (``config.MlboxDefaults``) and the validation of the server's request
bodies (:func:`resolve_options` reads argparse values and JSON alike). A bad value raises
``OptionError`` with one sentence that names the option.

The result is two typed, frozen models the core takes: ``BuildOptions`` (what goes into the
image) and ``RunOptions`` (how a container runs). GPUs are one type, ``GpuRequest``.
"""
from __future__ import annotations

import argparse
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import OptionError
from .container_runner import parse_parameter_value as parameter_value


# --- the GPU request --------------------------------------------------------------------------

@dataclass(frozen=True)
class GpuRequest:
    """``--gpus`` as ``docker run`` reads it, plus ``auto`` (GPUs when the daemon has them).

    ``mode`` is none, all, auto, count (``count`` GPUs) or devices (``devices`` by id).
    """

    mode: str = "none"
    count: int = 0
    devices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any) -> "GpuRequest":
        if isinstance(value, GpuRequest):
            return value
        if value is None:
            return cls()
        if isinstance(value, bool):
            raise OptionError("--gpus: expected all, none, auto, a number or device=ID[,ID]")
        if isinstance(value, int):
            value = str(value)
        text = str(value).strip()
        if text in {"", "none", "0"}:
            return cls()
        if text in {"all", "auto"}:
            return cls(text)
        if text.isdigit():
            return cls("count", count=int(text))
        if text.startswith("device="):
            ids = tuple(i.strip() for i in text[len("device="):].split(",") if i.strip())
            if ids and all(re.fullmatch(r"[\w.:-]+", i) for i in ids):
                return cls("devices", devices=ids)
        raise OptionError(f"--gpus {text!r}: expected all, none, auto, a number or "
                          f"device=ID[,ID]")

    @property
    def requested(self) -> bool:
        """Whether the container asks for GPUs at all (``auto`` asks, then may fall back)."""
        return self.mode != "none"

    @property
    def optional(self) -> bool:
        """``auto``: without GPU support on the daemon, run on the CPU instead of failing."""
        return self.mode == "auto"

    def __str__(self) -> str:
        if self.mode == "count":
            return str(self.count)
        if self.mode == "devices":
            return "device=" + ",".join(self.devices)
        return self.mode


NO_GPUS = GpuRequest()
DEFAULT_SHM_SIZE = "1g"
#: Minutes a busy cell may go without any output before the run is stopped as stalled (a
#: kernel that never returns to idle otherwise hangs a run forever); 0 turns it off.
DEFAULT_INACTIVITY = 30.0
#: minutes a %%mlbox --session container waits for its next cell before it stops itself
DEFAULT_SESSION_IDLE = 60.0


# --- the models the core takes ------------------------------------------------------------------

@dataclass(frozen=True)
class BuildOptions:
    """What a user can say about the image."""

    base_image: str | None = None
    pip: tuple[str, ...] = ()
    requirements_file: Path | None = None
    exclude: tuple[str, ...] = ()
    rebuild: bool = False
    #: Debian packages for the final stage (besides apt.txt and the inferred ones)
    apt: tuple[str, ...] = ()
    exclude_apt: tuple[str, ...] = ()
    #: the project root the container mirrors (default: the git top level, else the
    #: notebook's folder)
    context: Path | None = None
    #: count what the notebook really loads and reads (trace.py). None: the front end's
    #: default, which is on in a live kernel (cheap: it asks sys.modules) and off for a file
    #: (``--trace`` executes it locally once)
    trace: bool | None = None
    #: resolve the lock beside the notebook again (lock.py)
    relock: bool = False
    #: keep the installed packages' own test suites in the image (venv_pruning.py)
    keep_tests: bool = False
    #: what the notebook's live kernel loaded and read (trace.Trace), when a front end asked
    #: it (the magic for its own notebook, the server for a notebook with a kernel); not a flag
    live_trace: Any = None


@dataclass(frozen=True)
class RunOptions:
    """How to run: resources, GPUs, time limit, environment and papermill-style parameters."""

    gpus: GpuRequest = NO_GPUS
    #: the daemon (docker_endpoint.py): a docker context name or a URL; None: the environment's
    host: str | None = None
    timeout: float | None = None
    memory: str | None = None
    cpus: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, object] = field(default_factory=dict)
    allow_errors: bool = False
    #: Docker's default /dev/shm is 64 MB, where PyTorch DataLoader workers die of a bus error
    shm_size: str = DEFAULT_SHM_SIZE
    #: None: Docker's default network; "none": no network at all (--network none)
    network_mode: str | None = None
    #: minutes without output while a cell is busy before the run is stopped (0/None: off)
    inactivity: float | None = DEFAULT_INACTIVITY
    #: %%mlbox --out may bring values back with cloudpickle (trusting the container's code)
    out_pickle: bool = False
    #: minutes a --session container waits for a cell before it stops itself (0/None: never)
    session_idle: float | None = DEFAULT_SESSION_IDLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpus", GpuRequest.parse(self.gpus))


# --- how values are read (from a flag's text or a JSON value) -------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if number != number:  # NaN
        raise ValueError(f"expected a number, got {value!r}")
    return number


def positive_number(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError("must be > 0")
    return number


def non_negative_number(value: Any) -> float:
    """A number ≥ 0 (0 turns a limit off)."""
    number = _number(value)
    if number < 0:
        raise ValueError("must be 0 (off) or more")
    return number


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def memory_size(value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and value is not True else ""
    if not re.fullmatch(r"\d+(\.\d+)?[bkmgtBKMGT]?", text):
        raise ValueError(f"expected a size like 512m or 4g, got {value!r}")
    return text


#: Docker refuses a memory limit below this when the container is created (after the build).
MIN_MEMORY = 6 << 20


def memory_limit(value: Any) -> str:
    """``--memory``: a size Docker takes, said before anything is built."""
    text = memory_size(value)
    number = float(text.rstrip("bkmgtBKMGT"))
    if number * _UNITS[text[-1].lower() if text[-1].isalpha() else ""] < MIN_MEMORY:
        raise ValueError(f"{text!r} is below Docker's minimum of 6m (a number without a unit "
                         f"is bytes): give e.g. 512m or 4g")
    return text


_REFERENCE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?")


def image_reference(value: Any) -> str:
    """``--base``: an image reference as docker reads it (it reaches the Dockerfile's FROM
    lines: a newline in it wrote extra Dockerfile lines)."""
    text = _text(value)
    if not _REFERENCE.fullmatch(text):
        raise ValueError(f"{text!r} is not an image reference: use [REGISTRY/]NAME[:TAG]"
                         f"[@sha256:DIGEST] with a lowercase NAME, e.g. python:3.11-slim")
    return text


def network_name(value: Any) -> str:
    """``--network``: none, bridge, host, or a network's name."""
    text = _text(value)
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,127}", text):
        raise ValueError(f"expected none, bridge, host or a network name, got {value!r}")
    return text


def key_value(value: Any) -> tuple[str, str]:
    """``K=V`` (a flag) → ``(K, V)``."""
    key, sep, rest = str(value).partition("=")
    if not sep or not key:
        raise ValueError(f"expected NAME=VALUE, got {value!r}")
    return key, rest


def _pairs(value: Any, *, parse_text: Callable[[str], object] = str,
           identifiers: bool = False) -> dict:
    """Repeated ``K=V`` flags (already split into pairs), or a JSON object, as a dict.

    ``parse_text`` reads a value given as flag text; JSON values keep their JSON type, except
    that environment values (``parse_text`` is ``str``) always become strings."""
    if isinstance(value, Mapping):
        items, from_flags = list(value.items()), False
    elif isinstance(value, (list, tuple)):
        items = [item if isinstance(item, tuple) else key_value(item) for item in value]
        from_flags = True
    else:
        raise ValueError("expected NAME=VALUE pairs (an object in JSON)")
    result = {}
    for key, item in items:
        if not isinstance(key, str) or not key or (identifiers and (
                not key.isidentifier() or keyword.iskeyword(key))):
            raise ValueError(f"{key!r} is not a valid name" + (
                ": a parameter name must be a Python identifier, e.g. -p n=3"
                if identifiers else ""))
        if parse_text is str:
            result[key] = str(item)
        else:
            result[key] = parse_text(item) if from_flags and isinstance(item, str) else item
    return result


def _strings(value: Any) -> tuple[str, ...]:
    """Repeated flags, a JSON list of strings, or one comma/space separated string."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _path(value: Any) -> Path:
    return Path(_text(str(value) if isinstance(value, Path) else value)).expanduser()


def _debian_packages(value: Any) -> tuple[str, ...]:
    """Like :func:`_strings`, each a valid Debian package name (they reach a RUN line)."""
    from .system_packages import validate_package_name
    from ..errors import RequirementError

    names = _strings(value)
    for name in names:
        try:
            validate_package_name(name)
        except RequirementError as err:
            raise ValueError(str(err)) from None
    return names


def _switch(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


# --- the declarations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One option, declared once.

    ``name`` is its field in BuildOptions/RunOptions and its key in a request's ``options``;
    ``read`` turns a flag's text or a JSON value into the typed value (ValueError with the
    reason otherwise); ``many`` options repeat (flags append, configured defaults come first);
    ``switch`` options are on/off flags; ``configurable`` ones are MlboxDefaults traits too.
    """

    name: str
    flags: tuple[str, ...]
    help: str
    model: str  # "build", "run", or "cell" (a RunOptions field only a %%mlbox cell reads)
    read: Callable[[Any], Any] = _text
    metavar: str | None = None
    many: bool = False
    switch: bool = False
    configurable: bool = False
    #: per-flag reader when one flag value is a piece of the whole (``-e K=V``)
    read_flag: Callable[[str], Any] | None = None
    #: names a path on the machine that parses it (a server refuses it from a request)
    local_path: bool = False
    #: a switch whose "off" is worth saying too (``--no-trace``): None stays "not given"
    negatable: bool = False


GPUS_HELP = ("all | none | auto | N | device=ID (default: none); auto uses GPUs when the "
             "Docker daemon has NVIDIA support and the CPU otherwise")

OPTIONS: tuple[Option, ...] = (
    Option("base_image", ("--base",), "base image (default: python:<this kernel's "
           "major.minor>-slim)", "build", read=image_reference, metavar="IMAGE",
           configurable=True),
    Option("pip", ("--pip",), "extra requirement, e.g. --pip 'xgboost>=2' (repeatable)",
           "build", read=_strings, metavar="PKG", many=True, configurable=True),
    Option("requirements_file", ("-r", "--requirements"), "use this requirements file "
           "instead of inferring from imports", "build",
           read=_path, metavar="FILE", local_path=True),
    Option("exclude", ("--exclude",), "drop this distribution from the requirements "
           "(repeatable)", "build", read=_strings, metavar="NAME", many=True, configurable=True),
    Option("apt", ("--apt",), "Debian package to install in the image, e.g. --apt ffmpeg "
           "(repeatable; adds to apt.txt beside the notebook)", "build", read=_debian_packages,
           metavar="PKG", many=True, configurable=True),
    Option("exclude_apt", ("--exclude-apt",), "drop this inferred system package, e.g. "
           "--exclude-apt ffmpeg (repeatable)", "build", read=_debian_packages, metavar="PKG",
           many=True, configurable=True),
    Option("context", ("--context",), "project root the container mirrors: files the notebook "
           "names by relative path anywhere under it travel along (default: the git top level "
           "above the notebook, else its folder)", "build",
           read=_path, metavar="DIR", local_path=True),
    Option("trace", ("--trace",), "count what the notebook really loads and reads: in a live "
           "kernel (on by default; --no-trace turns it off) its sys.modules and opened files; for "
           "a notebook file (off by default) those of one local execution (nbclient) before the "
           "build", "build", read=_switch, switch=True, negatable=True),
    Option("relock", ("--relock",), "resolve <notebook>.mlbox.lock again (the whole closure, "
           "pinned to this kernel's versions) and use it", "build", read=_switch, switch=True),
    Option("rebuild", ("--rebuild",), "build again from scratch, ignoring the layer cache "
           "(unpinned requirements are resolved anew)", "build", read=_switch, switch=True),
    Option("keep_tests", ("--keep-tests",), "keep the installed packages' own test suites "
           "(tests/ folders) in the image; by default they are left out, as no notebook "
           "imports them (a third of numpy, pandas, scikit-learn and SciPy)", "build",
           read=_switch, switch=True, configurable=True),
    Option("host", ("--host",), "the Docker daemon: a docker context name or a URL "
           "(ssh://gpu-box, tcp://…); default: DOCKER_HOST, else the current docker context, "
           "else the local socket", "run", metavar="NAME|URL", configurable=True),
    Option("gpus", ("--gpus",), GPUS_HELP, "run", read=GpuRequest.parse, configurable=True),
    Option("timeout", ("--timeout",), "seconds, for the whole run and for each cell", "run",
           read=positive_number, metavar="S", configurable=True),
    Option("memory", ("--memory",), "memory limit, e.g. 4g (at least 6m; default: none)",
           "run", read=memory_limit, metavar="SIZE", configurable=True),
    Option("inactivity", ("--inactivity",), f"minutes a cell may run without any output "
           f"before the run is stopped as stalled, naming the cell (default "
           f"{DEFAULT_INACTIVITY:g}; 0: no limit)", "run", read=non_negative_number,
           metavar="MIN", configurable=True),
    Option("network_mode", ("--network",), "the container's network: none (no network at "
           "all), bridge, host or a network name (default: Docker's, bridge)", "run",
           read=network_name, metavar="NET", configurable=True),
    Option("cpus", ("--cpus",), "CPU limit, e.g. 2", "run", read=positive_number, metavar="N",
           configurable=True),
    Option("shm_size", ("--shm-size",), f"size of /dev/shm in the container (default "
           f"{DEFAULT_SHM_SIZE}; Docker's own 64m kills PyTorch DataLoader workers)", "run",
           read=memory_size, metavar="SIZE", configurable=True),
    Option("allow_errors", ("--allow-errors",), "run every cell even after one raises (cells "
           "tagged raises-exception may always raise); the run still fails, listing every "
           "error", "run", read=_switch, switch=True),
    Option("env", ("-e", "--env"), "environment variable in the container (repeatable)", "run",
           read=_pairs, metavar="K=V", many=True, read_flag=key_value),
    Option("parameters", ("-p", "--parameter"), "papermill-style parameter, injected after the "
           "cell tagged 'parameters' (repeatable)", "run",
           read=lambda v: _pairs(v, parse_text=parameter_value, identifiers=True),
           metavar="NAME=VALUE", many=True, read_flag=key_value),
    Option("out_pickle", ("--out-pickle",), "let --out bring back any picklable value with "
           "cloudpickle; reading a pickle runs code, so this kernel then trusts the code in the "
           "container (the cell and every package in the image). Without it --out brings back "
           "JSON-able builtins, bytes, numpy arrays, pandas objects (pyarrow) and scikit-learn "
           "estimators (skops) only", "cell", read=_switch, switch=True, configurable=True),
    Option("session_idle", ("--idle",), f"with --session: minutes the session's container "
           f"waits for its next cell before it stops itself, also when this kernel is gone "
           f"(default {DEFAULT_SESSION_IDLE:g}; 0: never)", "cell", read=non_negative_number,
           metavar="MIN", configurable=True),
)
BY_NAME = {option.name: option for option in OPTIONS}
LOCAL_PATH_OPTIONS = frozenset(o.name for o in OPTIONS if o.local_path)
BUILD_OPTIONS = tuple(o.name for o in OPTIONS if o.model == "build")
RUN_OPTIONS = tuple(o.name for o in OPTIONS if o.model == "run")
#: Options only a %%mlbox cell takes (the CLI and the server have no cells): RunOptions fields.
CELL_OPTIONS = tuple(o.name for o in OPTIONS if o.model == "cell")


def help_of(name: str) -> str:
    return BY_NAME[name].help


def _flag_type(option: Option) -> Callable[[str], Any]:
    """An argparse ``type=``: the option's reader, its ValueError as argparse's one line."""
    read = option.read_flag or (_text if option.many else option.read)

    def convert(text: str):
        try:
            return read(text)
        except (ValueError, OptionError) as err:
            # argparse says "argument --gpus: …" itself: drop the reader's own "--gpus 'x': "
            message, flag = str(err), re.escape(option.flags[-1])
            prefix = re.match(rf"{flag}(?: {re.escape(repr(text))})?:? ", message)
            raise argparse.ArgumentTypeError(message[prefix.end():] if prefix else message) \
                from None
    convert.__name__ = option.name  # argparse names the type in its error message
    return convert


def add_arguments(parser, names=None, *, help_overrides: Mapping[str, str] | None = None):
    """Add the arguments of ``names`` (default: all) to an argparse parser or argument group.

    Every default is None (or [] for repeatable ones): :func:`resolve_options` fills in the
    configured defaults, so "not given" stays distinguishable from "given".
    """
    for option in OPTIONS:
        if names is not None and option.name not in names:
            continue
        help_text = (help_overrides or {}).get(option.name, option.help)
        if option.switch and option.negatable:
            parser.add_argument(*option.flags, dest=option.name,
                                action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif option.switch:
            parser.add_argument(*option.flags, dest=option.name, action="store_true",
                                default=None, help=help_text)
        elif option.many:
            parser.add_argument(*option.flags, dest=option.name, action="append", default=[],
                                type=_flag_type(option), metavar=option.metavar, help=help_text)
        else:
            parser.add_argument(*option.flags, dest=option.name, default=None,
                                type=_flag_type(option), metavar=option.metavar, help=help_text)
    return parser


def resolve_options(values: Mapping[str, Any] | None = None,
                    defaults=None) -> tuple[BuildOptions, RunOptions]:
    """Flags (``vars()`` of an argparse namespace) or a request's ``options`` object, over the
    configured ``defaults`` (an ``MlboxDefaults``; None: the built-in defaults).

    Keys that are not options are ignored here (a namespace carries other arguments too; the
    server checks a request's keys with :func:`check_keys`). A value an option cannot take
    raises OptionError naming the option. Repeatable options add to the configured ones.
    """
    values = dict(values or {})
    typed: dict[str, Any] = {}
    for option in OPTIONS:
        given = values.get(option.name)
        value = None
        if given is not None and given != []:
            try:
                value = option.read(given)
            except (ValueError, OptionError) as err:
                reason = str(err)
                raise OptionError(reason if reason.startswith(option.flags[-1])
                                  else f"{option.flags[-1]}: {reason}") from None
        default = getattr(defaults, option.name, None) \
            if option.configurable and defaults is not None else None
        if option.many and option.read in (_strings, _debian_packages):
            typed[option.name] = tuple(default or ()) + tuple(value or ())
        elif option.many:
            typed[option.name] = dict(value or {})
        elif value is not None:
            typed[option.name] = value
        elif default is not None:
            typed[option.name] = option.read(default) if option.name == "gpus" else default
    build = BuildOptions(**{k: typed[k] for k in BUILD_OPTIONS if k in typed})
    run = RunOptions(**{k: typed[k] for k in RUN_OPTIONS + CELL_OPTIONS if k in typed})
    return build, run


def check_keys(values: Mapping[str, Any], allowed=None) -> None:
    """A request's ``options`` may only name options (a typo must not pass silently)."""
    allowed = set(allowed if allowed is not None else BY_NAME)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(allowed))}")

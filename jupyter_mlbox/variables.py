"""Variables that travel with a ``%%mlbox`` cell: ``--in`` names go into the container, ``--out``
names come back.

Values are serialized with cloudpickle into one file. The file starts with a header line that
names the Python ``major.minor`` that wrote it, so the reader can refuse a mismatch with a clear
sentence instead of failing somewhere inside unpickling. In the container a prepended cell
(:func:`loader_cell_source`) loads the inputs and an appended cell (:func:`dumper_cell_source`)
writes the outputs; the host reads that file back with :func:`unpack_variables`.

Nothing here imports IPython: the magic passes the namespace in.
"""
from __future__ import annotations

import io
import keyword
import sys
from typing import Iterable, Mapping

from .errors import SerializationError

#: Names of the files in the container's work directory.
INPUT_FILE = ".mlbox-in.pkl"
OUTPUT_FILE = ".mlbox-out.pkl"
_MAGIC = b"MLBOX-VARIABLES 1"


def python_minor() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def split_names(values: Iterable[str] | None) -> list[str]:
    """``["df,params", "model"]`` → ``["df", "params", "model"]``; raises ValueError on a name
    that is not a Python identifier."""
    names: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(f"{name!r} is not a variable name")
            if name not in names:
                names.append(name)
    return names


def _header(python: str, failures: Mapping[str, str] | None = None) -> bytes:
    failed = ";".join(f"{name}={reason}".replace("\n", " ") for name, reason in
                      (failures or {}).items())
    return _MAGIC + b" " + python.encode() + b" " + failed.encode() + b"\n"


def pack_variables(namespace: Mapping[str, object], names: Iterable[str]) -> bytes:
    """The values of ``names`` in ``namespace`` as one file; SerializationError names the value
    that cannot be sent."""
    import cloudpickle

    values = {}
    for name in names:
        if name not in namespace:
            raise SerializationError(f"--in {name}: there is no variable {name!r} in this kernel")
        value = namespace[name]
        try:
            cloudpickle.dumps(value)
        except Exception as err:  # noqa: BLE001 - pickling fails with many unrelated types
            raise SerializationError(
                f"--in {name}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
                f"sent into the container ({type(err).__name__}: {err}); recreate it inside the "
                f"cell instead") from err
        values[name] = value
    return _header(python_minor()) + cloudpickle.dumps(values)


def unpack_variables(data: bytes, *, what: str = "--out") -> dict[str, object]:
    """Read a file written by :func:`pack_variables` or the dumper cell."""
    import cloudpickle

    header, _, body = data.partition(b"\n")
    parts = header.split(b" ", 3)
    if header[:len(_MAGIC)] != _MAGIC or len(parts) < 3:
        raise SerializationError(f"{what}: the variables file is not one jupyter_mlbox wrote")
    python = parts[2].decode()
    if python != python_minor():
        raise SerializationError(
            f"{what}: the values were pickled by Python {python} but this kernel runs Python "
            f"{python_minor()}; --in/--out need the same minor version (use --base "
            f"python:{python_minor()}-slim)")
    failures = parts[3].decode() if len(parts) > 3 else ""
    if failures.strip():
        reasons = "; ".join(item.replace("=", ": ", 1) for item in failures.split(";") if item)
        raise SerializationError(f"{what}: could not bring back {reasons}")
    try:
        return cloudpickle.load(io.BytesIO(body))
    except Exception as err:  # noqa: BLE001
        raise SerializationError(f"{what}: the values could not be unpickled in this kernel "
                                 f"({type(err).__name__}: {err}); is every package they need "
                                 f"installed here too?") from err


def loader_cell_source(names: Iterable[str], filename: str = INPUT_FILE) -> str:
    """A cell that binds the ``--in`` values in the container's namespace."""
    return f"""\
# jupyter_mlbox: --in {', '.join(names)}
def __mlbox_load(path={filename!r}, expected={python_minor()!r}):
    import sys, cloudpickle
    with open(path, "rb") as handle:
        header = handle.readline().split(b" ")
        python = header[2].decode() if len(header) > 2 else "?"
        here = "%d.%d" % sys.version_info[:2]
        if python != here:
            raise RuntimeError("--in: the kernel runs Python %s but the container runs Python %s;"
                               " --in/--out need the same minor version (use --base "
                               "python:%s-slim)" % (python, here, python))
        return cloudpickle.load(handle)
globals().update(__mlbox_load())
del __mlbox_load
"""


def dumper_cell_source(names: Iterable[str], filename: str = OUTPUT_FILE) -> str:
    """A cell that writes the ``--out`` values to ``filename``; it never raises, a value that
    is missing or cannot be pickled is recorded in the header instead."""
    return f"""\
# jupyter_mlbox: --out {', '.join(names)}
def __mlbox_dump(names={list(names)!r}, path={filename!r}):
    import sys, cloudpickle
    values, failures = {{}}, {{}}
    namespace = globals()
    for name in names:
        if name not in namespace:
            failures[name] = "the cell did not define it"
            continue
        try:
            cloudpickle.dumps(namespace[name])
            values[name] = namespace[name]
        except Exception as err:
            failures[name] = "%s cannot be pickled (%s: %s)" % (
                type(namespace[name]).__name__, type(err).__name__, str(err)[:200])
    failed = ";".join(("%s=%s" % item).replace("\\n", " ").replace(";", ",")
                      for item in failures.items())
    with open(path, "wb") as handle:
        header = "{_MAGIC.decode()} %d.%d %s\\n" % (sys.version_info[:2] + (failed,))
        handle.write(header.encode())
        if not failures:
            cloudpickle.dump(values, handle)
__mlbox_dump()
del __mlbox_dump
"""

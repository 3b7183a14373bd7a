"""Variables that travel with a ``%%mlbox`` cell: ``--in`` names go into the container, ``--out``
names come back.

The two directions trust differently. ``--in`` is written by this kernel and read in the
container, so it stays cloudpickle (the kernel trusts itself). ``--out`` is written by code in
the container — the notebook, and any package in the image — and read here, so by default it
only holds formats whose readers cannot run code: JSON (builtins, tagged so tuples, sets, bytes,
numpy scalars and non-str dict keys survive), raw bytes, ``.npy`` read with
``allow_pickle=False``, Arrow IPC for pandas objects, and skops for scikit-learn estimators
(only skops' default-trusted types). Anything else needs ``--out-pickle``: then the container's
code is trusted by this kernel, and cloudpickle carries what the safe formats cannot.

The ``--out`` file (:func:`dumper_cell_source` writes it in the container, :func:`read_out_values`
reads it here)::

    MLBOX-VARIABLES 2 <header length>\\n
    <header: JSON {"python": "3.11", "values": [{"name", "format", "size", "meta"}, ...],
                   "failures": [{"name", "type", "reason"}, ...]}>
    <the values' bytes, one after the other, each of its "size">

Nothing here imports IPython: the magic passes the namespace in.
"""
from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import inspect
import io
import json
import keyword
import re
import sys
from typing import Iterable, Mapping

from .errors import SerializationError

#: Names of the files in the container's work directory.
INPUT_FILE = ".mlbox-in.pkl"
OUTPUT_FILE = ".mlbox-out.bin"
_MAGIC = b"MLBOX-VARIABLES 1"
_OUT_MAGIC = b"MLBOX-VARIABLES 2"
#: The header is names, formats and sizes: a megabyte is far more than any real one.
MAX_HEADER_BYTES = 1 << 20
#: How deep the JSON of one value may nest (the reader is recursive).
MAX_JSON_DEPTH = 100
#: The formats the host reads; anything else in a header is refused.
SAFE_FORMATS = frozenset({"json", "bytes", "npy", "arrow", "skops"})
#: Readers older than these run code from a file: pyarrow < 14.0.1 unpickles
#: ``arrow.py_extension_type`` (CVE-2023-47248); skops < 0.12 could be led to load untrusted
#: types (CVE-2025-54412, CVE-2025-54413).
MIN_PYARROW = (14, 0, 1)
MIN_SKOPS = (0, 12)
PICKLE_HINT = ("or add --out-pickle to bring it back with cloudpickle (then this kernel trusts "
               "the code in the container)")
TRUST_NOTICE = ("--out-pickle: values that need it come back with cloudpickle, so the code in "
                "the container (the cell and every package in the image) is trusted by this "
                "kernel")


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


# --- --in: this kernel → the container (cloudpickle) ------------------------------------------

def _header(python: str) -> bytes:
    return _MAGIC + b" " + python.encode() + b" \n"


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


# --- --out: the container → this kernel (safe formats; pickle only when trusted) -------------

#: The safe format of the values a distribution makes, and the package that writes it.
WRITERS = {"pandas": "pyarrow", "scikit-learn": "skops"}


def writer_requirements(requirements: Iterable[str], exclude: Iterable[str] = ()
                        ) -> list[str]:
    """Pins, at this kernel's versions, of the packages that write the safe formats of the
    values the image can make (pyarrow when it has pandas, skops when it has scikit-learn), when
    this kernel can read them: ``--out df,model`` then needs no ``--pip``. ``exclude``d ones
    are not added."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from .core.distributions import installable_pin

    names = {canonicalize_name(Requirement(text).name) for text in requirements}
    taken = names | {canonicalize_name(name) for name in exclude}
    readable = reader_capabilities()
    return [installable_pin(writer, readable[writer])[0]
            for maker, writer in WRITERS.items()
            if maker in names and writer not in taken and readable[writer]
            and not readable[writer].startswith("old:")]


def _version(distribution: str) -> tuple[str, tuple[int, ...]] | None:
    try:
        text = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return text, tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def reader_capabilities() -> dict:
    """What this kernel can read safely, told to the dumper cell so the container refuses a
    value with the right fix instead of sending what the host would refuse: a package missing
    here is None, a too old one ``"old:<version>"``."""
    def usable(distribution: str, minimum: tuple[int, ...]) -> str | None:
        found = _version(distribution)
        if found is None:
            return None
        return found[0] if found[1] >= minimum else f"old:{found[0]}"

    return {"numpy": _version("numpy") is not None, "pandas": _version("pandas") is not None,
            "pyarrow": usable("pyarrow", MIN_PYARROW), "skops": usable("skops", MIN_SKOPS)}


def _write_out_values(names, path, out_pickle, host, namespace):  # pragma: no cover - in container
    """Runs in the container (its source is the dumper cell): write each ``--out`` value in a
    format the host can read without running code; never raises, a value that cannot come back
    is recorded as a failure. Self-contained: stdlib imports only, numpy/pandas/pyarrow/skops
    are used only if the value needs them."""
    import base64 as b64
    import io as _io
    import json as _json
    import sys as _sys

    class Unsupported(Exception):
        pass

    def type_name(value):
        kind = type(value)
        return "%s.%s" % (kind.__module__, kind.__qualname__)

    def tagged(value, depth=0):
        """JSON-able builtins, tagged: a JSON object is always a tag (tuple, dict, ...)."""
        if depth > 100:
            raise Unsupported("it nests more than 100 levels deep")
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if kind is list:
            return [tagged(item, depth + 1) for item in value]
        if kind is tuple:
            return {"tuple": [tagged(item, depth + 1) for item in value]}
        if kind in (set, frozenset):
            return {kind.__name__: [tagged(item, depth + 1) for item in value]}
        if kind is dict:
            return {"dict": [[tagged(k, depth + 1), tagged(v, depth + 1)]
                             for k, v in value.items()]}
        if kind is bytes:
            return {"bytes": b64.b64encode(value).decode("ascii")}
        numpy = _sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.generic) \
                and value.dtype.kind in "biuf" and host.get("numpy"):
            return {"numpy": [value.dtype.name, value.item()]}
        raise Unsupported("a %s inside it is not a JSON-able builtin" % type_name(value))

    def missing(package, what):
        here = host.get(package)
        version = here if isinstance(here, str) and not here.startswith("old:") else None
        try:
            __import__(package)
        except ImportError:
            pin = "%s==%s" % (package, version) if version else package
            return ("%s comes back safely only with %s in the container too: add --pip %s "
                    "(or import %s in the cell)" % (what, package, pin, package))
        if not here:
            return ("%s comes back safely only with %s in the kernel too: install it there "
                    "(pip install %s)" % (what, package, package))
        if here.startswith("old:"):
            return ("%s comes back safely only with a newer %s in the kernel (it has %s, "
                    "whose reader is not safe): upgrade it there" % (what, package, here[4:]))
        return None

    def safe(value):
        """(format, bytes, meta) or raise Unsupported with the reason."""
        kind = type(value)
        if kind is bytes:
            return "bytes", value, {}
        try:
            return "json", _json.dumps(tagged(value)).encode(), {}
        except Unsupported as err:
            reason = str(err)
        except (RecursionError, ValueError) as err:
            raise Unsupported("it is not JSON-able (%s: %s)" % (type(err).__name__, err))
        numpy = _sys.modules.get("numpy")
        pandas = _sys.modules.get("pandas")
        if numpy is not None and (kind is numpy.ndarray or isinstance(value, numpy.generic)):
            if not host.get("numpy"):
                raise Unsupported("a numpy value comes back only with numpy in the kernel too")
            if value.dtype.hasobject:
                raise Unsupported("a numpy array of dtype object holds Python objects, which "
                                  "only pickle can carry")
            buffer = _io.BytesIO()
            numpy.save(buffer, numpy.asarray(value), allow_pickle=False)
            return "npy", buffer.getvalue(), {"scalar": kind is not numpy.ndarray}
        if pandas is not None and kind in (pandas.DataFrame, pandas.Series):
            problem = missing("pyarrow", "a pandas %s" % kind.__name__)
            if problem:
                raise Unsupported(problem)
            import pyarrow
            meta = {"series": kind is pandas.Series}
            frame = value.to_frame(name="values") if kind is pandas.Series else value
            if kind is pandas.Series:
                meta["name"] = tagged(value.name)
            if not isinstance(frame.columns, pandas.MultiIndex) \
                    and not all(type(c) is str for c in frame.columns):
                meta["columns"] = tagged(list(frame.columns))
                frame = frame.set_axis([str(i) for i in range(frame.shape[1])], axis=1)
            try:
                table = pyarrow.Table.from_pandas(frame)
            except Exception as err:
                raise Unsupported("Arrow cannot hold it (%s: %s)"
                                  % (type(err).__name__, str(err)[:200]))
            sink = pyarrow.BufferOutputStream()
            with pyarrow.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return "arrow", sink.getvalue().to_pybytes(), meta
        if hasattr(kind, "get_params") and hasattr(kind, "fit"):
            problem = missing("skops", "a scikit-learn estimator")
            if problem:
                raise Unsupported(problem)
            import skops.io
            try:
                data = skops.io.dumps(value)
                untrusted = skops.io.get_untrusted_types(data=data)
            except Exception as err:
                raise Unsupported("skops cannot save it (%s: %s)"
                                  % (type(err).__name__, str(err)[:200]))
            if untrusted:
                raise Unsupported("skops would have to trust %s to load it, and the kernel "
                                  "trusts only skops' defaults" % ", ".join(untrusted[:10]))
            return "skops", data, {}
        raise Unsupported(reason if kind in (list, tuple, set, frozenset, dict) else
                          "not one of the types that come back safely (JSON-able builtins, "
                          "bytes, numpy arrays, pandas DataFrame/Series, scikit-learn "
                          "estimators)")

    entries, payloads, failures = [], [], []
    for name in names:
        if name not in namespace:
            failures.append({"name": name, "type": "", "reason": "the cell did not define it"})
            continue
        value = namespace[name]
        try:
            fmt, data, meta = safe(value)
        except Unsupported as err:
            if not out_pickle:
                failures.append({"name": name, "type": type_name(value), "reason": str(err)})
                continue
            try:
                import cloudpickle
                fmt, data, meta = "pickle", cloudpickle.dumps(value), {}
            except Exception as err:
                failures.append({"name": name, "type": type_name(value),
                                 "reason": "it cannot be pickled either (%s: %s)"
                                 % (type(err).__name__, str(err)[:200])})
                continue
        except Exception as err:
            failures.append({"name": name, "type": type_name(value),
                             "reason": "%s: %s" % (type(err).__name__, str(err)[:200])})
            continue
        entries.append({"name": name, "format": fmt, "size": len(data), "meta": meta})
        payloads.append(data)
    header = _json.dumps({"python": "%d.%d" % _sys.version_info[:2], "values": entries,
                          "failures": failures}).encode()
    with open(path, "wb") as handle:
        handle.write(b"MLBOX-VARIABLES 2 %d\n" % len(header))
        handle.write(header)
        for data in payloads:
            handle.write(data)


def dumper_cell_source(names: Iterable[str], filename: str = OUTPUT_FILE, *,
                       out_pickle: bool = False, host: Mapping | None = None) -> str:
    """A cell that writes the ``--out`` values to ``filename`` (see the module docstring); it
    never raises, a value that is missing or cannot come back is recorded in the header.
    ``host`` is :func:`reader_capabilities` (this kernel's, by default)."""
    host = dict(reader_capabilities() if host is None else host)
    source = inspect.getsource(_write_out_values)
    source = source.replace("  # pragma: no cover - in container", "", 1) \
        .replace("def _write_out_values(", "def __mlbox_dump(", 1)
    return (f"# jupyter_mlbox: --out {', '.join(names)}\n{source}"
            f"__mlbox_dump({list(names)!r}, {filename!r}, {bool(out_pickle)!r}, "
            f"{host!r}, globals())\ndel __mlbox_dump\n")


# --- reading --out here --------------------------------------------------------------------------

def _printable(text: object, limit: int = 400) -> str:
    """Text from the container, safe to show: no control characters (ANSI escapes), bounded."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(text))[:limit]


class _Malformed(Exception):
    pass


def _untagged(value, depth: int = 0):
    """The value :func:`_write_out_values`' ``tagged`` encoded; _Malformed for anything it
    would not have written."""
    if depth > MAX_JSON_DEPTH:
        raise _Malformed("it nests too deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_untagged(item, depth + 1) for item in value]
    if kind is not dict or len(value) != 1:
        raise _Malformed("an untagged JSON object")
    (tag, body), = value.items()
    try:
        if tag in ("tuple", "set", "frozenset") and type(body) is list:
            items = [_untagged(item, depth + 1) for item in body]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "dict" and type(body) is list:
            result = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise _Malformed("a dict item is not a pair")
                result[_untagged(pair[0], depth + 1)] = _untagged(pair[1], depth + 1)
            return result
        if tag == "bytes" and type(body) is str:
            return base64.b64decode(body, validate=True)
        if tag == "numpy" and type(body) is list and len(body) == 2 and type(body[0]) is str:
            import numpy

            dtype = numpy.dtype(body[0]) if re.fullmatch(r"(bool|u?int\d+|float\d+)", body[0]) \
                else None
            if dtype is None or type(body[1]) not in (bool, int, float):
                raise _Malformed(f"numpy scalar {body[0]!r}")
            return dtype.type(body[1])
    except TypeError as err:  # an unhashable set item or dict key
        raise _Malformed(str(err)) from None
    except (ValueError, OverflowError) as err:  # bad base64, an int that overflows its dtype
        raise _Malformed(str(err)) from None
    raise _Malformed(f"unknown tag {_printable(tag, 40)!r}")


def _require(distribution: str, minimum: tuple[int, ...], what: str) -> None:
    found = _version(distribution)
    if found is None:
        raise _Malformed(f"it came back as {what}, which needs {distribution} in this kernel "
                         f"(pip install {distribution})")
    if found[1] < minimum:
        raise _Malformed(f"it came back as {what}, but this kernel's {distribution} "
                         f"{found[0]} has no safe reader for it: upgrade to "
                         f">={'.'.join(map(str, minimum))}")


def _read_json(data: bytes, meta: Mapping):
    try:
        return _untagged(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise _Malformed(f"its JSON is invalid ({type(err).__name__})") from None


def _read_npy(data: bytes, meta: Mapping):
    _require("numpy", (0,), "a numpy array")
    import numpy

    if not data.startswith(b"\x93NUMPY"):
        raise _Malformed("it is not a .npy array")
    try:
        array = numpy.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise _Malformed(f"its .npy array is refused ({_printable(err, 200)})") from None
    if meta.get("scalar") is True:
        if array.ndim != 0:
            raise _Malformed("a numpy scalar with dimensions")
        return array[()]
    return array


def _read_arrow(data: bytes, meta: Mapping):
    _require("pandas", (0,), "a pandas object")
    _require("pyarrow", MIN_PYARROW, "a pandas object (Arrow IPC)")
    import pandas
    import pyarrow

    try:
        frame = pyarrow.ipc.open_stream(pyarrow.BufferReader(data)).read_all().to_pandas()
    except (pyarrow.ArrowException, ValueError, TypeError, KeyError) as err:
        raise _Malformed(f"its Arrow data is refused ({_printable(err, 200)})") from None
    if "columns" in meta:
        columns = _untagged(meta["columns"])
        if type(columns) is not list or len(columns) != frame.shape[1]:
            raise _Malformed("its column names do not match its columns")
        frame.columns = pandas.Index(columns, tupleize_cols=False)
    if meta.get("series") is True:
        if frame.shape[1] != 1:
            raise _Malformed("a Series with more than one column")
        series = frame.iloc[:, 0]
        series.name = _untagged(meta.get("name"))
        return series
    return frame


def _read_skops(data: bytes, meta: Mapping):
    _require("skops", MIN_SKOPS, "a scikit-learn estimator (skops)")
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as err:  # noqa: BLE001 - a malformed zip fails in many ways
        raise _Malformed(f"its skops file is refused ({type(err).__name__}: "
                         f"{_printable(err, 200)})") from None
    if untrusted:
        raise _Malformed(f"its skops file holds types skops does not trust by default: "
                         f"{_printable(', '.join(map(str, untrusted[:10])), 300)}")
    try:
        return skops.io.loads(data, trusted=[])  # only skops' default-trusted types
    except Exception as err:  # noqa: BLE001
        raise _Malformed(f"its skops file is refused ({type(err).__name__}: "
                         f"{_printable(err, 200)})") from None


_READERS = {"json": _read_json, "bytes": lambda data, meta: bytes(data), "npy": _read_npy,
            "arrow": _read_arrow, "skops": _read_skops}


def _failure_message(failures: list, out_pickle: bool) -> str:
    lines = []
    for failure in failures:
        if type(failure) is not dict:
            raise SerializationError("--out: the variables file is malformed (a failure)")
        name, kind = _printable(failure.get("name"), 80), _printable(failure.get("type"), 200)
        line = f"{name}" + (f" (a {kind})" if kind else "") + \
            f": {_printable(failure.get('reason'))}"
        if kind and not out_pickle:
            line += f"; {PICKLE_HINT}"
        lines.append(line)
    if len(lines) == 1:
        return f"--out: could not bring back {lines[0]}"
    return "--out: could not bring back:\n" + "\n".join(f"  {line}" for line in lines)


def read_out_values(data: bytes, names: Iterable[str], *, out_pickle: bool = False
                    ) -> dict[str, object]:
    """The ``--out`` values in ``data`` (the dumper cell's file), each read with its safe
    reader; cloudpickle only for values marked ``pickle`` and only when ``out_pickle``.

    Raises SerializationError naming the value and the fix. The layout is parsed defensively:
    only ``names`` may come back, sizes must add up, unknown formats are refused."""
    expected = list(names)
    line, newline, rest = data[:len(_OUT_MAGIC) + 24].partition(b"\n")
    parts = line.split(b" ")
    if not newline or len(parts) != 3 or b" ".join(parts[:2]) != _OUT_MAGIC \
            or not parts[2].isdigit():
        raise SerializationError("--out: the variables file is not one jupyter_mlbox wrote")
    header_size = int(parts[2])
    if header_size > MAX_HEADER_BYTES:
        raise SerializationError(f"--out: the variables file's header is over "
                                 f"{MAX_HEADER_BYTES} bytes; refused")
    start = len(line) + 1
    body = memoryview(data)[start + header_size:]
    try:
        header = json.loads(bytes(data[start:start + header_size]).decode("utf-8"))
        values, failures = header["values"], header["failures"]
        python = header["python"]
        if type(values) is not list or type(failures) is not list or type(python) is not str:
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError):
        raise SerializationError("--out: the variables file's header is malformed") from None
    if failures:
        raise SerializationError(_failure_message(failures, out_pickle))
    result: dict[str, object] = {}
    offset = 0
    for entry in values:
        if type(entry) is not dict or type(entry.get("name")) is not str \
                or type(entry.get("size")) is not int or entry["size"] < 0 \
                or type(entry.get("meta", {})) is not dict:
            raise SerializationError("--out: the variables file's header is malformed")
        name, fmt, size = entry["name"], entry.get("format"), entry["size"]
        if name not in expected or name in result:
            raise SerializationError(f"--out: the variables file holds "
                                     f"{_printable(name, 80)!r}, which was not asked for")
        if offset + size > len(body):
            raise SerializationError(f"--out {name}: the variables file is truncated")
        chunk = bytes(body[offset:offset + size])
        offset += size
        if fmt == "pickle":
            result[name] = _read_pickle(name, chunk, python, out_pickle)
            continue
        reader = _READERS.get(fmt) if type(fmt) is str else None
        if reader is None:
            raise SerializationError(f"--out {name}: unknown format "
                                     f"{_printable(fmt, 40)!r} in the variables file; refused")
        try:
            result[name] = reader(chunk, entry.get("meta", {}))
        except _Malformed as err:
            raise SerializationError(f"--out {name} ({fmt}): {err}") from None
    if offset != len(body):
        raise SerializationError("--out: the variables file has bytes no value claims; refused")
    missing = [name for name in expected if name not in result]
    if missing:
        raise SerializationError(f"--out: the variables file lacks {', '.join(missing)}")
    return result


def _read_pickle(name: str, data: bytes, python: str, out_pickle: bool):
    if not out_pickle:
        raise SerializationError(
            f"--out {name}: the container sent it as a pickle, which this kernel reads only "
            f"with --out-pickle (reading it runs code from the container)")
    import cloudpickle

    if python != python_minor():
        raise SerializationError(
            f"--out {name}: the value was pickled by Python {_printable(python, 20)} but this "
            f"kernel runs Python {python_minor()}; pickles need the same minor version (use "
            f"--base python:{python_minor()}-slim)")
    try:
        return cloudpickle.loads(data)
    except Exception as err:  # noqa: BLE001
        raise SerializationError(f"--out {name}: it could not be unpickled in this kernel "
                                 f"({type(err).__name__}: {err}); is every package it needs "
                                 f"installed here too?") from err

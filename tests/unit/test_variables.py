"""--out readers: values come back in formats that cannot run code here, and forged files are
refused without running anything (a marker file a pickle would create never appears)."""
from __future__ import annotations

import io
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mlbox import variables
from jupyter_mlbox.core.docker_engine import _CappedStream
from jupyter_mlbox.errors import FileTooLargeError, SerializationError
from jupyter_mlbox.variables import (OUTPUT_FILE, dumper_cell_source, read_out_values,
                                     reader_capabilities)


def dumped(tmp_path, monkeypatch, values: dict, *, out_pickle=False, host=None,
           names=None) -> bytes:
    """Run the dumper cell the container would run, here, on ``values``; its file's bytes."""
    monkeypatch.chdir(tmp_path)
    namespace = dict(values)
    exec(dumper_cell_source(list(names or values), out_pickle=out_pickle, host=host), namespace)
    return (tmp_path / OUTPUT_FILE).read_bytes()


def round_trip(tmp_path, monkeypatch, values: dict, **kwargs) -> dict:
    return read_out_values(dumped(tmp_path, monkeypatch, values, **kwargs), list(values),
                           out_pickle=kwargs.get("out_pickle", False))


def forged(entries: list[tuple[str, str, bytes, dict]], *, python=None) -> bytes:
    """A variables file as a hostile container could write it: any header, any bytes."""
    header = json.dumps({"python": python or variables.python_minor(), "failures": [],
                         "values": [{"name": n, "format": f, "size": len(d), "meta": m}
                                    for n, f, d, m in entries]}).encode()
    return b"MLBOX-VARIABLES 2 %d\n" % len(header) + header + b"".join(d for *_, d, _ in entries)


class Evil:
    """Unpickling (or loading through a reader that honours __reduce__) creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


# --- what comes back, and as what ----------------------------------------------------------------

def test_builtins_keep_their_types_tuples_sets_and_non_str_keys(tmp_path, monkeypatch):
    value = {"t": (1, [2.5, None, True]), 3: "int key", (1, "a"): b"\x00bytes",
             "s": {1, 2}, "f": frozenset({"x"}), "big": 10 ** 30, "nan": float("nan"),
             "np": [np.float64(0.25), np.int32(7), np.bool_(True)]}
    back = round_trip(tmp_path, monkeypatch, {"value": value, "text": "é", "none": None})
    got = back["value"]
    assert got["t"] == (1, [2.5, None, True]) and type(got["t"]) is tuple
    assert got[3] == "int key" and got[(1, "a")] == b"\x00bytes"
    assert got["s"] == {1, 2} and type(got["f"]) is frozenset and got["big"] == 10 ** 30
    assert got["nan"] != got["nan"]
    assert [type(x) for x in got["np"]] == [np.float64, np.int32, np.bool_]
    assert got["np"][0] == 0.25 and back["text"] == "é" and back["none"] is None


def test_bytes_and_numpy_arrays_come_back_exactly(tmp_path, monkeypatch):
    structured = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    values = {"raw": b"\x80\x04 not a pickle", "arr": np.arange(12, dtype=np.int16).reshape(3, 4),
              "rec": structured, "when": np.datetime64("2024-01-02")}
    back = round_trip(tmp_path, monkeypatch, values)
    assert back["raw"] == values["raw"]
    assert back["arr"].dtype == np.int16 and (back["arr"] == values["arr"]).all()
    assert back["rec"].dtype == structured.dtype and back["rec"][0]["b"] == 2.0
    assert type(back["when"]) is np.datetime64 and back["when"] == values["when"]


def test_dataframe_and_series_through_arrow(tmp_path, monkeypatch):
    df = pd.DataFrame({"x": [1, 2], 0: ["a", "b"]}, index=pd.Index(["r1", "r2"], name="i"))
    series = pd.Series([1.5, None], name=("a", 1))
    data = dumped(tmp_path, monkeypatch, {"df": df, "series": series})
    assert b'"format": "arrow"' in data
    back = read_out_values(data, ["df", "series"])
    pd.testing.assert_frame_equal(back["df"], df)
    assert list(back["df"].columns) == ["x", 0]  # the int column name survives
    pd.testing.assert_series_equal(back["series"], series)


def test_estimator_through_skops_default_trusted_types_only(tmp_path, monkeypatch):
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=3.0).fit([[0], [1], [2], [3]], [0, 0, 1, 1])
    data = dumped(tmp_path, monkeypatch, {"model": model})
    assert b'"format": "skops"' in data
    back = read_out_values(data, ["model"])["model"]
    assert type(back) is LogisticRegression and back.C == 3.0
    assert (back.predict([[0], [3]]) == [0, 1]).all()


class Custom:
    def __init__(self, v):
        self.v = v


def test_unsupported_value_names_itself_its_type_and_the_flag(tmp_path, monkeypatch):
    data = dumped(tmp_path, monkeypatch, {"thing": Custom(1), "ok": 1,
                                          "nested": {"a": [Custom(2)]}})
    with pytest.raises(SerializationError) as caught:
        read_out_values(data, ["thing", "ok", "nested"])
    message = str(caught.value)
    assert "thing (a tests.unit.test_variables.Custom)" in message
    assert "nested (a builtins.dict): a tests.unit.test_variables.Custom inside it" in message
    assert message.count("--out-pickle") == 2
    assert [line.split()[0] for line in message.splitlines()[1:]] == ["thing", "nested"]


def test_out_pickle_brings_back_what_the_safe_formats_cannot(tmp_path, monkeypatch):
    back = round_trip(tmp_path, monkeypatch, {"thing": Custom(5), "n": 3}, out_pickle=True)
    assert back["thing"].v == 5 and back["n"] == 3
    data = (tmp_path / OUTPUT_FILE).read_bytes()
    assert b'"name": "n", "format": "json"' in data  # safe formats still come first


def test_pickle_is_refused_without_the_flag_even_if_the_container_sent_one(tmp_path,
                                                                            monkeypatch):
    data = dumped(tmp_path, monkeypatch, {"thing": Custom(5)}, out_pickle=True)
    with pytest.raises(SerializationError, match="thing: the container sent it as a pickle.*"
                                                 "only with --out-pickle"):
        read_out_values(data, ["thing"])


def test_object_arrays_are_refused_in_the_container(tmp_path, monkeypatch):
    data = dumped(tmp_path, monkeypatch, {"objs": np.array([Custom(1)], dtype=object)})
    with pytest.raises(SerializationError, match=r"objs \(a numpy.ndarray\): a numpy array of "
                                                 r"dtype object.*--out-pickle"):
        read_out_values(data, ["objs"])


# --- what the container lacks, what this kernel lacks -------------------------------------------

def test_container_without_pyarrow_is_told_which_pin_to_add(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails, as in the image
    host = dict(reader_capabilities(), pyarrow="26.0.1")
    data = dumped(tmp_path, monkeypatch, {"df": pd.DataFrame({"a": [1]})}, host=host)
    with pytest.raises(SerializationError) as caught:
        read_out_values(data, ["df"])
    assert ("df (a pandas.DataFrame): a pandas DataFrame comes back safely only with pyarrow "
            "in the container too: add --pip pyarrow==26.0.1") in str(caught.value)
    assert "--out-pickle" in str(caught.value)


def test_kernel_without_pyarrow_or_skops_says_so(tmp_path, monkeypatch):
    host = dict(reader_capabilities(), pyarrow=None)
    data = dumped(tmp_path, monkeypatch, {"df": pd.DataFrame({"a": [1]})}, host=host)
    with pytest.raises(SerializationError, match="only with pyarrow in the kernel too: install "
                                                 "it there.*--out-pickle"):
        read_out_values(data, ["df"])
    # and the reader checks for itself, whatever the container believed
    real = dumped(tmp_path, monkeypatch, {"df": pd.DataFrame({"a": [1]})})
    monkeypatch.setattr(variables, "_version",
                        lambda name: None if name == "pyarrow" else ("9", (9,)))
    with pytest.raises(SerializationError, match=r"df \(arrow\): it came back as a pandas "
                                                 r"object.*needs pyarrow in this kernel"):
        read_out_values(real, ["df"])


def test_a_pyarrow_too_old_to_read_safely_is_refused(tmp_path, monkeypatch):
    data = dumped(tmp_path, monkeypatch, {"df": pd.DataFrame({"a": [1]})})
    monkeypatch.setattr(variables, "_version",
                        lambda name: ("13.0.0", (13, 0, 0)) if name == "pyarrow" else ("9", (9,)))
    with pytest.raises(SerializationError, match=r"pyarrow 13\.0\.0 has no safe reader.*"
                                                 r">=14\.0\.1"):
        read_out_values(data, ["df"])


# --- forged files: nothing runs ------------------------------------------------------------------

@pytest.mark.parametrize("fmt, message", [
    ("json", "its JSON is invalid"),
    ("npy", "not a .npy array"),
    ("arrow", "its Arrow data is refused"),
    ("skops", "its skops file is refused"),
    ("pickle", "only with --out-pickle"),
    ("cloudpickle", "unknown format 'cloudpickle'"),
])
def test_a_pickle_behind_any_claimed_format_never_runs(tmp_path, fmt, message):
    if fmt == "skops":
        pytest.importorskip("skops")
    marker = tmp_path / "pwned"
    data = forged([("x", fmt, pickle.dumps(Evil(marker)), {})])
    with pytest.raises(SerializationError, match=message):
        read_out_values(data, ["x"])
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(Evil(marker))) == 0 and marker.exists()  # it would have


def test_an_object_npy_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil(marker)], dtype=object), allow_pickle=True)
    for meta in ({}, {"scalar": True}):
        with pytest.raises(SerializationError, match=r"x \(npy\): its .npy array is refused "
                                                     r"\(Object arrays cannot be loaded"):
            read_out_values(forged([("x", "npy", buffer.getvalue(), meta)]), ["x"])
    assert not marker.exists()


def test_a_skops_file_with_an_untrusted_type_is_refused(tmp_path):
    skops_io = pytest.importorskip("skops.io")
    from sklearn.preprocessing import FunctionTransformer

    marker = tmp_path / "pwned"
    data = skops_io.dumps(FunctionTransformer(func=os.system, kw_args={"command": "x"}))
    data_custom = skops_io.dumps(Custom(Evil(marker)))
    for payload in (data, data_custom):
        with pytest.raises(SerializationError, match=r"x \(skops\): its skops file holds types "
                                                     r"skops does not trust by default: .*"):
            read_out_values(forged([("x", "skops", payload, {})]), ["x"])
    assert not marker.exists()


@pytest.mark.parametrize("body", [
    {"__reduce__": ["os.system", "touch x"]},  # an unknown tag
    {"tuple": [1], "extra": 2},                 # an untagged object
    {"dict": [[[1, 2], "a list as a key"]]},
    {"numpy": ["object", 1]},                   # only bool/int/float scalars
    {"bytes": "not base64!"},
])
def test_json_that_the_dumper_would_not_write_is_refused(body):
    with pytest.raises(SerializationError, match=r"x \(json\): "):
        read_out_values(forged([("x", "json", json.dumps(body).encode(), {})]), ["x"])


def test_json_nested_deeper_than_the_limit_is_refused():
    deep = b"[" * 5000 + b"]" * 5000
    with pytest.raises(SerializationError, match=r"x \(json\)"):
        read_out_values(forged([("x", "json", deep, {})]), ["x"])


@pytest.mark.parametrize("data, message", [
    (b"MLBOX-VARIABLES 1 3.11 \n\x80\x04", "not one jupyter_mlbox wrote"),
    (b"MLBOX-VARIABLES 2 99999999999\n{}", "header is over"),
    (b"MLBOX-VARIABLES 2 5\n[1, 2", "header is malformed"),
    (b"garbage", "not one jupyter_mlbox wrote"),
])
def test_a_malformed_layout_is_refused(data, message):
    with pytest.raises(SerializationError, match=message):
        read_out_values(data, ["x"])


def test_sizes_names_and_leftovers_are_checked():
    good = forged([("x", "bytes", b"abc", {})])
    assert read_out_values(good, ["x"]) == {"x": b"abc"}
    with pytest.raises(SerializationError, match="truncated"):
        read_out_values(good[:-1], ["x"])
    with pytest.raises(SerializationError, match="bytes no value claims"):
        read_out_values(good + b"more", ["x"])
    with pytest.raises(SerializationError, match="'__builtins__', which was not asked for"):
        read_out_values(forged([("__builtins__", "json", b"{}", {})]), ["x"])
    with pytest.raises(SerializationError, match="lacks y"):
        read_out_values(good, ["x", "y"])
    negative = good.replace(b'"size": 3', b'"size": -3')
    with pytest.raises(SerializationError, match="header is malformed"):
        read_out_values(negative, ["x"])


def test_text_from_the_container_cannot_carry_terminal_escapes():
    header = json.dumps({"python": "3.11", "values": [], "failures": [
        {"name": "x", "type": "t", "reason": "\x1b[2J\x1b[31mfake\nlines"}]}).encode()
    with pytest.raises(SerializationError) as caught:
        read_out_values(b"MLBOX-VARIABLES 2 %d\n" % len(header) + header, ["x"])
    assert "\x1b" not in str(caught.value) and "fake lines" in str(caught.value)


# --- the cap on what is copied out of a container -------------------------------------------------

def test_the_capped_stream_stops_an_endless_file():
    pulled = []

    def endless():
        while True:
            pulled.append(1)
            yield b"x" * 1000

    stream = _CappedStream(endless(), 10_000, lambda: FileTooLargeError("over", limit=10_000))
    with pytest.raises(FileTooLargeError):
        stream.read()
    assert len(pulled) == 11  # it stopped at the first chunk over the cap
    small = _CappedStream(iter([b"ab", b"cd"]), 10, lambda: FileTooLargeError("", limit=10))
    assert small.read() == b"abcd"


def test_the_image_gets_the_writers_of_the_safe_formats_its_values_need():
    """pandas in the image → pyarrow, scikit-learn → skops, at this kernel's versions; nothing
    for an image without them, and nothing the user excluded."""
    from importlib.metadata import version

    from jupyter_mlbox.variables import writer_requirements

    assert writer_requirements(["pandas==1", "scikit-learn==1"]) == [
        f"pyarrow=={version('pyarrow')}", f"skops=={version('skops')}"]
    assert writer_requirements(["numpy==2", "requests"]) == []
    assert writer_requirements(["pandas", "scikit-learn"], exclude=["skops"]) == \
        [f"pyarrow=={version('pyarrow')}"]
    assert writer_requirements(["pandas", "pyarrow==1"]) == []  # the notebook's own pin stays

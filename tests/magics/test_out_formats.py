"""``%%mlbox --out`` in a real kernel against the real daemon: values come back in formats that
cannot run code here; anything else needs ``--out-pickle`` (or ``c.MlboxDefaults.out_pickle``);
a file over the cap on what is copied out of a container stops with an error naming the cap."""
from __future__ import annotations

import importlib.metadata
import json

import pytest

from .helpers import COMMON_IMPORTS, execute_notebook, of_type, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]

LOAD = "%load_ext jupyter_mlbox"
TRUSTED = "is trusted by this kernel"


def no_errors(nb):
    for cell in nb.cells:
        assert not of_type(cell, "error"), of_type(cell, "error")


def test_builtins_bytes_and_numpy_arrays_come_back_without_pickle(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --out info,raw,arr,score\n"
        "import numpy as np\n"
        "info = {'pair': (1, 2), 3: ['x', None], 'ok': True}\n"
        "raw = bytes(range(5))\n"
        "arr = np.arange(6, dtype=np.float32).reshape(2, 3)\n"
        "score = np.float64(0.75)",
        "print(info, raw, type(arr).__name__, arr.dtype, arr.shape, float(arr.sum()), "
        "type(score).__name__, score)",
    ], tmp_path)
    no_errors(nb)
    assert TRUSTED not in streams(nb.cells[2], "stderr")
    assert streams(nb.cells[3], "stdout") == (
        "{'pair': (1, 2), 3: ['x', None], 'ok': True} b'\\x00\\x01\\x02\\x03\\x04' ndarray "
        "float32 (2, 3) 15.0 float64 0.75\n")


def test_an_arbitrary_object_needs_out_pickle_and_then_comes_back(tmp_path, shared_image):
    define = "class Thing:\n    def __init__(self, v):\n        self.v = v\nthing = Thing(41)"
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        f"%%mlbox --quiet --out thing\n{define}",
        "print('thing' in dir())",
        f"%%mlbox --quiet --out-pickle --out thing\n{define}",
        "print(type(thing).__name__, thing.v + 1)",
    ], tmp_path)
    (error,) = of_type(nb.cells[2], "error")
    assert error.ename == "SerializationError"
    assert "thing (a __main__.Thing)" in error.evalue and "--out-pickle" in error.evalue
    assert streams(nb.cells[3], "stdout") == "False\n"
    assert not of_type(nb.cells[4], "error"), of_type(nb.cells[4], "error")
    assert TRUSTED in streams(nb.cells[4], "stderr")  # one line says so, even with --quiet
    assert streams(nb.cells[5], "stdout") == "Thing 42\n"


def test_configured_out_pickle_default(tmp_path, shared_image):
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_mlbox_config.json").write_text(
        json.dumps({"MlboxDefaults": {"out_pickle": True}}))
    work = tmp_path / "work"
    work.mkdir()
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --quiet --out gen_sum\ngen_sum = sum\n",
        "print(gen_sum([1, 2]))",
    ], work, JUPYTER_CONFIG_DIR=str(config))
    no_errors(nb)
    assert TRUSTED in streams(nb.cells[2], "stderr")
    assert streams(nb.cells[3], "stdout") == "3\n"


def test_dataframes_and_estimators_come_back_through_arrow_and_skops(tmp_path, shared_image):
    """pandas and scikit-learn in the image bring their safe formats' writers (pyarrow, skops)
    at this kernel's versions, so a DataFrame and a model come back with no --pip and no
    pickle; without skops there (--exclude skops) the error names the pin to add."""
    skops = importlib.metadata.version("skops")
    fit = ("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
           "df = pd.DataFrame({'x': [0, 1, 2, 3], 'y': [0, 0, 1, 1]})\n"
           "model = LogisticRegression(C=2.0).fit(df[['x']], df.y)\n")
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        f"%%mlbox --quiet --exclude skops --out model\n{fit}",
        f"%%mlbox --quiet --out df,model\n{fit}",
        "print(type(df).__name__, df.x.sum(), list(df.columns), type(model).__name__, model.C,"
        " list(model.predict(pd.DataFrame({'x': [0, 3]}))))",
    ], tmp_path)
    (error,) = of_type(nb.cells[2], "error")
    assert error.ename == "SerializationError"
    assert (f"model (a sklearn.linear_model._logistic.LogisticRegression): a scikit-learn "
            f"estimator comes back safely only with skops in the container too: add --pip "
            f"skops=={skops}") in error.evalue and "--out-pickle" in error.evalue
    assert not of_type(nb.cells[3], "error"), of_type(nb.cells[3], "error")
    assert TRUSTED not in streams(nb.cells[3], "stderr")
    assert streams(nb.cells[4], "stdout") == (
        "DataFrame 6 ['x', 'y'] LogisticRegression 2.0 [np.int64(0), np.int64(1)]\n")


def test_files_over_the_cap_stop_with_an_error_naming_it(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "import jupyter_mlbox.core.docker_engine as docker_engine\n"
        "docker_engine.MAX_FILE_BYTES = 1 << 20",
        "%%mlbox --quiet --out big\nbig = b'x' * (8 << 20)",
        "%%mlbox --quiet\nprint('y' * (3 << 20))",
        "%%mlbox --quiet --out small\nsmall = 5",
        "print('big' in dir(), small)",
    ], tmp_path)
    for index, what in ((3, ".mlbox-out.bin"), (4, ".ipynb")):
        (error,) = of_type(nb.cells[index], "error")
        assert error.ename == "FileTooLargeError", error
        assert what in error.evalue and "over the 1.0 MiB cap" in error.evalue
        assert "MAX_FILE_BYTES" in error.evalue
    # the engine stopped reading mid-stream and still works
    assert not of_type(nb.cells[5], "error"), of_type(nb.cells[5], "error")
    assert streams(nb.cells[6], "stdout") == "False 5\n"

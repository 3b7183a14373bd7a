"""Argument parsing, help, --with-setup cell selection and --in/--out serialization: a real
IPython shell, no daemon."""
from __future__ import annotations

import threading

import pytest
from IPython.core.error import UsageError

from jupyter_mlbox.core.options import GpuRequest
from jupyter_mlbox.errors import SerializationError
from jupyter_mlbox.magics import is_setup_cell
from jupyter_mlbox.variables import (OUTPUT_FILE, dumper_cell_source, loader_cell_source,
                                     pack_variables, read_out_values, split_names)


@pytest.mark.parametrize("line, message", [
    ("--gpus bogus", "argument --gpus: expected all, none, auto"),
    ("--timeout -3", "argument --timeout: must be > 0"),
    ("--cpus lots", "argument --cpus: expected a number"),
    ("-e NOVALUE", "expected NAME=VALUE"),
    ("--nope", "unrecognized arguments: --nope"),
    ("--in 1df", "'1df' is not a variable name"),
    ("--pip 'unbalanced", "No closing quotation"),
    ("-r /does/not/exist.txt", "no such file"),
])
def test_bad_arguments_raise_usage_error(ip, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        ip.find_cell_magic("mlbox").__self__.prepare_cell(line, "x = 1")  # resolves the options


def test_bad_line_command_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="invalid choice: 'frobnicate'"):
        ip.run_line_magic("mlbox", "frobnicate")
    with pytest.raises(UsageError, match="empty"):
        ip.run_cell_magic("mlbox", "", "   \n")
    with pytest.raises(UsageError, match="per cell"):
        ip.run_line_magic("mlbox", "config --in df")


def test_help_is_real(ip):
    cell_help = ip.find_cell_magic("mlbox").__doc__
    for option in ("--gpus", "--base", "--pip", "--requirements", "--exclude", "--timeout",
                   "--memory", "--cpus", "--env", "--rebuild", "--quiet", "--in", "--out",
                   "--with-setup"):
        assert option in cell_help, option
    assert "%%mlbox [--in NAMES]" in cell_help
    line_help = ip.find_line_magic("mlbox").__doc__
    assert "%mlbox [" in line_help and "%%mlbox [" not in line_help
    assert "status" in line_help and "requirements" in line_help and "config" in line_help


def test_config_sets_defaults_for_later_calls(ip, capsys):
    magics = ip.find_cell_magic("mlbox").__self__
    try:
        ip.run_line_magic("mlbox", "config --gpus auto --memory 2g --pip 'six>=1'")
        assert "--gpus auto" in capsys.readouterr().out
        request = magics.prepare_cell("--memory 3g", "x = 1")
        assert request.run_options.gpus == GpuRequest("auto")
        assert request.run_options.memory == "3g"
        assert request.build_options.pip == ("six>=1",)
        assert str(request.run_options.gpus) == "auto"
    finally:
        ip.run_line_magic("mlbox", "config --reset")
    assert magics.defaults.configured() == {}


def test_in_names_must_exist_and_be_picklable(ip):
    magics = ip.find_cell_magic("mlbox").__self__
    ip.user_ns["lock"] = threading.Lock()
    ip.user_ns["fine"] = {"a": 1}
    with pytest.raises(SerializationError, match="no variable 'ghost'"):
        magics.prepare_cell("--in fine,ghost", "x = 1")
    with pytest.raises(SerializationError, match="--in lock: a _thread.lock cannot be sent"):
        magics.prepare_cell("--in fine --in lock", "x = 1")


def test_setup_cells_are_the_ones_that_only_import_or_define():
    assert is_setup_cell("import numpy as np\nfrom os import path")
    assert is_setup_cell("SEED = 42\nFEATURES = ['a', 'b']\nRATE = 1e-3 * 2")
    assert is_setup_cell("def f(x):\n    return x\n\nclass A:\n    pass")
    assert is_setup_cell("'''doc'''\ntry:\n    import torch\nexcept ImportError:\n    torch = None")
    assert not is_setup_cell("df = pd.read_csv('x.csv')")
    assert not is_setup_cell("print('side effect')")
    assert not is_setup_cell("%matplotlib inline")
    assert not is_setup_cell("x = [i for i in range(3)]")
    assert not is_setup_cell("a.b = 1")
    assert not is_setup_cell("")
    assert not is_setup_cell("def broken(:")


def test_variables_round_trip_locally_through_the_generated_cells(tmp_path, monkeypatch):
    """The loader and dumper cells are plain Python: run them here, in a fresh namespace."""
    monkeypatch.chdir(tmp_path)
    import pandas as pd

    class Local:  # defined in a test: cloudpickle sends it by value
        def __init__(self, v):
            self.v = v

    (tmp_path / ".mlbox-in.pkl").write_bytes(
        pack_variables({"df": pd.DataFrame({"a": [1, 2]}), "obj": Local(5)}, ["df", "obj"]))
    namespace: dict = {}
    exec(loader_cell_source(["df", "obj"]), namespace)
    assert namespace["df"].a.sum() == 3 and namespace["obj"].v == 5
    namespace["result"] = namespace["df"].a * 10
    namespace["obj_back"] = namespace["obj"]
    exec(dumper_cell_source(["result", "obj_back"], out_pickle=True), namespace)
    values = read_out_values((tmp_path / OUTPUT_FILE).read_bytes(), ["result", "obj_back"],
                             out_pickle=True)
    assert list(values["result"]) == [10, 20] and values["obj_back"].v == 5

    namespace["gen"] = (i for i in range(3))
    exec(dumper_cell_source(["gen", "nothere"]), namespace)
    with pytest.raises(SerializationError) as err:
        read_out_values((tmp_path / OUTPUT_FILE).read_bytes(), ["gen", "nothere"])
    assert "gen (a builtins.generator)" in str(err.value) and "--out-pickle" in str(err.value)
    assert "nothere: the cell did not define it" in str(err.value)


def test_python_minor_mismatch_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"x": object()}
    exec(dumper_cell_source(["x"], out_pickle=True), namespace)
    data = (tmp_path / OUTPUT_FILE).read_bytes().replace(b'"python": "3.', b'"python": "2.', 1)
    with pytest.raises(SerializationError, match=r"pickled by Python 2\.\d+ but this kernel runs"):
        read_out_values(data, ["x"], out_pickle=True)
    assert split_names(["a,b", "b", " c "]) == ["a", "b", "c"]


def test_outputs_are_re_displayed_and_container_widgets_fall_back_to_text(ip, capsys):
    from jupyter_mlbox.magics import display_outputs

    result = display_outputs([
        {"output_type": "stream", "name": "stdout", "text": "out\n"},
        {"output_type": "stream", "name": "stderr", "text": "err\n"},
        {"output_type": "display_data", "metadata": {},
         "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
                  "text/plain": "IntSlider(value=3)"}},
        {"output_type": "display_data", "metadata": {},
         "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "def"}}},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": "42", "text/html": "<b>42</b>"}},
    ])
    captured = capsys.readouterr()
    assert captured.out == "out\nIntSlider(value=3)\n"  # the terminal shell prints text/plain
    assert captured.err == "err\n"
    assert result.data == {"text/plain": "42", "text/html": "<b>42</b>"} and repr(result) == "42"

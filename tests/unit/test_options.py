"""core.options: the --gpus grammar, flags and JSON read into the same typed options, configured
defaults under them, and clear errors for bad values."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from traitlets import TraitError

from jupyter_mlbox.config import MlboxDefaults, load_defaults
from jupyter_mlbox.core.options import (BUILD_OPTIONS, NO_GPUS, RUN_OPTIONS, BuildOptions,
                                        GpuRequest, OptionError, RunOptions, add_arguments,
                                        check_keys, resolve_options)
from jupyter_mlbox.errors import MlboxError

GPU_GRAMMAR = "expected all, none, auto, a number or device=ID[,ID]"


# --- GpuRequest ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, mode, count, devices, text", [
    ("all", "all", 0, (), "all"),
    ("auto", "auto", 0, (), "auto"),
    ("2", "count", 2, (), "2"),
    (2, "count", 2, (), "2"),
    ("device=0", "devices", 0, ("0",), "device=0"),
    (" device=0, GPU-3f2a ", "devices", 0, ("0", "GPU-3f2a"), "device=0,GPU-3f2a"),
])
def test_gpu_requests_that_ask_for_gpus(value, mode, count, devices, text):
    gpus = GpuRequest.parse(value)
    assert (gpus.mode, gpus.count, gpus.devices) == (mode, count, devices)
    assert gpus.requested and str(gpus) == text
    assert gpus.optional == (mode == "auto")
    assert GpuRequest.parse(str(gpus)) == gpus  # what it prints, it reads back


@pytest.mark.parametrize("value", ["none", "0", 0, "", None, GpuRequest()])
def test_gpu_requests_that_mean_no_gpus(value):
    gpus = GpuRequest.parse(value)
    assert gpus == NO_GPUS and not gpus.requested and not gpus.optional
    assert str(gpus) == "none"


@pytest.mark.parametrize("value", ["lots", "-1", "1.5", "device=", "device=a;b", "all,auto",
                                   True, False])
def test_bad_gpu_requests_say_what_is_expected(value):
    with pytest.raises(OptionError) as caught:
        GpuRequest.parse(value)
    assert str(caught.value).startswith("--gpus")
    assert GPU_GRAMMAR in str(caught.value)
    assert isinstance(caught.value, MlboxError) and isinstance(caught.value, ValueError)


def test_run_options_parse_their_gpus():
    assert RunOptions(gpus="device=1").gpus == GpuRequest("devices", devices=("1",))
    with pytest.raises(OptionError):
        RunOptions(gpus="many")


# --- flags --------------------------------------------------------------------------------------

def parser(names=None) -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="mlbox", exit_on_error=False), names)


def test_flags_become_typed_options():
    args = parser().parse_args([
        "--base", "python:3.12-slim", "--pip", "tqdm", "--pip", "rich>=13",
        "--exclude", "pandas", "--rebuild", "--gpus", "auto", "--timeout", "30",
        "--memory", "4g", "--cpus", "1.5", "-e", "A=1", "--env", "B=x=y",
        "-p", "n=3", "-p", "names=['a', 'b']", "--parameter", "word=hello"])
    build, run = resolve_options(vars(args))
    assert build == BuildOptions(base_image="python:3.12-slim", pip=("tqdm", "rich>=13"),
                                 exclude=("pandas",), rebuild=True)
    assert run.gpus == GpuRequest("auto") and run.timeout == 30.0
    assert (run.memory, run.cpus) == ("4g", 1.5)
    assert run.env == {"A": "1", "B": "x=y"}
    assert run.parameters == {"n": 3, "names": ["a", "b"], "word": "hello"}


def test_requirements_flag_becomes_a_path():
    """A bug found by this test: the flag's type made a Path, which was then read as text."""
    args = parser().parse_args(["-r", "~/req.txt"])
    assert resolve_options(vars(args))[0].requirements_file == Path("~/req.txt").expanduser()


def test_requirements_from_json_becomes_a_path():
    build, _ = resolve_options({"requirements_file": "~/req.txt"})
    assert build.requirements_file == Path("~/req.txt").expanduser()


def test_no_flags_are_the_built_in_defaults():
    assert resolve_options(vars(parser().parse_args([]))) == (BuildOptions(), RunOptions())
    assert resolve_options({}) == (BuildOptions(), RunOptions())


@pytest.mark.parametrize("argv, message", [
    (["--gpus", "lots"], GPU_GRAMMAR),
    (["--memory", "12 parsecs"], "expected a size like 512m or 4g"),
    (["--timeout", "-3"], "must be > 0"),
    (["--cpus", "two"], "expected a number"),
    (["-e", "NOVALUE"], "expected NAME=VALUE"),
])
def test_a_bad_flag_is_one_argparse_line_naming_it(argv, message):
    with pytest.raises(argparse.ArgumentError) as caught:
        parser().parse_args(argv)
    assert caught.value.argument_name is not None and argv[0] in caught.value.argument_name
    assert message in str(caught.value)


def test_add_arguments_adds_only_the_named_options():
    only_gpus = parser({"gpus"})
    assert only_gpus.parse_args(["--gpus", "all"]).gpus == GpuRequest("all")
    with pytest.raises(SystemExit):
        only_gpus.parse_args(["--memory", "4g"])  # unknown here (argparse exits on those)


def test_help_overrides_replace_the_help_of_one_option():
    text = add_arguments(argparse.ArgumentParser(), {"gpus", "memory"},
                         help_overrides={"gpus": "GPUS OVERRIDDEN"}).format_help()
    assert "GPUS OVERRIDDEN" in text and "memory limit, e.g. 4g" in text


def test_every_option_is_a_build_or_a_run_option_once():
    names = BUILD_OPTIONS + RUN_OPTIONS
    assert len(names) == len(set(names))
    assert set(BUILD_OPTIONS) <= set(BuildOptions.__dataclass_fields__)
    assert set(RUN_OPTIONS) <= set(RunOptions.__dataclass_fields__)


# --- JSON (a server request's options) ----------------------------------------------------------

def test_json_values_become_the_same_typed_options():
    build, run = resolve_options({"gpus": "all", "memory": "2g", "timeout": 5, "cpus": 2,
                                  "pip": ["tqdm"], "exclude": "pandas, numpy",
                                  "rebuild": True, "env": {"A": 1},
                                  "parameters": {"x": [1, 2], "s": "3"}})
    assert build.pip == ("tqdm",) and build.exclude == ("pandas", "numpy") and build.rebuild
    assert run.gpus == GpuRequest("all") and run.timeout == 5 and run.cpus == 2
    assert run.env == {"A": "1"}  # environment values are strings
    assert run.parameters == {"x": [1, 2], "s": "3"}  # JSON values keep their JSON type


@pytest.mark.parametrize("values, message", [
    ({"timeout": -1}, "--timeout: must be > 0"),
    ({"timeout": True}, "--timeout: expected a number"),
    ({"rebuild": "yes"}, "--rebuild: expected true or false"),
    ({"gpus": "lots"}, "--gpus 'lots': " + GPU_GRAMMAR),
    ({"memory": 12.5}, "--memory: expected a size"),
    ({"env": "A=1"}, "--env: expected NAME=VALUE pairs"),
    ({"parameters": {"not a name": 1}}, "--parameter: 'not a name' is not a valid name"),
    ({"pip": [1, 2]}, "--pip: expected a list of strings"),
])
def test_a_bad_json_value_is_an_option_error_naming_the_option(values, message):
    with pytest.raises(OptionError) as caught:
        resolve_options(values)
    assert str(caught.value).startswith(message)


def test_check_keys_refuses_what_is_not_an_option():
    check_keys({"gpus": "all", "memory": "1g", "pip": []})
    with pytest.raises(OptionError, match=r"unknown option\(s\) gpu, timout; known: .*gpus"):
        check_keys({"gpu": "all", "timout": 3})
    check_keys({"timeout": 3}, allowed=RUN_OPTIONS)
    with pytest.raises(OptionError, match="unknown option.*rebuild"):
        check_keys({"rebuild": True}, allowed=RUN_OPTIONS)


# --- configured defaults ------------------------------------------------------------------------

def test_configured_defaults_fill_in_what_is_not_given():
    defaults = MlboxDefaults(gpus="auto", memory="8g", timeout=100.0, base_image="python:x",
                             pip=["from-config"], exclude=["torch"])
    build, run = resolve_options({}, defaults)
    assert run.gpus == GpuRequest("auto") and run.memory == "8g" and run.timeout == 100.0
    assert build.base_image == "python:x"
    assert build.pip == ("from-config",) and build.exclude == ("torch",)


def test_flags_win_over_defaults_and_list_options_add_up():
    defaults = MlboxDefaults(gpus="auto", memory="8g", pip=["from-config"])
    args = parser().parse_args(["--gpus", "none", "--memory", "1g", "--pip", "from-flag"])
    build, run = resolve_options(vars(args), defaults)
    assert run.gpus == NO_GPUS and run.memory == "1g"
    assert build.pip == ("from-config", "from-flag")
    build, run = resolve_options({"pip": ["from-json"], "memory": "2g"}, defaults)
    assert build.pip == ("from-config", "from-json") and run.memory == "2g"
    assert run.gpus == GpuRequest("auto")


def test_a_bad_configured_value_names_the_trait():
    with pytest.raises(TraitError, match=r"c\.MlboxDefaults\.gpus = 'lots'"):
        MlboxDefaults(gpus="lots")
    with pytest.raises(TraitError, match=r"c\.MlboxDefaults\.memory"):
        MlboxDefaults(memory="lots")


def test_a_config_file_reaches_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    (tmp_path / "jupyter_mlbox_config.py").write_text(
        'c.MlboxDefaults.gpus = "auto"\nc.MlboxDefaults.pip = ["tqdm"]\n')
    defaults = load_defaults()
    assert defaults.configured() == {"gpus": "auto", "pip": ["tqdm"]}
    build, run = resolve_options({}, defaults)
    assert run.gpus.optional and build.pip == ("tqdm",)


def test_a_bad_config_file_value_is_an_option_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    (tmp_path / "jupyter_mlbox_config.json").write_text('{"MlboxDefaults": {"cpus": -2}}')
    with pytest.raises(OptionError, match=r"jupyter_mlbox configuration: .*cpus.*must be > 0"):
        load_defaults()

"""A submodule import brings its distribution's extra (issue 13, item 5), read from real
``*.dist-info/METADATA`` files on the path importlib.metadata searches — no table."""
from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

import pytest

from jupyter_mlbox.core import inference
from jupyter_mlbox.core.extras import extras_needed, with_extras
from jupyter_mlbox.core.inference import infer_requirements
from jupyter_mlbox.core.lock import Lock

XTRA = """Metadata-Version: 2.1
Name: xtrademo
Version: 1.0
Requires-Dist: xdemo-core-lib
Provides-Extra: frames
Requires-Dist: xtrademo[arrays]; extra == "frames"
Requires-Dist: xdemo-frames-lib>=1.0; extra == "frames"
Requires-Dist: xdemo-windows-only; sys_platform == "win32" and extra == "frames"
Provides-Extra: arrays
Requires-Dist: xdemo-arrays-lib; extra == "arrays"
Provides-Extra: plots
Requires-Dist: xdemo-absent>=2; extra == "plots"
Provides-Extra: helper
Requires-Dist: xdemo-frames-lib; extra == "helper"
Provides-Extra: strict
Requires-Dist: xdemo-frames-lib>=2; extra == "strict"
Provides-Extra: lazy
Provides-Extra: big-data
Requires-Dist: xdemo-arrays-lib; extra == "big-data"
"""
XTRA_FILES = ["xtrademo/__init__.py", "xtrademo/frames/__init__.py", "xtrademo/arrays/__init__.py",
              "xtrademo/plots.py", "xtrademo/strict.py", "xtrademo/lazy.py",
              "xtrademo/big_data/__init__.py"]  # no xtrademo/helper: ``helper`` is a function


def _install(site: Path, name: str, version: str, files: list[str], text: str = "") -> None:
    for file in files:
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        (site / file).write_text("")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(text or f"Metadata-Version: 2.1\nName: {name}\n"
                                           f"Version: {version}\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """xtrademo 1.0 with its extras; the kernel has xdemo-frames-lib 1.2, xdemo-arrays-lib 3.0
    and xdemo-core-lib, not xdemo-absent nor xdemo-windows-only."""
    _install(tmp_path, "xtrademo", "1.0", XTRA_FILES, XTRA)
    _install(tmp_path, "xdemo_frames_lib", "1.2", ["xdemo_frames_lib/__init__.py"])
    _install(tmp_path, "xdemo_arrays_lib", "3.0", ["xdemo_arrays_lib/__init__.py"])
    _install(tmp_path, "xdemo_core_lib", "0.1", ["xdemo_core_lib/__init__.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    inference._packages_distributions.cache_clear()
    yield tmp_path
    inference._packages_distributions.cache_clear()


def requirements(source: str) -> dict[str, str]:
    return {r.requirement: r.origin for r in infer_requirements([source]).requirements}


def test_a_submodule_named_like_an_extra_brings_the_extra_pinned_to_the_kernel(site):
    assert requirements("import xtrademo.frames as xf") == {
        "xtrademo[frames]==1.0": "installed",
        "xdemo-frames-lib==1.2": "extra",
        "xdemo-arrays-lib==3.0": "extra",  # through xtrademo[arrays], which frames names
    }  # xdemo-windows-only: its marker is false on the image (Linux), so no note either


def test_from_import_of_the_submodule_counts_and_explains_which_import(site):
    result = infer_requirements(["from xtrademo import frames"])
    members = {r.name: r.imports for r in result.requirements if r.origin == "extra"}
    assert members == {"xdemo-frames-lib": ("xtrademo.frames",),
                       "xdemo-arrays-lib": ("xtrademo.frames",)}
    assert result.warnings == []


def test_the_plain_import_brings_no_extra(site):
    assert requirements("import xtrademo") == {"xtrademo==1.0": "installed"}


def test_a_name_that_is_not_a_shipped_submodule_brings_no_extra(site):
    """``from xtrademo import helper`` imports a function: RECORD has no xtrademo/helper."""
    assert requirements("from xtrademo import helper") == {"xtrademo==1.0": "installed"}


def test_a_submodule_only_the_trace_saw_brings_no_extra(site):
    """The kernel had xtrademo.frames loaded because xtrademo imports it itself (as pandas
    loads pandas.io.parquet): only what the notebook writes asks for an extra."""
    result = infer_requirements(["import xtrademo"], traced=["xtrademo", "xtrademo.frames"])
    assert [r.requirement for r in result.requirements] == ["xtrademo==1.0"]


def test_an_extra_the_kernel_lacks_is_not_added_and_a_note_names_pip(site):
    result = infer_requirements(["import xtrademo.plots"])
    assert [r.requirement for r in result.requirements] == ["xtrademo==1.0"]
    assert result.warnings == ["xtrademo.plots: xtrademo[plots] needs xdemo-absent>=2, which "
                               "this kernel does not have: not added (--pip 'xtrademo[plots]' "
                               "adds it)"]


def test_an_extra_whose_specifier_refuses_the_kernels_version_pins_without_brackets(site):
    """The kernel's working set wins; ``xtrademo[strict]`` would make pip refuse it."""
    result = infer_requirements(["import xtrademo.strict"])
    assert {r.requirement: r.origin for r in result.requirements} == {
        "xtrademo==1.0": "installed", "xdemo-frames-lib==1.2": "extra"}
    assert any("xdemo-frames-lib 1.2 (xtrademo[strict] wants >=2)" in w
               for w in result.warnings)


def test_an_extra_without_requirements_adds_nothing(site):
    result = infer_requirements(["import xtrademo.lazy"])
    assert [r.requirement for r in result.requirements] == ["xtrademo==1.0"]
    assert result.warnings == []


def test_a_pin_the_notebook_installs_itself_wins_over_the_extras(site):
    got = requirements("%pip install xdemo-frames-lib==1.1\nimport xtrademo.frames")
    assert got["xdemo-frames-lib==1.1"] == "pip-magic"
    assert "xdemo-frames-lib==1.2" not in got


def test_extra_names_compare_normalized(site):
    """``big_data`` the module, ``big-data`` the extra (PEP 685 normalization)."""
    assert "xtrademo[big-data]==1.0" in requirements("import xtrademo.big_data")


def test_several_extras_share_one_line_and_a_direct_import_keeps_its_origin(site):
    got = requirements("import xtrademo.frames\nimport xtrademo.big_data\n"
                       "import xdemo_frames_lib")
    assert got == {"xtrademo[big-data,frames]==1.0": "installed",
                   "xdemo-frames-lib==1.2": "installed",  # imported itself: that's the reason
                   "xdemo-arrays-lib==3.0": "extra"}


def test_the_rendered_extra_is_a_requirement_the_lock_covers(site):
    needs, notes = extras_needed("xtrademo", ["xtrademo.frames"])
    assert notes == [] and [n.name for n in needs] == ["xtrademo[frames]"]
    pin = with_extras("xtrademo==1.0", needs)
    assert pin == "xtrademo[frames]==1.0"
    lock = Lock(Path("x.mlbox.lock"), "xtrademo==1.0 \\\n    --hash=sha256:00\n")
    assert lock.missing([pin]) == []  # a lock of the closure is not stale for it


def test_dask_dataframe_brings_pandas_and_pyarrow_from_dasks_own_metadata():
    """The case of the issue, on the real dask the test venv installs (dask[dataframe])."""
    pytest.importorskip("dask.dataframe")
    got = requirements("import dask.dataframe as dd")
    version = metadata.version
    assert got[f"dask[dataframe]=={version('dask')}"] == "installed"
    for member in ("pandas", "pyarrow", "numpy"):  # numpy: dask[array], inside dask[dataframe]
        assert got[f"{member}=={version(member)}"] == "extra", member

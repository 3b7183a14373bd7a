"""What the venv leaves out (core/venv_pruning.py): the runtime stack's tools that nothing the
notebook needs requires. Real dist-info folders in a real venv layout; the image side is
tests/integration/test_pruning.py."""
from __future__ import annotations

from pathlib import Path

from jupyter_mlbox.core.build import plan_image
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.venv_pruning import leave_out_candidates, unused


def venv(tmp_path: Path, requires: dict[str, list[str]]) -> Path:
    """A venv whose site-packages holds one distribution per key, requiring its values."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for name, needs in requires.items():
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
            + "".join(f"Requires-Dist: {need}\n" for need in needs))
    return tmp_path / "venv"


STACK = {"ipython": ["jedi>=0.16", "pexpect>4.3; sys_platform != 'win32'"],
         "ipykernel": ["debugpy>=1.6.5", "ipython>=7.23.1"], "jedi": ["parso<0.9,>=0.8.4"],
         "parso": [], "debugpy": [], "pip": [], "pexpect": [], "setuptools": []}
ALL = ("debugpy", "jedi", "parso", "pip", "setuptools")


def test_the_stack_s_own_tools_are_unused(tmp_path):
    assert unused(str(venv(tmp_path, STACK)), ALL) == list(ALL)


def test_a_package_that_requires_a_tool_keeps_it_and_what_it_requires(tmp_path):
    folder = venv(tmp_path, {**STACK, "python-lsp-server": ["jedi<0.20,>=0.17.2"],
                             "pip-tools": ["pip >= 22.2", "setuptools"]})
    assert unused(str(folder), ALL) == ["debugpy"]  # jedi keeps parso


def test_a_requirement_only_of_an_extra_keeps_nothing(tmp_path):
    folder = venv(tmp_path, {**STACK, "ipywidgets": ["jedi; extra == 'test'"]})
    assert unused(str(folder), ALL) == list(ALL)


def test_only_installed_candidates_are_named(tmp_path):
    folder = venv(tmp_path, {k: v for k, v in STACK.items() if k != "pip"})
    assert unused(str(folder), ("jedi", "parso", "pip", "numpy")) == ["jedi", "parso"]


def test_what_the_notebook_asks_for_is_no_candidate():
    assert leave_out_candidates(["import numpy"], {"numpy"}) == ALL
    assert leave_out_candidates(["import jedi"], {"jedi"}) \
        == ("debugpy", "parso", "pip", "setuptools")
    assert leave_out_candidates(["%pip install -q tqdm"], {"tqdm"}) \
        == ("debugpy", "jedi", "parso", "setuptools")
    assert leave_out_candidates(["!pip3 list"], set()) == ("debugpy", "jedi", "parso", "setuptools")
    # an option named --pip (%mlbox dockerfile --pip six) is not pip: the image stays the same
    assert leave_out_candidates(["%mlbox dockerfile --pip 'six>=1.16'"], set()) == ALL
    assert "pip" not in leave_out_candidates(['subprocess.run(["pip", "list"])'], set())
    # import pkg_resources is inferred as setuptools: a requirement, so no candidate
    assert "setuptools" not in leave_out_candidates(["import pkg_resources"], {"setuptools"})


def test_a_notebook_that_runs_pip_has_it_as_a_requirement_and_others_leave_it_out():
    runs = plan_image(["%pip --version"], notebook_name="a.ipynb", search_dir=None,
                      pip=PipSettings())
    plain = plan_image(["print(1)"], notebook_name="a.ipynb", search_dir=None,
                       pip=PipSettings())
    assert any(r.startswith("pip") for r in runs.spec.requirements)
    assert "pip" not in runs.spec.leave_out
    assert not any(r.startswith("pip=") or r == "pip" for r in plain.spec.requirements)
    assert plain.spec.leave_out == ALL
    assert "--unused /opt/venv debugpy jedi parso pip setuptools" in plain.context.dockerfile


def test_a_session_cell_that_runs_pip_in_an_image_without_it_is_said_before_it_runs():
    from jupyter_mlbox.core.image_modules import missing_imports

    assert missing_imports(["%pip install -q tqdm"], ["os", "IPython"]) == ["pip"]
    assert missing_imports(["%pip install -q tqdm"], ["os", "IPython", "pip"]) == []
    assert missing_imports(["!python -m pip list"], ["os"]) == ["pip"]
    assert missing_imports(["print('no installs')"], ["os"]) == []
    assert missing_imports(["# pip would not do here\nx = 1"], ["os"]) == []  # no pip line

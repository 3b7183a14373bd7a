"""Issue 16 item 2: the project's declared environment (core/declared.py), with real files.

Offline: the uv.lock below was written by a real ``uv lock`` (uv 0.13.9) of a project that
depends on six==1.16.0, and is read here by a real ``uv export --frozen``. The kernel has six
1.17.0, so a plan that says 1.16.0 took it from the declared files, not from the kernel.
"""
from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

import pytest

from jupyter_mlbox.core.build import plan_image, plan_notebook
from jupyter_mlbox.core.declared import (DeclaredError, conda_to_pip, discover, locked_pins,
                                         merged_lock, python_version_of, read_environment_yml,
                                         unprovided_imports)
from jupyter_mlbox.core.options import BuildOptions
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.provenance import requirement_from

from ..conftest import write_notebook

KERNEL = f"{sys.version_info.major}.{sys.version_info.minor}"
PYPROJECT = """\
[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["six==1.16.0"]
"""
UV_LOCK = """\
version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/71/39/171f1c67cd00715f190ba0b100d606d440a28c93c7714febeca8b79af85e/six-1.16.0.tar.gz", hash = "sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926", size = 34041, upload-time = "2021-05-05T14:18:18.379Z" }
wheels = [
    { url = "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl", hash = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254", size = 11053, upload-time = "2021-05-05T14:18:17.237Z" },
]

[[package]]
name = "tiny"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "six" },
]

[package.metadata]
requires-dist = [{ name = "six", specifier = "==1.16.0" }]
"""
WHEEL_HASH = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A git project root holding ``files``, and notebooks/ below it."""
    (tmp_path / ".git").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "notebooks"


def test_pyproject_dependencies_at_the_root_declare_a_notebook_below_it(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT})
    declared = discover(notebooks, tmp_path)
    assert (declared.kind, declared.requirements) == ("pyproject.toml", ("six==1.16.0",))
    assert declared.file == tmp_path / "pyproject.toml" and declared.lock_text is None
    # outside the project root nothing is found: the root bounds the search
    assert discover(notebooks, notebooks).file is None


def test_the_nearest_folder_wins_and_requirements_txt_leads_within_one(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT,
                                   "notebooks/environment.yml": "dependencies:\n  - pip:\n"
                                                                "    - attrs==23.1.0\n"})
    assert discover(notebooks, tmp_path).requirements == ("attrs==23.1.0",)
    (notebooks / "requirements.txt").write_text("# pinned\nsix==1.15.0\n")
    declared = discover(notebooks, tmp_path)
    assert (declared.kind, declared.requirements) == ("requirements.txt", ("six==1.15.0",))


def test_a_pyproject_that_opts_out_or_declares_nothing_leaves_inference(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT + "\n[tool.mlbox]\ninfer = true\n"})
    assert discover(notebooks, tmp_path).file is None
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 99\n")
    assert discover(notebooks, tmp_path).file is None
    # this repository's own pyproject.toml is the tool's metadata, not its examples' env
    repo = Path(__file__).resolve().parents[2]
    assert discover(repo / "example_notebooks", repo).file is None


def test_a_uv_lock_is_exported_with_its_hashes_and_without_the_project(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT, "uv.lock": UV_LOCK})
    declared = discover(notebooks, tmp_path)
    assert declared.kind == "uv.lock" and declared.requirements == ("six==1.16.0",)
    assert locked_pins(declared.lock_text) == {"six": "six==1.16.0"}
    assert f"--hash=sha256:{WHEEL_HASH}" in declared.lock_text
    assert "tiny" not in declared.lock_text  # the project itself is not from an index


def test_a_uv_lock_that_uv_cannot_read_is_a_clear_error(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT, "uv.lock": "version = [\n"})
    with pytest.raises(DeclaredError, match=r"(?s)uv\.lock could not be exported.*TOML parse "
                                            r"error.*run `uv lock` there"):
        discover(notebooks, tmp_path)


def test_merged_lock_adds_only_what_the_lock_lacks():
    lock = "six==1.16.0 \\\n    --hash=sha256:aa\n"
    more = ("six==1.17.0 \\\n    --hash=sha256:bb\nattrs==23.1.0 \\\n    --hash=sha256:cc\n"
            "# comment\n")
    merged = merged_lock(lock, more)
    assert locked_pins(merged) == {"six": "six==1.16.0", "attrs": "attrs==23.1.0"}
    assert "sha256:bb" not in merged and "    --hash=sha256:cc\n" in merged


def test_environment_yml_pip_section_python_and_conda_packages(tmp_path):
    packaging_version = metadata.version("packaging")
    path = tmp_path / "environment.yml"
    path.write_text(f"name: demo\nchannels:\n  - conda-forge\ndependencies:\n"
                    f"  - python={KERNEL}\n  - pip\n  - conda-forge::packaging={packaging_version}\n"
                    f"  - pip:\n      - attrs==23.1.0  # pinned\n      - 'six>=1.15'\n")
    conda, pip, python = read_environment_yml(path)
    assert (conda, pip, python) == ([f"conda-forge::packaging={packaging_version}"],
                                    ["attrs==23.1.0", "six>=1.15"], KERNEL)
    declared = discover(tmp_path, tmp_path)
    # a conda package this kernel has from an index is taken by its name; python= is the image's
    assert declared.requirements == ("attrs==23.1.0", "six>=1.15",
                                     f"packaging=={packaging_version}.*")
    assert (declared.python, declared.python_file) == (KERNEL, path)


def test_environment_yml_lists_at_the_left_margin_are_read_too(tmp_path):
    path = tmp_path / "environment.yml"
    path.write_text("name: x\ndependencies:\n- python=3.12\n- pip\n- pip:\n  - six==1.16.0\n"
                    "prefix: /opt/conda/envs/x\n")
    assert read_environment_yml(path) == ([], ["six==1.16.0"], "3.12")


def test_a_conda_only_package_is_an_error_naming_it_and_the_fix(tmp_path):
    (tmp_path / "environment.yml").write_text(
        "dependencies:\n  - cudatoolkit=11.8\n  - pip:\n    - six\n")
    with pytest.raises(DeclaredError, match=r"cudatoolkit=11\.8 is a conda package.*add it "
                                            r"under `pip:`.*--exclude cudatoolkit"):
        discover(tmp_path, tmp_path)
    assert discover(tmp_path, tmp_path, exclude=["cudatoolkit"]).requirements == ("six",)


def test_conda_specs_read_as_pip_specs():
    assert conda_to_pip("numpy=1.26") == "numpy==1.26.*"
    assert conda_to_pip("numpy=1.26.4=py311h64a7726_0") == "numpy==1.26.4"
    assert conda_to_pip("conda-forge::scipy >=1.10") == "scipy>=1.10"


@pytest.mark.parametrize("text, version", [("3.10", "3.10"), ("3.12.4\n", "3.12"),
                                           ("cpython-3.9", "3.9"), ("python-3.10.4", "3.10"),
                                           ("python==3.11.*", "3.11"), (">=3.9", None),
                                           ("pypy", None)])
def test_python_versions_are_read_from_each_spelling(text, version):
    assert python_version_of(text) == version


def test_python_version_files_are_read_and_the_kernels_version_wins(tmp_path):
    kernel = f"{sys.version_info.major}.{sys.version_info.minor}"
    notebooks = project(tmp_path, {"runtime.txt": f"python-{kernel}.4\n"})
    declared = discover(notebooks, tmp_path)
    assert (declared.python, declared.python_file.name) == (kernel, "runtime.txt")
    (notebooks / ".python-version").write_text("system\n")  # pyenv's: no version, skipped
    declared = discover(notebooks, tmp_path)
    assert (declared.python, declared.python_file.name) == (kernel, "runtime.txt")
    assert any("'system' names no Python version" in w for w in declared.warnings)
    # another version (numpy-100's binder-era runtime.txt says 3.7): this kernel's packages,
    # which the image pins, need this kernel's Python; the flag that uses it is named
    (notebooks / ".python-version").write_text("3.7\n")  # nearer: it is the one read
    declared = discover(notebooks, tmp_path)
    assert declared.python is None
    assert any(".python-version names Python 3.7" in w and "--base python:3.7-slim" in w
               for w in declared.warnings), declared.warnings


def test_unprovided_imports_are_named_and_provided_ones_are_not(tmp_path):
    (tmp_path / "helper.py").write_text("")
    sources = ["import os, helper\nimport requests\nimport urllib3\n",
               "try:\n    import no_such_module_xyz\nexcept ImportError:\n    pass\n",
               "import six\n"]
    # urllib3 comes with requests (the kernel's closure); helper is local; os is stdlib
    assert unprovided_imports(sources, ["requests>=2"], search_dirs=[tmp_path]) == ["six"]
    assert unprovided_imports(sources, ["six==1.16.0"], search_dirs=[tmp_path]) \
        == ["requests", "urllib3"]


def test_a_notebook_in_a_project_is_planned_from_its_declared_files(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT,
                                   ".python-version": f"{KERNEL}\n"})
    notebook = write_notebook(notebooks / "a.ipynb", ["import six\nimport requests"])
    _, plan = plan_notebook(notebook, pip=PipSettings())
    assert [r.requirement for r in plan.inference.requirements] == ["six==1.16.0"]
    assert requirement_from("file", plan.inference.requirements[0].where) \
        == "file (pyproject.toml [project] dependencies)"
    assert plan.spec.base_image == f"python:{KERNEL}-slim"
    assert any(w.startswith("requests: imported by the notebook but provided by no "
                            "requirement of pyproject.toml") for w in plan.warnings)
    text = plan.report().text()
    assert "  environment: declared by pyproject.toml [project] dependencies, not inferred " \
           "(precedence: --pip, -r, --base > .mlbox.lock > declared files > inference)" in text
    assert f"  python: {KERNEL} from .python-version → python:{KERNEL}-slim" in text
    assert plan.report().as_dict()["environment"]["python"] == KERNEL


def test_a_kernel_s_cells_are_planned_from_its_folder_s_declared_files(tmp_path):
    """%%mlbox plans from the kernel's cells and folder (plan_image with a search_dir): the
    project's declared files decide there as they do for a notebook file."""
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT})
    plan = plan_image(["import six\nimport requests"], notebook_name="cell.ipynb",
                      search_dir=notebooks, pip=PipSettings())
    assert [r.requirement for r in plan.inference.requirements] == ["six==1.16.0"]
    assert any(w.startswith("requests: imported by the notebook but provided by no "
                            "requirement of pyproject.toml") for w in plan.warnings)
    assert "  environment: declared by pyproject.toml [project] dependencies" \
        in plan.report().text()


def test_explicit_flags_win_over_declared_files(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT, ".python-version": "3.10\n",
                                   "other.txt": "attrs==23.1.0\n"})
    notebook = write_notebook(notebooks / "a.ipynb", ["import six"])
    options = BuildOptions(requirements_file=tmp_path / "other.txt", base_image="python:3.11-slim",
                           pip=("six==1.15.0",))
    _, plan = plan_notebook(notebook, options, pip=PipSettings())
    assert [r.requirement for r in plan.inference.requirements] == ["attrs==23.1.0",
                                                                    "six==1.15.0"]
    assert plan.spec.base_image == "python:3.11-slim"
    assert "environment:" not in plan.report().text()


def test_the_lock_beside_the_notebook_wins_over_a_declared_uv_lock(tmp_path):
    notebooks = project(tmp_path, {"pyproject.toml": PYPROJECT})
    notebook = write_notebook(notebooks / "a.ipynb", ["import six"])
    _, plan = plan_notebook(notebook, pip=PipSettings())
    own_lock = "".join(f"{r}\n" for r in plan.spec.requirements)  # covers every requirement
    (notebooks / "a.mlbox.lock").write_text(own_lock)
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    _, plan = plan_notebook(notebook, pip=PipSettings())  # no resolve: the .mlbox.lock is used
    assert plan.spec.lock_text == own_lock and plan.lock_file == "a.mlbox.lock"
    assert "  lock: a.mlbox.lock pins" in plan.report().text()


@pytest.fixture
def local_kernel(tmp_path, monkeypatch):
    """The test process as a kernel with two editable packages (real uv, offline)."""
    from jupyter_mlbox.core import distributions

    from ..local_packages import install, make_kernel_venv, write_project

    named = write_project(tmp_path / "src-named", "mlbox-decl-named", "0.3.0",
                          "mlbox_decl_named", "")
    unlisted = write_project(tmp_path / "src-unlisted", "mlbox-decl-unlisted", "0.1.0",
                             "mlbox_decl_unlisted", "")
    venv = tmp_path / "venv"
    site = make_kernel_venv(venv, with_host_packages=False)
    install(venv, "-e", str(named), "-e", str(unlisted))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))
    distributions._packages_distributions.cache_clear()
    yield
    distributions._packages_distributions.cache_clear()


def test_a_file_never_sends_the_kernels_local_packages_to_the_index(tmp_path, local_kernel):
    # requirements.txt at the root names one editable package by name and omits the other:
    # both become local builds (the index's package of that name would be a stranger's code)
    notebooks = project(tmp_path / "proj", {"requirements.txt": "mlbox-decl-named==0.3.0\n"
                                                                "six==1.16.0\n"})
    notebook = write_notebook(notebooks / "a.ipynb", [
        "import six, mlbox_decl_named, mlbox_decl_unlisted\nimport no_such_module_xyz"])
    _, plan = plan_notebook(notebook, pip=PipSettings())
    by_name = {r.name: r for r in plan.inference.requirements}
    assert set(by_name) == {"mlbox-decl-named", "mlbox-decl-unlisted", "six"}
    for name in ("mlbox-decl-named", "mlbox-decl-unlisted"):
        assert by_name[name].origin == "local"
        assert by_name[name].requirement.startswith(f"{name} @ file:///mlbox-build/wheels/")
    assert by_name["mlbox-decl-unlisted"].imports == ("mlbox_decl_unlisted",)
    assert len(plan.spec.local_wheels) == 2
    [warning] = [w for w in plan.warnings if "provided by no requirement" in w]
    assert warning.startswith("no_such_module_xyz: imported by the notebook but provided by "
                              "no requirement of requirements.txt")

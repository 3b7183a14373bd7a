"""The container mirrors the project (issue 8, item 2): files named by relative path anywhere
under the project root, helper modules on a sys.path the notebook edits, ignore files, a size
cap. CLI on a real daemon, except the size cap (no build needed)."""
from __future__ import annotations

import subprocess

import nbformat

from tests.conftest import write_notebook
from tests.integration.helpers import cli

CELL = ("import os, sys\nsys.path.insert(0, os.path.abspath('../lib'))\nimport projhelper\n"
        "print(open('../data/table.csv').read().strip(), projhelper.ANSWER)\n"
        "print(sorted(os.listdir('../data')))")


def make_project(root, git=True):
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data").mkdir(parents=True)
    (root / "data" / "table.csv").write_text("a,b\n")
    (root / "data" / "big.h5").write_bytes(b"\0" * 100)
    (root / "lib").mkdir()
    (root / "lib" / "projhelper.py").write_text("ANSWER = 42\n")
    return write_notebook(root / "notebooks" / "analysis.ipynb", [CELL])


def test_files_and_modules_outside_the_notebook_folder_travel_at_the_same_place(tmp_path,
                                                                              engine):
    path = make_project(tmp_path / "proj")
    (tmp_path / "proj" / ".mlboxignore").write_text("# large files stay home\n**/*.h5\n")
    requirements = cli("requirements", str(path))
    assert requirements.returncode == 0, requirements.stderr
    assert "projhelper" not in requirements.stdout + requirements.stderr  # local, not a guess
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(path.parent / "analysis.mlbox.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "a,b 42\n['table.csv']\n"


def test_outside_the_root_is_said_and_context_ships_it(tmp_path, engine):
    path = make_project(tmp_path / "proj", git=False)  # root: the notebook's own folder
    result = cli("run", str(path))
    assert result.returncode == 1
    assert "is outside the project root" in result.stderr and "--context" in result.stderr
    result = cli("run", str(path), "--context", str(tmp_path / "proj"))
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(path.parent / "analysis.mlbox.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].startswith("a,b 42\n")


def test_a_data_folder_over_the_cap_is_refused_naming_the_largest_files(tmp_path):
    path = make_project(tmp_path / "proj")
    with open(tmp_path / "proj" / "data" / "huge.bin", "wb") as handle:
        handle.truncate(300 * 2 ** 20)  # sparse: 300 MB on paper, nothing on disk
    result = cli("requirements", str(path))
    assert result.returncode == 3
    assert "over the 200 MB cap" in result.stderr and "data/huge.bin (300 MB)" in result.stderr
    assert ".mlboxignore" in result.stderr and "Traceback" not in result.stderr

"""%mlbox in a live kernel whose folder is in a project with a declared environment (issue 16
item 2): the cells are planned from the project's pyproject.toml, as a notebook file is. A real
kernel; no image is built."""
from __future__ import annotations

from .helpers import execute_notebook, streams

PYPROJECT = """\
[project]
name = "tiny"
version = "0.1.0"
dependencies = ["six==1.16.0"]
"""


def test_the_kernel_s_project_declares_its_requirements(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = execute_notebook(["%load_ext jupyter_mlbox",
                           "import six\nimport pandas",
                           "%mlbox requirements"], notebooks)
    assert streams(nb.cells[2], "stdout").splitlines() == ["six==1.16.0"]
    assert "pandas: imported by the notebook but provided by no requirement of " \
           "pyproject.toml" in streams(nb.cells[2], "stderr")

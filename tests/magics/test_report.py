"""``%%mlbox`` says what the plan reproduces before the build (issue 13 item 7): as text lines
under nbclient, as the widget's plan section in a Jupyter session. Real kernel, real daemon."""
from __future__ import annotations

import re

import pytest

from ..integration.helpers import make_notebook
from .helpers import COMMON_IMPORTS, execute_notebook, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]

LOAD = "%load_ext jupyter_mlbox"


def test_text_progress_prints_the_report_before_the_build(tmp_path, shared_image):
    (tmp_path / "numbers.txt").write_text("1 2 3\n")
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox\nprint(open('numbers.txt').read().split())",
    ], tmp_path)
    cell = nb.cells[2]
    assert streams(cell, "stdout") == "['1', '2', '3']\n"
    lines = streams(cell, "stderr").splitlines()
    head = next(i for i, line in enumerate(lines) if "] before the build: " in line)
    reused = next(i for i, line in enumerate(lines) if "nothing to build" in line)
    assert head < reused
    # the kernel's traced modules (on by default in a live kernel) may add requirements
    assert re.search(r"before the build: \d+ requirements · no lock · 1 file \(6 B\)$",
                     lines[head]), lines[head]
    report = [line.split("] ", 1)[1].strip() for line in lines[head + 1:reused]]
    imports = next(line for line in report if line.startswith("imports: "))
    assert all(name in imports.split(": ", 1)[1].split(", ")
               for name in ("matplotlib", "pandas", "scikit-learn")), report
    assert "files: 1 (6 B): numbers.txt" in report  # the file the cell reads travels


def test_widget_view_holds_the_report_of_the_cell(tmp_path, shared_image):
    session = make_notebook(tmp_path, [COMMON_IMPORTS, "%%mlbox\nprint('x')"],
                            name="analysis.ipynb")
    nb = execute_notebook([
        LOAD,
        "%%mlbox\nprint('inside')",
        "view = get_ipython().magics_manager.registry['MlboxMagics'].last_view\n"
        "print(type(view).__name__, view.state.status)\n"
        "print(view.state.report[0])\n"
        "print(view.report_section.get_title(0) == view.state.report[0])\n"
        "print('lock: none' in view.report.value, '<script' in view.report.value)",
    ], tmp_path, JPY_SESSION_NAME=str(session))
    assert streams(nb.cells[1], "stdout") == "inside\n"
    lines = streams(nb.cells[2], "stdout").splitlines()
    assert lines[0] == "WidgetProgressView done"
    assert re.match(r"before the build: \d+ requirements · no lock", lines[1]), lines[1]
    assert lines[2] == "True"
    assert lines[3] == "True False"

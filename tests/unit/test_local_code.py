"""The notebook's own Python beyond its cells (issue 8 item 2 / issue 13): %run scripts and
local modules walked transitively — their imports count, their files travel."""
from __future__ import annotations

import importlib.metadata as metadata

from jupyter_mlbox.core.build import plan_notebook
from tests.conftest import write_notebook


def test_a_helper_chain_and_a_run_script_bring_their_imports_and_files(tmp_path):
    (tmp_path / "first.py").write_text("import second\n")
    (tmp_path / "second.py").write_text("import pandas\nTABLE = open('data/t.csv').read()\n")
    (tmp_path / "setup_env.py").write_text("import third\n")
    (tmp_path / "third.py").write_text("import numpy as np\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("a\n")
    (tmp_path / "unused.py").write_text("import sympy\n")
    path = write_notebook(tmp_path / "nb.ipynb", ["%run setup_env.py", "import first"])
    _, plan = plan_notebook(path)
    requirements = plan.inference.requirements_txt().splitlines()
    assert f"pandas=={metadata.version('pandas')}" in requirements  # via first → second
    assert f"numpy=={metadata.version('numpy')}" in requirements    # via %run → third
    assert not any(r.startswith("sympy") for r in requirements)
    assert {"first.py", "second.py", "setup_env.py", "third.py", "data/t.csv"} \
        <= set(plan.local_files)
    assert "unused.py" not in plan.local_files


def test_modules_the_notebook_writes_or_compiles_are_local_never_guesses(tmp_path):
    """%%writefile helper.py then import helper; fastloop.pyx beside the notebook (issue 13,
    item 1): no PyPI guess, no unverified warning."""
    (tmp_path / "fastloop.pyx").write_text("def f(int n):\n    return n\n")
    path = write_notebook(tmp_path / "nb.ipynb", [
        "%%writefile mlbox_written_helper.py\nVALUE = 1", "import mlbox_written_helper",
        "import pyximport; pyximport.install()\nimport fastloop"])
    _, plan = plan_notebook(path)
    names = {r.name for r in plan.inference.requirements}
    assert "mlbox-written-helper" not in names and "fastloop" not in names
    assert not any("mlbox_written_helper" in w or "fastloop:" in w for w in plan.warnings)
    assert "fastloop.pyx" in plan.local_files

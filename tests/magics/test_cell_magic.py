"""``%%mlbox`` in a real kernel (nbclient) against the real Docker daemon."""
from __future__ import annotations

import base64
import re

import pytest

from ..integration.helpers import make_notebook
from .helpers import COMMON_IMPORTS, execute_notebook, of_type, own_stderr, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]

LOAD = "%load_ext jupyter_mlbox"


def test_outputs_appear_as_if_the_cell_ran_locally(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --quiet\n"
        "import os, sys\n"
        "import matplotlib.pyplot as plt\n"
        "import pandas as pd\n"
        "print('stdout from', os.environ.get('VIRTUAL_ENV'), 'uid', os.getuid())\n"
        "print('to stderr', file=sys.stderr)\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3], [1, 4, 9])\n"
        "plt.show()\n"
        "class Formula:\n"
        "    def _repr_latex_(self):\n"
        "        return r'$\\alpha^2$'\n"
        "display(Formula())\n"
        "pd.DataFrame({'a': [1, 2], 'b': [3, 4]})",
        "print(type(_).__name__, 'Out' in dir())",
    ], tmp_path)
    cell = nb.cells[2]
    assert not of_type(cell, "error"), of_type(cell, "error")
    assert streams(cell, "stdout") == "stdout from /opt/venv uid 1000\n"
    assert own_stderr(cell) == "to stderr\n"  # --quiet: no progress lines, only warnings
    displays = of_type(cell, "display_data")
    png = [d for d in displays if "image/png" in d.data]
    assert len(png) == 1
    assert base64.b64decode(png[0].data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("text/latex" in d.data for d in displays)
    (result,) = of_type(cell, "execute_result")
    assert "<table" in result.data["text/html"] and "text/plain" in result.data
    assert result.execution_count == 3
    assert streams(nb.cells[3], "stdout") == "ContainerResult True\n"


def test_error_shows_the_in_container_traceback_and_fails_the_cell(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --quiet\n"
        "def helper():\n"
        "    raise ValueError('boom in the box')\n"
        "print('before the error')\n"
        "helper()",
        "print('kernel still fine')",
    ], tmp_path)
    cell = nb.cells[2]
    assert streams(cell, "stdout") == "before the error\n"
    (error,) = of_type(cell, "error")
    assert error.ename == "CellExecutionError"
    assert "ValueError: boom in the box" in error.evalue
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))
    assert "helper()" in traceback and "raise ValueError" in traceback
    assert "raised inside the container" in traceback
    assert "jupyter_mlbox/magics.py" not in traceback  # no local frames
    assert streams(nb.cells[3], "stdout") == "kernel still fine\n"


def test_in_out_round_trip_dataframe_and_fitted_model(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "df = pd.DataFrame({'x': [0, 1, 2, 3, 4, 5, 6, 7], 'y': [0, 0, 0, 0, 1, 1, 1, 1]})\n"
        "params = {'C': 10.0}",
        "%%mlbox --quiet --in df,params --out model,score --out doubled\n"  # no pickle needed

        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression(**params).fit(df[['x']], df.y)\n"
        "score = model.score(df[['x']], df.y)\n"
        "doubled = df.assign(x2=df.x * 2)\n"
        "print('fitted in the container', params['C'])",
        "print(type(model).__name__, model.C, score)\n"
        "print(int(model.predict(pd.DataFrame({'x': [10]}))[0]), int(doubled.x2.sum()))\n"
        "print(type(doubled).__name__, list(doubled.columns))",
    ], tmp_path)
    assert not of_type(nb.cells[3], "error"), of_type(nb.cells[3], "error")
    assert streams(nb.cells[3], "stdout") == "fitted in the container 10.0\n"
    assert streams(nb.cells[4], "stdout") == (
        "LogisticRegression 10.0 1.0\n1 56\nDataFrame ['x', 'y', 'x2']\n")


def test_out_name_the_cell_did_not_define_is_a_clear_error(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --quiet --out missing\nfound = 1",
    ], tmp_path)
    (error,) = of_type(nb.cells[2], "error")
    assert error.ename == "SerializationError"
    assert "missing" in error.evalue and "did not define" in error.evalue


def test_with_setup_runs_only_cells_that_import_or_define(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "import math\nSCALE = 3\n\ndef scaled(x):\n    return x * SCALE",
        "data = [1, 2, 3]\nprint('this cell has a side effect')",
        "class Point:\n    '''A point.'''\n    dims = 2",
        "%%mlbox --with-setup\n"
        "print(scaled(2), round(math.pi, 2), Point.dims, 'data' in globals())",
    ], tmp_path)
    cell = nb.cells[5]
    assert not of_type(cell, "error"), of_type(cell, "error")
    assert streams(cell, "stdout") == "6 3.14 2 False\n"
    # the report names the cells taken (In[n]: execution order in this kernel)
    assert "--with-setup: running In[2], In[3], In[5] first" in streams(cell, "stderr")


def test_second_cell_reuses_the_image(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox\nprint(1)",
        "%%mlbox\nprint(2)",
    ], tmp_path)
    first, second = nb.cells[2], nb.cells[3]
    assert streams(first, "stdout") == "1\n" and streams(second, "stdout") == "2\n"
    assert f"reused {shared_image}" in streams(second, "stderr")
    assert "nothing to build" in streams(second, "stderr")
    assert "step 1/" not in streams(second, "stderr")


def test_session_notebook_decides_dependencies_and_widgets_render(tmp_path, shared_image):
    """With a Jupyter session (JPY_SESSION_NAME) the requirements come from the notebook file,
    not the kernel's history, and progress is an ipywidgets view that collapses when done."""
    session = make_notebook(tmp_path, [COMMON_IMPORTS, "%%mlbox\nprint('x')"],
                            name="analysis.ipynb")
    nb = execute_notebook([
        LOAD,
        "%mlbox requirements",
        "%%mlbox\nprint('inside', 6 * 7)",
        "view = get_ipython().magics_manager.registry['MlboxMagics'].last_view\n"
        "print(type(view).__name__, view.state.status, view.state.phase)\n"
        "print(view.widget.children == (view.summary,), view.stop_button.disabled)\n"
        "print(view.summary.value)",
    ], tmp_path, JPY_SESSION_NAME=str(session))
    requirements = streams(nb.cells[1], "stdout")
    assert "scikit-learn==" in requirements and "pandas==" in requirements
    cell = nb.cells[2]
    assert streams(cell, "stdout") == "inside 42\n"
    views = [d for d in of_type(cell, "display_data")
             if "application/vnd.jupyter.widget-view+json" in d.data]
    assert len(views) == 1
    lines = streams(nb.cells[3], "stdout").splitlines()
    assert lines[0] == "WidgetProgressView done done"
    assert lines[1] == "True True"
    assert "mlbox/analysis:" in lines[2] and "on CPU" in lines[2]


def test_timeout_memory_and_env_reach_the_container(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        "%%mlbox --quiet --timeout 3\nimport time\ntime.sleep(60)",
        "%%mlbox --quiet --memory 300m --cpus 1 -e GREETING='hello there'\n"
        "import os\n"
        "print(os.environ['GREETING'])\n"
        "print(open('/sys/fs/cgroup/memory.max').read().strip()"
        " if os.path.exists('/sys/fs/cgroup/memory.max')"
        " else open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read().strip())",
    ], tmp_path)
    (error,) = of_type(nb.cells[2], "error")
    assert error.ename == "RunTimeoutError" and "timeout of 3 s" in error.evalue
    assert not of_type(nb.cells[3], "error"), of_type(nb.cells[3], "error")
    assert streams(nb.cells[3], "stdout") == f"hello there\n{300 * 2**20}\n"


def test_values_that_cannot_travel_are_clear_serialization_errors(tmp_path, shared_image):
    nb = execute_notebook([
        LOAD, COMMON_IMPORTS,
        # pickles fine here, but cannot be rebuilt in the container
        "class Fragile:\n    def __reduce__(self):\n        return (int, ('not a number',))\n"
        "fragile = Fragile()",
        "%%mlbox --quiet --in fragile\nprint('never')",
        "%%mlbox --quiet --out gen\ngen = (i for i in range(3))",
        "print('kernel fine', 'gen' in dir())",
    ], tmp_path)
    (error,) = of_type(nb.cells[3], "error")
    assert error.ename == "SerializationError"
    assert "--in" in error.evalue and "invalid literal for int()" in error.evalue
    assert "never" not in streams(nb.cells[3], "stdout")
    (error,) = of_type(nb.cells[4], "error")
    assert error.ename == "SerializationError"
    assert "gen (a builtins.generator)" in error.evalue and "--out-pickle" in error.evalue
    assert streams(nb.cells[5], "stdout") == "kernel fine False\n"

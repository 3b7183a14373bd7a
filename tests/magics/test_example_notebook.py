"""example_notebooks/magics_demo.ipynb runs top to bottom in a real kernel, as in JupyterLab
(the kernel knows its notebook, so progress renders as widgets)."""
from __future__ import annotations

import base64
import shutil

import nbformat
import pytest

from tests.conftest import EXAMPLES

from .helpers import execute_notebook, of_type, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]


def test_magics_demo_runs_end_to_end(tmp_path, shared_image):
    demo = tmp_path / "magics_demo.ipynb"
    shutil.copy(EXAMPLES / "magics_demo.ipynb", demo)
    source = nbformat.read(demo, as_version=4)
    code = [cell.source for cell in source.cells if cell.cell_type == "code"]
    nb = execute_notebook(code, tmp_path, JPY_SESSION_NAME=str(demo))
    for cell in nb.cells:
        assert not of_type(cell, "error"), (cell.source, of_type(cell, "error"))
    by_start = {cell.source.splitlines()[0] if cell.source else "": cell for cell in nb.cells}

    train = next(c for c in nb.cells if c.source.startswith("%%mlbox --gpus auto"))
    out = streams(train, "stdout")
    assert "training on 150 rows, 3 classes" in out and "cross-validated accuracy: 0.9" in out
    assert any("application/vnd.jupyter.widget-view+json" in d.data
               for d in of_type(train, "display_data"))
    (model_repr,) = of_type(train, "execute_result")
    assert "RandomForestClassifier" in model_repr.data["text/plain"]

    local = next(c for c in nb.cells if c.source.startswith("print(type(model)"))
    assert streams(local, "stdout").startswith("RandomForestClassifier with 50 trees; mean "
                                               "accuracy 0.9")
    (prediction,) = of_type(local, "execute_result")
    assert prediction.data["text/plain"] == "array([0, 0, 0])"

    plot = next(c for c in nb.cells if "feature importance" in c.source)
    pngs = [d for d in of_type(plot, "display_data") if "image/png" in d.data]
    assert len(pngs) == 1 and base64.b64decode(pngs[0].data["image/png"])[:4] == b"\x89PNG"

    status = streams(by_start["%mlbox status"], "stdout")
    assert "mlbox/magics-demo:" in status and "is up to date" in status

"""``%mlbox status|requirements|dockerfile|build|run|images|config`` in a real kernel."""
from __future__ import annotations

import nbformat
import pytest

from ..integration.helpers import make_notebook
from .helpers import COMMON_IMPORTS, execute_notebook, of_type, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]


def test_line_commands(tmp_path, shared_image):
    other = make_notebook(tmp_path, [COMMON_IMPORTS, "print('ran in a container', 3 * 3)"],
                          name="magics-other.ipynb")
    nb = execute_notebook([
        "%load_ext jupyter_mlbox",
        COMMON_IMPORTS,
        "%mlbox requirements",
        "%mlbox dockerfile --pip 'six>=1.16'",
        "%mlbox build",
        "%mlbox status",
        "%mlbox images",
        "%mlbox config --gpus auto --memory 2g",
        "%mlbox config",
        f"%mlbox run {other.name} --quiet",
        "%mlbox run",
    ], tmp_path)
    for index in range(9):
        assert not of_type(nb.cells[index], "error"), (index, of_type(nb.cells[index], "error"))
    requirements = streams(nb.cells[2], "stdout").splitlines()
    assert any(r.startswith("pandas==") for r in requirements)
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("matplotlib==") for r in requirements)
    dockerfile = streams(nb.cells[3], "stdout")
    assert dockerfile.count("FROM ") == 2 and "six>=1.16" in dockerfile  # the --pip reached it
    assert streams(nb.cells[4], "stdout").strip() == shared_image
    assert f"reused {shared_image}" in streams(nb.cells[4], "stderr")
    assert "before the build: " in streams(nb.cells[4], "stderr")  # the plan's summary
    status = streams(nb.cells[5], "stdout")
    assert "ok  docker daemon" in status and "GPU runtime" in status
    assert f"ok  image: {shared_image}" in status and "is up to date" in status
    assert shared_image in streams(nb.cells[6], "stdout")
    assert "--gpus auto --memory 2g" in streams(nb.cells[8], "stdout")

    run = nb.cells[9]
    assert not of_type(run, "error"), of_type(run, "error")
    out = tmp_path / "magics-other.mlbox.ipynb"
    assert out.is_file()
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "ran in a container 9\n"
    links = [d for d in of_type(run, "display_data") if "text/html" in d.data]
    assert links and "magics-other.mlbox.ipynb" in links[0].data["text/html"]
    assert "wrote magics-other.mlbox.ipynb" in streams(run, "stdout")

    # no notebook known for this kernel: IPython prints a UsageError as one line on stderr
    assert "UsageError: %mlbox run: which notebook?" in streams(nb.cells[10], "stderr")
    assert "give a path" in streams(nb.cells[10], "stderr")

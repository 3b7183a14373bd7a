from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_image(engine, tmp_path_factory):
    """Build (or reuse) the image every %%mlbox test cell infers, once, outside any test's
    timing: the first build of pandas + scikit-learn + matplotlib takes a minute or two. Built
    by ``%mlbox build`` in a real kernel that ran the same imports, since what the kernel
    loaded counts too (tracing is on by default)."""
    from .helpers import COMMON_IMPORTS, execute_notebook, streams

    nb = execute_notebook(["%load_ext jupyter_mlbox", COMMON_IMPORTS, "%mlbox build --quiet"],
                          tmp_path_factory.mktemp("img"))
    tag = streams(nb.cells[2], "stdout").strip()
    assert tag.startswith("mlbox/kernel:"), nb.cells[2].outputs
    return tag


@pytest.fixture(scope="module")
def ip():
    """An in-process IPython shell with the extension loaded (no kernel, no daemon)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_mlbox")
    return shell


@pytest.fixture
def no_leftover_cell_containers(engine):
    """Fails the test if a container of a %%mlbox cell (or %mlbox run) outlives it.

    Counts only the containers these front ends create — their notebook label ends in
    ``-cell-<id>.ipynb`` or names a ``magics-*`` notebook of these tests — so another run on the
    same daemon (a CI clone, say) does not count against this one."""
    from jupyter_mlbox.core.dockerfile import NOTEBOOK_LABEL

    from ..conftest import containers_not_left_behind

    def ours(labels):
        notebook = labels.get(NOTEBOOK_LABEL, "")
        return "-cell-" in notebook or notebook.startswith("magics-")

    with containers_not_left_behind(engine, ours):
        yield

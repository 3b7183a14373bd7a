from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_image(engine, tmp_path_factory):
    """Build (or reuse) the image every %%mlbox test cell infers, once, outside any test's
    timing: the first build of pandas + scikit-learn + matplotlib takes a minute or two."""
    from jupyter_mlbox.core.build import build_image, plan_image
    from jupyter_mlbox.magics import KERNEL_NOTEBOOK_NAME

    from .helpers import COMMON_IMPORTS

    plan = plan_image(["%load_ext jupyter_mlbox", COMMON_IMPORTS],
                      notebook_name=KERNEL_NOTEBOOK_NAME, search_dir=tmp_path_factory.mktemp("img"))
    return build_image(engine, plan).tag


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

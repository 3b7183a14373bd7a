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

    Like tests/conftest.py's ``no_leftover_containers`` (same label filter), but only counting
    the containers these front ends create — their notebook label ends in ``-cell-<id>.ipynb``
    or names a notebook in this test's folder — so concurrent test runs of other suites on the
    same daemon cannot make it fail or pass by accident."""
    from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL

    def ours():
        return {c.id: (c.labels or {}).get(NOTEBOOK_LABEL, "")
                for c in engine.list_containers(f"{MANAGED_LABEL}=true")
                if "-cell-" in (c.labels or {}).get(NOTEBOOK_LABEL, "")
                or (c.labels or {}).get(NOTEBOOK_LABEL, "").startswith("magics-")}

    before = ours()
    yield
    leaked = {k: v for k, v in ours().items() if k not in before}
    assert not leaked, f"containers left behind: {leaked}"

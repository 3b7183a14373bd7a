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

    Like tests/conftest.py's ``no_leftover_containers`` (same label filter), but counting only
    the containers these front ends create — their notebook label ends in ``-cell-<id>.ipynb``
    or names a ``magics-*`` notebook of these tests. Another run of this suite on the same
    daemon (a CI clone, say) may have such a container alive at teardown; it removes it within
    seconds, while a real leak stays: so a new container only counts as left behind when it is
    still there after a grace period."""
    import time

    from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL

    def ours():
        found = {}
        for container in engine.list_containers(f"{MANAGED_LABEL}=true"):
            notebook = (container.labels or {}).get(NOTEBOOK_LABEL, "")
            if "-cell-" in notebook or notebook.startswith("magics-"):
                found[container.id] = notebook
        return found

    before = ours()
    yield
    leaked = {k: v for k, v in ours().items() if k not in before}
    deadline = time.monotonic() + 120
    while leaked and time.monotonic() < deadline:
        time.sleep(2)
        still = ours()
        leaked = {k: v for k, v in leaked.items() if k in still}
    assert not leaked, f"containers left behind: {leaked}"

"""Shared fixtures. Tests that need Docker talk to the real daemon; in CI a missing daemon fails
them (it never skips them), elsewhere they skip with the reason."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, default_base_image
from jupyter_mlbox.errors import DaemonUnavailableError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_notebooks"


def write_notebook(path: Path, cells, *, name: str | None = None) -> Path:
    """The one notebook factory of the tests: write a v4 notebook of code ``cells`` (each a
    source, or ``(source, tags)``) to ``path`` (or to ``path / name`` when ``name`` is given;
    parent folders are made) and return where it went."""
    import nbformat

    from jupyter_mlbox.core.notebook import new_notebook_from_cells

    path = Path(path) / name if name else Path(path)
    pairs = [(cell, []) if isinstance(cell, str) else cell for cell in cells]
    nb = new_notebook_from_cells([source for source, _ in pairs])
    for cell, (_, tags) in zip(nb.cells, pairs):
        if tags:
            cell.metadata["tags"] = list(tags)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def engine():
    """The real Docker daemon (DOCKER_HOST or the local socket)."""
    from jupyter_mlbox.core.engine import connect

    try:
        engine = connect()
    except DaemonUnavailableError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker daemon: {err}")
        pytest.skip(str(err))
    if not engine.image_exists(default_base_image()):
        pytest.fail(f"base image {default_base_image()} is missing: run scripts/ensure-base-image.sh")
    return engine


@contextlib.contextmanager
def containers_not_left_behind(engine, counts=lambda labels: True, grace_seconds: float = 120):
    """Fail if a jupyter_mlbox container (among those ``counts`` selects by labels) created
    inside the block outlives it.

    A container still being removed when the block ends gets a grace period: a real leak stays,
    and one removed in time does not count."""
    def present() -> dict[str, dict]:
        return {c.id: c.labels or {} for c in engine.list_containers(f"{MANAGED_LABEL}=true")
                if counts(c.labels or {})}

    before = present()
    yield
    leaked = {k: v for k, v in present().items() if k not in before}
    deadline = time.monotonic() + grace_seconds
    while leaked and time.monotonic() < deadline:
        time.sleep(2)
        leaked = {k: v for k, v in present().items() if k in leaked}
    assert not leaked, f"containers left behind: {leaked}"


@pytest.fixture
def no_leftover_containers(engine):
    """Fails the test if it leaves a jupyter_mlbox container behind."""
    with containers_not_left_behind(engine):
        yield

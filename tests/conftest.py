"""Shared fixtures. Tests that need Docker talk to the real daemon; in CI a missing daemon fails
them (it never skips them), elsewhere they skip with the reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, default_base_image
from jupyter_mlbox.errors import DaemonUnavailableError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = ROOT / "example_notebooks"


@pytest.fixture(scope="session")
def engine():
    """The real Docker daemon (DOCKER_HOST or the local socket)."""
    from jupyter_mlbox.core.engine import DockerEngine

    try:
        engine = DockerEngine.connect()
    except DaemonUnavailableError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker daemon: {err}")
        pytest.skip(str(err))
    if not engine.image_exists(default_base_image()):
        pytest.fail(f"base image {default_base_image()} is missing: run scripts/ensure-base-image.sh")
    return engine


@pytest.fixture
def no_leftover_containers(engine):
    """Fails the test if it leaves a jupyter_mlbox container behind."""
    before = {c.id for c in engine.list_containers(MANAGED_LABEL)}
    yield
    after = {c.id for c in engine.list_containers(MANAGED_LABEL)}
    leaked = after - before
    assert not leaked, f"containers left behind: {leaked}"

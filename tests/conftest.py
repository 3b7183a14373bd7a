"""Shared fixtures. Tests that need Docker talk to the real daemon; in CI a missing daemon fails
them (it never skips them), elsewhere they skip with the reason."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, default_base_image
from jupyter_mlbox.errors import DaemonUnavailableError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_notebooks"
#: Which engine the Docker tests talk to: ``docker`` (dockerd, or what DOCKER_HOST names) or
#: ``podman`` (MLBOX_TEST_ENGINE=podman: a real rootful Podman service through its
#: Docker-compatible API, started by scripts/ensure-podman.sh before the tests).
TEST_ENGINE = os.environ.get("MLBOX_TEST_ENGINE", "docker").strip().lower() or "docker"


def pytest_configure(config):
    """Podman runs: start its service (and load the base image into it), then point every
    client of these tests at it (this process, CLI subprocesses, servers, ``docker`` commands)."""
    if TEST_ENGINE == "docker":
        return
    if TEST_ENGINE != "podman":
        raise pytest.UsageError(f"MLBOX_TEST_ENGINE={TEST_ENGINE}: expected docker or podman")
    try:  # 10 minutes: installing Podman and loading the base image, on a cold machine
        started = subprocess.run(["bash", str(ROOT / "scripts" / "ensure-podman.sh")],
                                 capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as hung:
        raise pytest.UsageError("MLBOX_TEST_ENGINE=podman, but scripts/ensure-podman.sh did not "
                                f"return within {hung.timeout:.0f} s") from None
    if started.returncode != 0:
        raise pytest.UsageError(f"MLBOX_TEST_ENGINE=podman, but scripts/ensure-podman.sh "
                                f"failed:\n{started.stderr[-2000:]}")
    os.environ["DOCKER_HOST"] = started.stdout.strip().splitlines()[-1]


def skip_on_podman(reason: str):
    """Marks a test that cannot work against Podman, and says why."""
    return pytest.mark.skipif(TEST_ENGINE == "podman", reason=f"Podman: {reason}")


def notebook_node(cells):
    """The one notebook factory of the tests: a v4 notebook of code ``cells``, each a source
    or ``(source, tags)``."""
    from jupyter_mlbox.core.notebook import new_notebook_from_cells

    pairs = [(cell, []) if isinstance(cell, str) else cell for cell in cells]
    nb = new_notebook_from_cells([source for source, _ in pairs])
    for cell, (_, tags) in zip(nb.cells, pairs):
        if tags:
            cell.metadata["tags"] = list(tags)
    return nb


def work_until_cancelled(started):
    """Task work that says it runs (sets ``started``) and then waits for its cancel token."""
    from jupyter_mlbox.core.events import ProgressEvent

    def work(emit, cancel):
        emit(ProgressEvent("running", "phase", "waiting for a cancel"))
        started.set()
        while not cancel.wait(0.01):
            pass
        cancel.raise_if_cancelled()
    return work


def write_notebook(path: Path, cells, *, name: str | None = None) -> Path:
    """:func:`notebook_node` of ``cells`` written to ``path`` (or to ``path / name`` when
    ``name`` is given; parent folders are made); returns where it went."""
    import nbformat

    path = Path(path) / name if name else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook_node(cells), path)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory):
    """A real Docker registry (Debian ``docker-registry``) on a loopback port.

    dockerd treats 127.0.0.0/8 as an insecure registry, so plain HTTP works. Yields
    ``127.0.0.1:PORT``.
    """
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        pytest.fail("docker-registry is missing: run scripts/install-test-deps.sh")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / 'data'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = open(root / "registry.log", "wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail("docker-registry exited: "
                                + (root / "registry.log").read_text()[-2000:])
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not answer within 10 s")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()

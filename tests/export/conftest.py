"""Fixtures for exported images: tiny notebooks and a real local registry."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest


def make_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    """A notebook whose code cells are ``(source, tags)``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def stdlib_notebook(tmp_path) -> Path:
    """Stdlib only (quick to build), a parameters cell, and a local data file it reads."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "greeting.txt").write_text("hello from the image\n")
    return make_notebook(folder / "params.ipynb", [
        ("n = 2\nword = 'x'", ["parameters"]),
        ("import json, pathlib\ntext = pathlib.Path('greeting.txt').read_text().strip()\n"
         "print(text)", []),
        ("print(json.dumps({'n': n, 'word': word, 'square': n * n}))", []),
    ])


@pytest.fixture
def failing_notebook(tmp_path) -> Path:
    folder = tmp_path / "failing"
    folder.mkdir()
    return make_notebook(folder / "boom.ipynb", [
        ("print('before')", []),
        ("raise ValueError('exported boom')", []),
        ("print('never')", []),
    ])


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """A folder to bind-mount as /out: the image runs as uid 1000, so it must be writable."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    return out


def _free_port() -> int:
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
    port = _free_port()
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

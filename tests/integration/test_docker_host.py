"""DOCKER_HOST pointing elsewhere than the local socket: the round trip still works, because
files travel through the API (put_archive / get_archive), never through bind mounts.

The "remote" daemon is the local one reached over TCP through a loopback forwarder, so the
client has no shared filesystem path to lean on: only the API."""
from __future__ import annotations

import socket
import threading

import nbformat
import pytest

from ..conftest import write_notebook
from .helpers import cli, outputs

pytestmark = pytest.mark.docker


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tcp_docker_host():
    """tcp://127.0.0.1:PORT forwarding to /var/run/docker.sock, for the test's duration."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect("/var/run/docker.sock")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_run_over_tcp_docker_host(tmp_path, engine, tcp_docker_host, no_leftover_containers):
    path = write_notebook(tmp_path / "t.ipynb",
                          ["import numpy as np\nprint('over tcp', np.ones(2).sum())"])
    doctor = cli("doctor", env={"DOCKER_HOST": tcp_docker_host})
    assert tcp_docker_host in doctor.stdout
    result = cli("run", str(path), env={"DOCKER_HOST": tcp_docker_host})
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "t.mlbox.ipynb", as_version=4)
    assert "over tcp 2.0\n" in [o.get("text") for o in outputs(nb)]

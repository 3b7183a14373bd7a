"""Sessions against the real daemon: one container, one kernel, driven cell by cell."""
from __future__ import annotations

import os

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.events import CancelToken
from jupyter_mlbox.core.session import Session, list_sessions
from jupyter_mlbox.errors import ContainerExitError, KernelDiedError

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

NOTEBOOK = "session-test.ipynb"


@pytest.fixture(scope="module")
def image(engine, tmp_path_factory):
    """The smallest image (the runtime alone), built once and reused by tag."""
    plan = plan_image(["x = 1"], notebook_name=NOTEBOOK,
                      search_dir=tmp_path_factory.mktemp("session"))
    return build_image(engine, plan).tag


@pytest.fixture
def session(engine, image):
    session = Session.start(engine, image, name="test", notebook=NOTEBOOK)
    yield session
    session.stop()


def texts(result, cell=0):
    return "".join(o.get("text", "") for o in result.notebook.cells[cell].outputs
                   if o.get("output_type") == "stream")


def value(result, cell=0):
    return next(o["data"]["text/plain"] for o in result.notebook.cells[cell].outputs
                if o.get("output_type") == "execute_result")


def test_state_survives_across_cells(session):
    assert session.run_cell(["x = 41\nimport os\npid = os.getpid()"]).status == "ok"
    result = session.run_cell(["import os\n(x + 1, os.getpid() == pid)"])
    assert result.status == "ok" and value(result) == "(42, True)"
    assert not result.fresh_kernel


def test_live_output_arrives_before_the_cell_ends(engine, session):
    """The cell prints, then waits for a file only the host's output callback puts in: it can
    end only if its first print reached the host while it ran (else it gives up after 60 s)."""
    seen = []

    def on_output(output, cell):
        seen.append(output)
        if "waiting" in output.get("text", ""):
            engine.put_files(session.container, "/home/mlbox/work", {"go": b""})

    result = session.run_cell([
        "import os, time\nprint('waiting', flush=True)\ndeadline = time.time() + 60\n"
        "while not os.path.exists('go') and time.time() < deadline:\n    time.sleep(0.01)\n"
        "print('released' if os.path.exists('go') else 'gave up')"], on_output=on_output)
    assert texts(result) == "waiting\nreleased\n"
    assert [o["text"] for o in seen] == ["waiting\n", "released\n"]
    assert result.received == result.streamed == 2


def test_interrupt_stops_the_cell_and_keeps_the_state(session):
    session.run_cell(["x = 5"])
    cancel = CancelToken()

    def on_output(output, cell):
        if "started" in output.get("text", ""):
            cancel.cancel()

    result = session.run_cell(["import time\nprint('started', flush=True)\n"
                               "for _ in range(600):\n    time.sleep(0.1)\nprint('not interrupted')"],
                              on_output=on_output, cancel=cancel)
    assert result.status == "interrupted" and result.outcome["ename"] == "KeyboardInterrupt"
    assert "not interrupted" not in texts(result)
    after = session.run_cell(["x"])
    assert after.status == "ok" and value(after) == "5" and not after.fresh_kernel


def test_a_dead_kernel_is_said_and_the_next_cell_gets_a_fresh_one(session):
    session.run_cell(["x = 5"])
    died = session.run_cell(["import os\nos._exit(1)"])
    assert died.status == "kernel-died"
    with pytest.raises(KernelDiedError, match="state of earlier cells is lost"):
        died.raise_for_status()
    after = session.run_cell(["'x' in dir()"])
    assert after.status == "ok" and after.fresh_kernel and value(after) == "False"
    assert session.alive  # the same container
    assert session.run_cell(["1"]).fresh_kernel is False  # said once


def test_a_cell_error_keeps_the_session(session):
    session.run_cell(["x = 3"])
    failed = session.run_cell(["raise ValueError('boom')"])
    assert failed.status == "error" and failed.outcome["ename"] == "ValueError"
    assert value(session.run_cell(["x"])) == "3"


def test_stop_removes_the_container(engine, image):
    session = Session.start(engine, image, name="stopped", notebook=NOTEBOOK)
    assert session.container.id in {s.container.id for s in list_sessions(engine)}
    session.stop()
    assert session.container.id not in {c.id for c in engine.list_containers(
        "io.jupyter-mlbox.managed=true")}
    with pytest.raises(ContainerExitError, match="has ended"):
        session.run_cell(["1"])


def test_idle_timeout_ends_and_removes_the_container(engine, image):
    import time

    session = Session.start(engine, image, name="idle", notebook=NOTEBOOK, idle=1)
    try:
        deadline = time.monotonic() + 60
        while session.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session.ended == "it was idle for 1 s"
        while time.monotonic() < deadline and session.container.id in {
                c.id for c in engine.list_containers("io.jupyter-mlbox.managed=true")}:
            time.sleep(0.1)
        assert session.container.id not in {
            c.id for c in engine.list_containers("io.jupyter-mlbox.managed=true")}
    finally:
        session.stop()


@pytest.fixture
def tcp_docker_host():
    """``tcp://127.0.0.1:PORT`` in front of the suite's daemon: a plain TCP forwarder to its
    socket (a daemon on another machine would listen on TCP itself; none exists here)."""
    import socket
    import threading

    from tests.conftest import free_port

    def pipe(source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_WR)  # a half-close is what attach streams expect
            except OSError:
                pass

    host = os.environ.get("DOCKER_HOST", "")  # Podman's, when MLBOX_TEST_ENGINE=podman
    suite_socket = host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                continue
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(suite_socket)
            for a, b in ((client, daemon), (daemon, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    server.close()


def test_a_session_through_docker_host_tcp(tcp_docker_host, image, monkeypatch):
    """Everything over the Docker API (attach, stdin lines, put_archive): nothing assumes a
    local socket."""
    from jupyter_mlbox.core.engine import connect

    monkeypatch.setenv("DOCKER_HOST", tcp_docker_host)
    remote = connect()
    assert remote.host == tcp_docker_host
    seen = []
    session = Session.start(remote, image, name="tcp", notebook=NOTEBOOK)
    try:
        assert session.run_cell(["x = 20"]).status == "ok"
        result = session.run_cell(["print('over tcp', flush=True)\nx + 22"],
                                  on_output=lambda output, cell: seen.append(output))
        assert result.status == "ok" and value(result) == "42"
        assert [o.get("text") for o in seen] == ["over tcp\n"]
    finally:
        session.stop()
    assert not [s for s in list_sessions(remote) if s.name == "tcp"]

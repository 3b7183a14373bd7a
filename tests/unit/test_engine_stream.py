"""Guards the one reach below public APIs that build cancellation relies on
(core.docker_engine.socket_of: requests response → urllib3 response → connection → socket).

A tiny HTTP server on loopback streams one chunk and then holds the response open, as dockerd
does during a long build step; the tests prove that the socket is found, that shutting it down
makes a blocked reader return, and that the server sees its client go (dockerd aborts a
classic build then). If requests, urllib3 or docker-py change what socket_of walks, these fail.
"""
from __future__ import annotations

import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import pytest
import requests

from jupyter_mlbox.core.docker_engine import abort_stream, socket_of

FIRST_CHUNK = b'{"stream": "Step 1/2 : FROM scratch\\n"}\r\n'


class StreamingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.client_gone = threading.Event()
        self.requests: list[tuple[str, str, int]] = []  # method, path, body bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked, as dockerd streams a build

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _stream(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.command, self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(FIRST_CHUNK), FIRST_CHUNK))
        self.wfile.flush()
        self.connection.settimeout(30)
        try:
            if self.rfile.read(1) == b"":  # nothing more is sent: EOF means the client left
                self.server.client_gone.set()
        except OSError:
            self.server.client_gone.set()

    do_GET = do_POST = _stream


@pytest.fixture
def server():
    server = StreamingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def read_in_thread(chunks) -> tuple[threading.Thread, list, threading.Event]:
    """Iterate ``chunks`` on a thread; return it, what it read, and an event set at the first
    chunk."""
    got, first = [], threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                got.append(chunk)
                first.set()
        except Exception as err:  # noqa: BLE001 - an aborted stream may end either way
            got.append(err)
        first.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got, first


def abort_promptly(response) -> None:
    """abort_stream on a thread of its own, which must be done in 5 s: closing a response that
    another thread reads from (what abort_stream did without the socket) blocks on the reader's
    lock until the read times out."""
    aborter = threading.Thread(target=abort_stream, args=(response,), daemon=True)
    aborter.start()
    aborter.join(5)
    assert not aborter.is_alive(), "abort_stream blocked"


def test_socket_of_a_streaming_requests_response_is_its_connection(server):
    address = server.server_address
    response = requests.get(f"http://{address[0]}:{address[1]}/stream", stream=True, timeout=60)
    sock = socket_of(response)
    assert isinstance(sock, socket.socket)
    assert sock.getpeername()[:2] == address  # the socket of this very response

    thread, got, first = read_in_thread(response.iter_content(chunk_size=None))
    assert first.wait(5) and got[0] == FIRST_CHUNK
    thread.join(0.3)
    assert thread.is_alive(), "the reader should be blocked on the open stream"
    abort_promptly(response)
    thread.join(5)
    assert not thread.is_alive(), "abort_stream did not wake the blocked reader"
    assert server.client_gone.wait(5), "the server never saw its client go"


def test_abort_stream_stops_a_docker_py_build_stream(server):
    """As DockerEngine.build does it: a requests response hook on docker-py's APIClient (a
    requests.Session) catches the build's streaming response; aborting it ends the build."""
    host, port = server.server_address
    api = docker.APIClient(base_url=f"tcp://{host}:{port}", version="1.41", timeout=None)
    assert isinstance(api, requests.Session)
    streams = []
    api.hooks["response"].append(lambda response, **_: streams.append(response))
    try:
        chunks = api.build(fileobj=io.BytesIO(b"context"), custom_context=True, tag="t:1",
                           rm=True, forcerm=True, pull=False, decode=True)
        thread, got, first = read_in_thread(chunks)
        assert first.wait(5)
        assert got[0] == {"stream": "Step 1/2 : FROM scratch\n"}
        assert [(m, p.split("?")[0]) for m, p, _ in server.requests] == [("POST", "/v1.41/build")]
        assert len(streams) == 1 and isinstance(socket_of(streams[0]), socket.socket)
        abort_promptly(streams[-1])
        thread.join(5)
        assert not thread.is_alive(), "the build stream kept blocking after abort_stream"
        assert server.client_gone.wait(5), "dockerd would not have seen its client go"
    finally:
        api.close()


def test_socket_of_is_none_without_a_connection_and_abort_stream_of_none_is_quiet():
    assert socket_of(object()) is None
    assert socket_of(requests.Response()) is None  # no raw stream at all
    abort_stream(None)

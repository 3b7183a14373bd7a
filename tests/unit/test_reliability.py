"""Issue 14 §2/§3 offline: what decides layer sharing, orphan reaping, the build lock and
pruning — without a daemon."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from jupyter_mlbox.core import orphans
from jupyter_mlbox.core.build_lock import build_lock
from jupyter_mlbox.core.dockerfile import ImageSpec, render_build_context
from jupyter_mlbox.core.events import CancelToken
from jupyter_mlbox.errors import UserCancelledError

from .memory_engine import MemoryEngine


@pytest.fixture
def memory_engine():
    return MemoryEngine(images=("img",))


def test_nothing_of_the_notebook_comes_before_the_final_label():
    """Two notebooks with the same requirements render the same Dockerfile up to the final
    stage's LABEL: the layer cache is shared, only the tag and the labels differ."""
    one, two = (render_build_context(ImageSpec(("numpy==1.26.4",), notebook_name=name))
                for name in ("first.ipynb", "Second one.ipynb"))
    assert one.tag != two.tag
    head = [text.split("LABEL io.jupyter-mlbox.managed")[0]
            for text in (one.dockerfile, two.dockerfile)]
    assert head[0] == head[1]
    assert "first" not in head[0] and "second" not in head[0].lower()


def test_owner_gone_only_for_a_dead_process_of_this_host():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    me = orphans.owner_labels()
    assert me[orphans.OWNER_PID_LABEL] == str(os.getpid()) and me[orphans.RUN_ID_LABEL]
    assert not orphans.owner_gone(me)
    dead = {**me, orphans.OWNER_PID_LABEL: str(child.pid), orphans.OWNER_START_LABEL: "1"}
    assert orphans.owner_gone(dead)
    assert not orphans.owner_gone({**dead, orphans.OWNER_HOST_LABEL: host + "-elsewhere"})
    assert not orphans.owner_gone({})  # no owner labels: not ours to judge
    reused = {**me, orphans.OWNER_PID_LABEL: "1", orphans.OWNER_START_LABEL: "999999999999"}
    assert orphans.owner_gone(reused)  # pid 1 is alive, but it is not the process that ran


def test_reap_removes_only_orphans(memory_engine):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = {**orphans.owner_labels(), orphans.OWNER_PID_LABEL: str(child.pid)}
    live = orphans.owner_labels()
    made = {name: memory_engine.create_container(
        "img", ["true"], environment={}, labels={"io.jupyter-mlbox.managed": "true", **labels})
        for name, labels in (("dead", dead), ("live", live),
                             ("old", {"io.jupyter-mlbox.managed": "true"}))}
    removed = orphans.reap_orphans(memory_engine)
    assert [c.id for c in removed] == [made["dead"].id]
    assert {c.id for c in memory_engine.list_containers("io.jupyter-mlbox.managed=true")} == \
        {made["live"].id, made["old"].id}


def test_the_build_lock_serialises_threads_and_a_waiter_can_be_cancelled(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    holding, release, waited = threading.Event(), threading.Event(), []

    def holder():
        with build_lock("k"):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(10)
    cancel = CancelToken()
    with pytest.raises(UserCancelledError, match="waiting"):
        with build_lock("k", cancel=cancel, on_wait=lambda: (waited.append(1), cancel.cancel())):
            pytest.fail("entered a lock another thread holds")
    assert waited == [1]
    release.set()
    thread.join(10)
    with build_lock("k") as had_to_wait:
        assert had_to_wait is False


def test_the_build_lock_holds_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    code = ("import sys, time\nfrom jupyter_mlbox.core.build_lock import build_lock\n"
            "with build_lock('k'):\n    print('in', flush=True)\n    sys.stdin.read()\n")
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    try:
        assert other.stdout.readline().strip() == "in"
        cancel, waited = CancelToken(), []
        with pytest.raises(UserCancelledError):
            with build_lock("k", cancel=cancel,
                            on_wait=lambda: (waited.append(1), cancel.cancel())):
                pytest.fail("entered a lock another process holds")
        assert waited == [1]
    finally:
        other.communicate("", timeout=10)
    with build_lock("k") as had_to_wait:
        assert had_to_wait is False


def test_prune_removes_builder_and_untagged_images_only(memory_engine):
    from jupyter_mlbox.core.images import list_leftover_images, prune_leftover_images

    def image(id_, tags, labels):
        memory_engine.images[id_] = {"Id": id_, "RepoTags": tags, "Size": 10, "Created": id_,
                                     "Config": {"Labels": labels}}

    image("sha256:b1", [], {"io.jupyter-mlbox.build-step": "builder"})
    image("sha256:u1", ["<none>:<none>"], {"io.jupyter-mlbox.managed": "true"})
    image("mlbox/keep:1", ["mlbox/keep:1"], {"io.jupyter-mlbox.managed": "true"})
    image("sha256:other", [], {"someone.else": "x"})
    assert {i.id for i in list_leftover_images(memory_engine)} == {"sha256:b1", "sha256:u1"}
    removed, kept = prune_leftover_images(memory_engine)
    assert {i.id for i in removed} == {"sha256:b1", "sha256:u1"} and kept == []
    assert set(memory_engine.images) >= {"mlbox/keep:1", "sha256:other"}
    assert "sha256:b1" not in memory_engine.images


def test_daemon_gone_names_the_innermost_reason():
    import requests.exceptions
    import urllib3.exceptions

    from jupyter_mlbox.core.docker_engine import daemon_gone
    from jupyter_mlbox.errors import DaemonGoneError

    reset = ConnectionResetError(104, "Connection reset by peer")
    wrapped = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", reset))
    gone = daemon_gone("ssh://gpu-box", wrapped)
    assert isinstance(gone, DaemonGoneError)
    assert "at ssh://gpu-box went away (connection reset by peer)" in str(gone)
    assert daemon_gone("ssh://gpu-box", ValueError("not a connection error")) is None


def test_requirements_with_extras_read_back_whole_from_the_image_label():
    from jupyter_mlbox.core.dockerfile import REQUIREMENTS_LABEL
    from jupyter_mlbox.core.images import label_requirements

    labels = {REQUIREMENTS_LABEL: "dask[array,dataframe]==2024.1.0,numpy==1.26.4,x[a]==1"}
    assert label_requirements(labels) == ("dask[array,dataframe]==2024.1.0", "numpy==1.26.4",
                                          "x[a]==1")
    assert label_requirements({}) == ()


def test_a_daemon_that_drops_a_build_midway_is_one_sentence(tmp_path):
    """A stand-in daemon socket that answers the build's POST with the start of a stream and
    then closes (what a killed dockerd does to its client): DaemonGoneError, not a crash."""
    import socket
    import threading

    import docker

    from jupyter_mlbox.core.docker_engine import DockerEngine
    from jupyter_mlbox.errors import DaemonGoneError

    path = str(tmp_path / "d.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     b"1c\r\n{\"stream\":\"Step 1/9 : FROM\"}\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    kwargs = {"base_url": f"unix://{path}"}
    engine = DockerEngine(docker.DockerClient(version="1.41", **kwargs), kwargs)
    with pytest.raises(DaemonGoneError, match="went away"):
        engine.build(b"\0" * 1024, "mlbox/t:1", on_line=lambda line: None,
                     on_step=lambda i, n, text: None)
    server.close()

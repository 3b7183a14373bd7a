"""``GET /mlbox/api/sessions`` and ``DELETE /mlbox/api/sessions/<key>`` on a real server: a
session a kernel (here: this test, through the core) started is listed and stopped by REST."""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL
from jupyter_mlbox.core.session import Session

from ..integration import test_session

NOTEBOOK = test_session.NOTEBOOK
image = test_session.image  # its module-scoped image fixture, reused here

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]


@pytest.fixture
def session(engine, image):
    session = Session.start(engine, image, name=f"rest-{uuid.uuid4().hex[:8]}",
                            notebook=NOTEBOOK)
    yield session
    session.stop()


def managed_ids(engine) -> set[str]:
    return {c.id for c in engine.list_containers(f"{MANAGED_LABEL}=true")}


async def test_sessions_are_listed_and_one_is_stopped_by_its_key(engine, image, session, api):
    code, body = await api.get("sessions")
    assert code == 200, body
    mine = [s for s in body["sessions"] if s["container"] == session.container.short_id]
    assert len(mine) == 1, body
    listed = mine[0]
    assert {k: listed[k] for k in ("name", "notebook", "image", "gpus", "owner_pid",
                                   "owner_host")} == {
        "name": session.name, "notebook": NOTEBOOK, "image": image, "gpus": "none",
        "owner_pid": str(os.getpid()), "owner_host": socket.gethostname()}
    assert isinstance(listed["age_s"], int) and 0 <= listed["age_s"] < 600
    assert listed["idle_timeout_s"] == 3600
    # what its container uses now (docker stats, less the page cache): a kernel is tens of MB
    assert isinstance(listed["memory_bytes"], int) and 10e6 < listed["memory_bytes"] < 2e9
    assert listed["key"].endswith(f"/{NOTEBOOK}/{session.name}")

    code, _ = await api.delete("sessions", listed["key"])  # jp_fetch escapes the slashes
    assert code == 204
    assert session.container.id not in managed_ids(engine)
    code, body = await api.get("sessions")
    assert session.container.short_id not in {s["container"] for s in body["sessions"]}
    for _ in range(600):  # its owner sees the stream end: the next cell would say so
        if not session.alive:
            break
        await asyncio.sleep(0.05)
    assert not session.alive


async def test_an_unknown_key_is_404_and_a_name_is_not_a_key(engine, session, api):
    code, body = await api.delete("sessions", f"nobody/1/x.ipynb/{uuid.uuid4().hex[:8]}")
    assert code == 404 and "no session" in body["message"], body
    code, body = await api.delete("sessions", session.name)  # a name may be many sessions
    assert code == 404, body
    assert session.container.id in managed_ids(engine)


async def test_sessions_need_a_token(jp_serverapp, http_server_client, jp_base_url):
    base = f"{jp_base_url}mlbox/api/"
    for method, path in [("GET", "sessions"), ("DELETE", "sessions/a%2Fb")]:
        response = await http_server_client.fetch(base + path, method=method,
                                                  raise_error=False,
                                                  allow_nonstandard_methods=True)
        assert response.code == 403, (method, path, response.code)

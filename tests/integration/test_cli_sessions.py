"""`jupyter mlbox sessions [stop]` against the real daemon: a session another process started
(here: this test, through the core) is listed with its labels and removed by the CLI."""
from __future__ import annotations

import os
import re
import socket
import time
import uuid

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL
from jupyter_mlbox.core.session import Session, list_sessions

from .helpers import cli
from . import test_session

NOTEBOOK = test_session.NOTEBOOK
image = test_session.image  # its module-scoped image fixture, reused here

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]


def managed_ids(engine) -> set[str]:
    return {c.id for c in engine.list_containers(f"{MANAGED_LABEL}=true")}


@pytest.fixture
def session(engine, image):
    """A session with a name no other test uses: `stop NAME` must reach this one only."""
    session = Session.start(engine, image, name=f"cli-{uuid.uuid4().hex[:8]}",
                            notebook=NOTEBOOK)
    yield session
    session.stop()


def rows(stdout: str) -> list[dict]:
    header, *lines = stdout.splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]


def test_cli_lists_a_session_and_stops_it_by_key(engine, image, session):
    listed = cli("sessions")
    assert listed.returncode == 0, listed.stderr
    mine = [row for row in rows(listed.stdout) if row["CONTAINER"] == session.container.short_id]
    assert len(mine) == 1, listed.stdout
    row = mine[0]
    assert (row["NAME"], row["NOTEBOOK"], row["IMAGE"], row["GPU"]) == (
        session.name, NOTEBOOK, image, "none")
    assert (row["OWNER PID"], row["HOST"]) == (str(os.getpid()), socket.gethostname())
    assert row["AGE"].endswith(("s", "min")) and row["KEY"].endswith(f"/{NOTEBOOK}/{session.name}")
    assert row["IDLE"] == "-"  # another process (the CLI) cannot know when the last cell ran
    # what the container uses now (docker stats): a Python kernel is tens of MB
    assert re.fullmatch(r"\d+ MB", row["MEMORY"]) and int(row["MEMORY"].split()[0]) >= 10, row
    here = [i for i in list_sessions(engine) if i.container.id == session.container.id]
    assert isinstance(here[0].idle_s, int) and here[0].key == row["KEY"]  # this process can

    stopped = cli("sessions", "stop", row["KEY"])
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped session {session.name!r}" in stopped.stdout
    assert session.container.id not in managed_ids(engine)
    deadline = time.monotonic() + 30  # the owner sees its container's stream end
    while session.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not session.alive
    assert session.container.short_id not in cli("sessions").stdout


def test_cli_stops_by_name_and_refuses_unknown_or_vague_targets(engine, session):
    assert cli("sessions", "stop").returncode == 2  # neither a target nor --all
    unknown = cli("sessions", "stop", f"no-such-{uuid.uuid4().hex[:8]}")
    assert unknown.returncode == 3 and "sessions` lists them" in unknown.stderr
    assert session.container.id in managed_ids(engine)  # a miss stops nothing

    stopped = cli("sessions", "stop", session.name)
    assert stopped.returncode == 0, stopped.stderr
    assert session.container.id not in managed_ids(engine)

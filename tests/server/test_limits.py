"""Issue 14 §3: the REST API bounds what a client can make it hold — the job queue (429), the
jobs it lists (keep_jobs), the request body (413) and JSON nesting (400) — never a 500."""
from __future__ import annotations

import json
import threading

import pytest

from jupyter_mlbox.server.jobs import JobManager, QueueFullError
from tests.conftest import work_until_cancelled


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlbox": True}},
            "JobManager": {"max_pending": 2, "max_workers": 1}}


def test_the_queue_is_bounded_and_a_full_queue_says_so():
    manager = JobManager(max_workers=1, max_pending=3)
    try:
        jobs = [manager.submit("run", f"n{i}.ipynb",
                                work_until_cancelled(threading.Event())) for i in range(3)]
        with pytest.raises(QueueFullError, match="max_pending = 3.*retry"):
            manager.submit("run", "more.ipynb", work_until_cancelled(threading.Event()))
        manager.cancel(jobs[0])
        jobs[0].future.result(timeout=10)
        manager.submit("run", "now.ipynb", work_until_cancelled(threading.Event()))  # room again
    finally:
        manager.shutdown(wait_seconds=10)


def test_jobs_that_ended_are_forgotten_beyond_keep_jobs_also_without_a_new_submit():
    manager = JobManager(max_workers=2, keep_jobs=3, max_pending=50)
    release = threading.Event()
    try:
        jobs = [manager.submit("build", f"n{i}.ipynb", lambda emit, cancel: release.wait(10))
                for i in range(10)]
        assert len(manager.list()) == 10  # none ended: all listed
        release.set()
        for job in jobs:
            job.future.result(timeout=10)
        assert len(manager.list()) == 3
    finally:
        manager.shutdown(wait_seconds=10)


async def test_a_full_queue_is_a_429_with_the_fix(jp_fetch, notebooks):
    codes, bodies = [], []
    for _ in range(3):
        response = await jp_fetch("mlbox", "api", "builds", method="POST", raise_error=False,
                                  body=json.dumps({"path": "work/sleepy.ipynb",
                                                   "options": {"trace": False}}))
        codes.append(response.code)
        bodies.append(json.loads(response.body or b"null"))
    assert codes[:2] == [202, 202] and codes[2] == 429, (codes, bodies)
    assert "max_pending" in bodies[2]["message"]
    for body in bodies[:2]:  # do not leave them building
        await jp_fetch("mlbox", "api", "jobs", body["id"], method="DELETE", raise_error=False,
                       allow_nonstandard_methods=True)


async def test_a_huge_body_is_refused_before_it_is_parsed(jp_fetch, notebooks):
    body = json.dumps({"path": "work/hello.ipynb", "junk": "x" * (2 << 20)})
    response = await jp_fetch("mlbox", "api", "builds", method="POST", body=body,
                              raise_error=False)
    assert response.code == 413, response.body[:300]
    assert "bytes" in json.loads(response.body)["message"]


@pytest.mark.parametrize("depth", [50, 100_000])
async def test_deeply_nested_json_is_a_400_not_a_500(jp_fetch, notebooks, depth):
    body = '{"path": "work/hello.ipynb", "options": ' + "[" * depth + "]" * depth + "}"
    response = await jp_fetch("mlbox", "api", "builds", method="POST", body=body,
                              raise_error=False)
    assert response.code == 400, response.body[:300]
    assert "nested too deeply" in json.loads(response.body)["message"]

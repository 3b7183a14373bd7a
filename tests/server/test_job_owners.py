"""A server several people reach (a shared JupyterHub server, collaboration): a job is its
owner's alone to see and cancel (issue 14 §3). The identity comes from jupyter_server's
identity provider; this test's provider names the user from a header after the usual token
check, as a hub's would from its own auth (no hub exists here)."""
from __future__ import annotations

import json

import pytest
from jupyter_server.auth.identity import IdentityProvider, User


class HeaderIdentityProvider(IdentityProvider):
    """The token still has to be right; ``X-Test-User`` then says who the caller is."""

    async def _get_user(self, handler):
        user = await super()._get_user(handler)
        name = handler.request.headers.get("X-Test-User")
        return User(username=name) if user is not None and name else user


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlbox": True},
                          "identity_provider_class": HeaderIdentityProvider}}


async def _call(jp_fetch, user, method, *parts, body=None):
    kwargs = {"method": method, "raise_error": False, "headers": {"X-Test-User": user}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    if method == "DELETE":
        kwargs["allow_nonstandard_methods"] = True
    response = await jp_fetch("mlbox", "api", *parts, **kwargs)
    return response.code, json.loads(response.body or b"null")


@pytest.mark.docker
async def test_one_user_cannot_see_or_cancel_another_users_job(jp_fetch, notebooks):
    code, job = await _call(jp_fetch, "alice", "POST", "builds",
                            body={"path": "work/sleepy.ipynb", "options": {"trace": False}})
    assert code == 202, job
    try:
        code, answer = await _call(jp_fetch, "bob", "DELETE", "jobs", job["id"])
        assert code == 404, answer
        code, _ = await _call(jp_fetch, "bob", "GET", "jobs", job["id"])
        assert code == 404
        code, listed = await _call(jp_fetch, "bob", "GET", "jobs")
        assert job["id"] not in [j["id"] for j in listed["jobs"]]

        code, own = await _call(jp_fetch, "alice", "GET", "jobs", job["id"])
        assert code == 200 and own["status"] != "cancelled"
        code, listed = await _call(jp_fetch, "alice", "GET", "jobs")
        assert job["id"] in [j["id"] for j in listed["jobs"]]
    finally:
        code, answer = await _call(jp_fetch, "alice", "DELETE", "jobs", job["id"])
    assert code in (202, 409), answer  # hers to cancel (409: it had ended already)

"""A real jupyter_server with the MLBox extension enabled (pytest-jupyter), real Docker daemon.

pytest refuses ``pytest_plugins`` outside the top-level conftest, so pytest-jupyter's fixtures and
hooks are imported here instead; they apply to this folder only.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403

from ..conftest import write_notebook

FINAL = {"done", "failed", "cancelled"}


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlbox": True}}}


@pytest.fixture
def notebooks(jp_root_dir):
    """Tiny notebooks in the server root (stdlib only: quick to build)."""
    write_notebook(jp_root_dir / "work" / "hello.ipynb",
                   [("x = 1", ["parameters"]),
                    "import json\nprint(json.dumps({'x': x, 'double': 2 * x}))"])
    write_notebook(jp_root_dir / "work" / "boom.ipynb",
                   ["print('before')", "raise RuntimeError('server boom')"])
    write_notebook(jp_root_dir / "work" / "sleepy.ipynb",
                   ["import time\nprint('sleeping', flush=True)\ntime.sleep(120)"])
    write_notebook(jp_root_dir / "work" / "needs.ipynb",
                   ["import numpy as np\nimport os, sys",
                    "try:\n    import surely_not_a_module_xyz\nexcept ImportError:\n    pass"])
    return jp_root_dir


class Api:
    """``jp_fetch`` with JSON in and out, and status codes instead of exceptions."""

    def __init__(self, jp_fetch):
        self._fetch = jp_fetch

    async def call(self, method, *parts, body=None, params=None):
        kwargs = {"method": method, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in {"POST", "PUT"}:
            kwargs["body"] = ""
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await self._fetch("mlbox", "api", *parts, params=params or {}, **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    async def get(self, *parts, **params):
        return await self.call("GET", *parts, params=params)

    async def post(self, *parts, body):
        return await self.call("POST", *parts, body=body)

    async def delete(self, *parts):
        return await self.call("DELETE", *parts)

    async def wait_job(self, job_id, timeout=300, until=None):
        """Poll GET jobs/{id} until it is final (or ``until(job)`` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            code, job = await self.get("jobs", job_id)
            assert code == 200, job
            if (until(job) if until else job["status"] in FINAL):
                return job
            assert job["status"] not in FINAL or until is None, job
            assert time.monotonic() < deadline, f"job did not finish in {timeout} s: {job}"
            await asyncio.sleep(0.3)


@pytest.fixture
def api(jp_fetch):
    return Api(jp_fetch)

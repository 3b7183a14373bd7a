"""With no Docker daemon answering, the API says so (503) and the status says why."""
from __future__ import annotations

import pytest

from .conftest import Api


@pytest.fixture
def jp_server_config(jp_server_config, tmp_path):
    return {**jp_server_config,
            "MlboxApp": {"docker_host": f"unix://{tmp_path}/no-docker-here.sock"}}


@pytest.fixture
def api(jp_fetch):
    return Api(jp_fetch)


async def test_status_says_the_daemon_is_unreachable(api):
    code, status = await api.get("status")
    assert code == 200
    assert status["daemon"]["ok"] is False
    assert "cannot reach a Docker daemon" in status["daemon"]["detail"]
    assert "no-docker-here.sock" in status["daemon"]["detail"]


async def test_images_is_503(api):
    code, body = await api.get("images")
    assert code == 503
    assert "is Docker running?" in body["message"]


async def test_requirements_still_work_without_docker(notebooks, api):
    code, body = await api.get("requirements", path="work/hello.ipynb")
    assert code == 200
    assert body["image"]["exists"] is None
    assert "cannot reach a Docker daemon" in body["image"]["detail"]


async def test_a_build_job_fails_with_the_reason(notebooks, api):
    code, job = await api.post("builds", body={"path": "work/hello.ipynb"})
    assert code == 202
    job = await api.wait_job(job["id"], timeout=30)
    assert job["status"] == "failed"
    assert job["error_type"] == "DaemonUnavailableError"

"""The daemon per request (issue 15 item 3): a request may name, in ``options.host``, a docker
context of the server's user or a daemon in ``c.MlboxApp.allowed_hosts``, never any other; the
status lists them for the panel. The allowed host here is the suite's own daemon under a name
of its own (no second machine exists), which is enough to prove the request's host is used."""
from __future__ import annotations

import subprocess

import nbformat
import pytest

pytestmark = pytest.mark.docker

SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """A private DOCKER_CONFIG holding one context, ``lab-box``, that names the local daemon."""
    config = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    subprocess.run(["docker", "context", "create", "lab-box", "--docker", f"host={SOCKET}"],
                   check=True, capture_output=True)
    return config


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlbox": True}},
            "MlboxApp": {"allowed_hosts": ["unix:///run/../var/run/docker.sock"]}}


async def test_status_lists_the_hosts_a_request_may_name(docker_config, api):
    code, status = await api.get("status")
    assert code == 200
    assert status["hosts"] == ["lab-box", "unix:///run/../var/run/docker.sock"]


async def test_a_host_the_server_does_not_allow_is_a_400_that_names_the_fix(
        docker_config, notebooks, api):
    code, answer = await api.post("runs", body={"path": "work/hello.ipynb",
                                                "options": {"host": "tcp://10.9.8.7:2375"}})
    assert code == 400, answer
    assert "host 'tcp://10.9.8.7:2375' is not one this server may use" in answer["message"]
    assert "docker context ls" in answer["message"] and "allowed_hosts" in answer["message"]


@pytest.mark.parametrize("host", ["lab-box", "unix:///run/../var/run/docker.sock"])
async def test_a_run_goes_to_the_host_the_request_names(docker_config, notebooks, api, host,
                                                        no_leftover_containers):
    code, job = await api.post("runs", body={"path": "work/hello.ipynb",
                                             "options": {"host": host, "trace": False}})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    executed = nbformat.read(notebooks / job["result"]["output_path"], as_version=4)
    # where_it_ran records the endpoint the request chose (a context resolves to its URL)
    assert executed.metadata["mlbox"]["host"] == (SOCKET if host == "lab-box" else host)

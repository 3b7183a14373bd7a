"""Request ``options`` are read by the one options model: a bad key or value is a 400 that names
the option, before any job starts (no Docker needed)."""
from __future__ import annotations

import pytest

from jupyter_mlbox.errors import (ConflictError, DaemonUnavailableError, GPUUnavailableError,
                                  ImageNotFoundError, MlboxError, NotebookError, OptionError,
                                  RequirementError, UserCancelledError)
from jupyter_mlbox.server.handlers import RequestError, http_status_for


async def test_an_unknown_option_is_400_naming_it(notebooks, api):
    code, body = await api.post("runs", body={"path": "work/hello.ipynb",
                                              "options": {"gpu": "all"}})
    assert code == 400, body
    assert "unknown option" in body["message"] and "gpu" in body["message"]
    assert body["error"] == "OptionError"
    code, jobs = await api.get("jobs")
    assert jobs["jobs"] == []


async def test_a_bad_value_is_400_naming_the_option(notebooks, api):
    code, body = await api.post("runs", body={"path": "work/hello.ipynb",
                                              "options": {"memory": "12 parsecs"}})
    assert code == 400, body
    assert "memory" in body["message"] and "12 parsecs" in body["message"]
    code, body = await api.post("runs", body={"path": "work/hello.ipynb",
                                              "options": {"timeout": -3}})
    assert code == 400 and "timeout" in body["message"]


@pytest.mark.parametrize("endpoint, options, named", [
    ("builds", {"memory": "4g"}, "memory"),            # a build does not run anything
    ("exports", {"gpus": "all"}, "gpus"),
    ("runs", {"requirements_file": "/etc/passwd"}, "requirements_file"),  # server-side files
])
async def test_options_an_endpoint_does_not_take(notebooks, api, endpoint, options, named):
    code, body = await api.post(endpoint, body={"path": "work/hello.ipynb", "tag": "a/b:1",
                                                "options": options})
    assert code == 400, body
    assert named in body["message"]


async def test_bodies_that_are_not_objects(notebooks, api):
    code, body = await api.post("runs", body={"path": "work/hello.ipynb", "options": ["x"]})
    assert code == 400 and "'options' must be a JSON object" in body["message"]
    code, body = await api.post("runs", body=["work/hello.ipynb"])
    assert code == 400 and "JSON object" in body["message"]
    code, body = await api.call("POST", "builds", body={})  # still JSON, just empty
    assert code == 400 and "'path' is required" in body["message"]


@pytest.mark.parametrize("error, status", [
    (OptionError("x"), 400), (RequestError("x"), 400), (RequestError("x", 404), 404),
    (NotebookError("x"), 400), (RequirementError("x"), 400), (GPUUnavailableError("x"), 400),
    (ImageNotFoundError("x"), 404), (ConflictError("x"), 409), (UserCancelledError("x"), 409),
    (DaemonUnavailableError("x"), 503), (MlboxError("x"), 500),
])
def test_http_status_for(error, status):
    assert http_status_for(error) == status

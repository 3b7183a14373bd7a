"""Issue 14 over REST: bad input is a 400 before any job, an export never moves a base image's
tag (the job fails saying so), ``force`` is a boolean field of an export."""
from __future__ import annotations

import os

import pytest

from jupyter_mlbox.core.dockerfile import default_base_image


@pytest.mark.parametrize("options, expected", [
    ({"memory": "12"}, "below Docker's minimum of 6m"),
    ({"base_image": "python:3.11-slim\nRUN echo injected"}, "is not an image reference"),
    ({"parameters": {"class": 1}}, "must be a Python identifier"),
    ({"network_mode": "a b"}, "expected none, bridge, host"),
    ({"inactivity": -1}, "0 (off) or more"),
])
async def test_bad_run_options_are_400_before_any_job(notebooks, api, options, expected):
    code, body = await api.post("runs", body={"path": "work/hello.ipynb", "options": options})
    assert code == 400, body
    assert expected in body["message"]
    code, jobs = await api.get("jobs")
    assert jobs["jobs"] == []


@pytest.mark.parametrize("output, expected", [("work/dir.ipynb", "is a directory"),
                                              ("work/pipe.ipynb", "not a regular file")])
async def test_an_unusable_output_is_400_before_any_job(notebooks, api, output, expected):
    (notebooks / "work" / "dir.ipynb").mkdir()
    os.mkfifo(notebooks / "work" / "pipe.ipynb")
    code, body = await api.post("runs", body={"path": "work/hello.ipynb", "output": output})
    assert code == 400, body
    assert expected in body["message"]
    code, jobs = await api.get("jobs")
    assert jobs["jobs"] == []


async def test_force_must_be_a_boolean(notebooks, api):
    code, body = await api.post("exports", body={"path": "work/hello.ipynb", "tag": "a/b:1",
                                                 "force": "yes"})
    assert code == 400 and "'force' must be true or false" in body["message"]


@pytest.mark.docker
@pytest.mark.parametrize("force", [False, True])
async def test_an_export_onto_the_base_image_fails_and_leaves_it(notebooks, api, engine, force):
    base = default_base_image()
    before = engine.image_attrs(base)["Id"]
    code, job = await api.post("exports", body={"path": "work/hello.ipynb", "tag": base,
                                                "force": force})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "failed", job
    assert "base image" in str(job) and "choose another tag" in str(job)
    assert engine.image_attrs(base)["Id"] == before

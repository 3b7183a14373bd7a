"""The REST API of the server extension against a real server and the real Docker daemon."""
from __future__ import annotations

import asyncio
import json
import os

import nbformat
import pytest

from jupyter_mlbox.core.dockerfile import default_base_image

pytestmark = pytest.mark.docker


async def test_status_reports_the_daemon(engine, api):
    code, status = await api.get("status")
    assert code == 200
    assert status["daemon"]["ok"] is True
    assert status["daemon"]["local"] is True
    assert status["daemon"]["version"]
    assert status["base_image"] == {"name": default_base_image(), "present": True}
    assert status["gpu"] is False  # this machine has no NVIDIA runtime


async def test_requirements_with_warnings(notebooks, api):
    code, body = await api.get("requirements", path="work/needs.ipynb")
    assert code == 200, body
    reqs = {r["requirement"].split("==")[0]: r for r in body["requirements"]}
    assert reqs["numpy"]["origin"] == "installed"
    assert reqs["numpy"]["requirement"].startswith("numpy==")
    assert any("surely_not_a_module_xyz" in w for w in body["warnings"])
    assert body["image"]["tag"].startswith("mlbox/needs:")
    assert body["image"]["exists"] in {True, False}


async def test_dockerfile(notebooks, api):
    code, body = await api.get("dockerfile", path="work/hello.ipynb")
    assert code == 200
    assert f"FROM {default_base_image()}" in body["dockerfile"]
    assert body["tag"].startswith("mlbox/hello:")


@pytest.mark.parametrize("path, code", [
    ("../outside.ipynb", 400),
    ("work/../../outside.ipynb", 400),
    ("/etc/passwd", 400),
    ("/tmp/x.ipynb", 400),
    ("work/missing.ipynb", 404),
    ("work", 400),
    ("", 400),
])
async def test_paths_are_confined_to_the_root(notebooks, api, path, code):
    got, body = await api.get("requirements", path=path)
    assert got == code, body
    assert body["message"]
    got, body = await api.post("builds", body={"path": path})
    assert got == code, body


async def test_symlink_out_of_the_root_is_refused(notebooks, api, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), outside)
    os.symlink(outside, notebooks / "work" / "link.ipynb")
    code, body = await api.get("requirements", path="work/link.ipynb")
    assert code == 400
    assert "outside the server root" in body["message"]


async def test_bad_bodies_are_400(notebooks, api):
    code, body = await api.call("POST", "builds", body=None)
    assert code == 400 and "'path' is required" in body["message"]
    code, body = await api.post("runs", body={"path": "work/hello.ipynb",
                                              "options": {"gpus": "lots"}})
    assert code == 400 and "gpus" in body["message"]
    code, body = await api.post("runs", body={"path": "work/hello.ipynb",
                                              "options": {"parameters": {"not a name": 1}}})
    assert code == 400
    code, body = await api.post("exports", body={"path": "work/hello.ipynb", "tag": "Bad Tag"})
    assert code == 400 and "not a valid image name" in body["message"]
    code, body = await api.get("jobs", "0123456789ab")
    assert code == 404


async def test_without_a_token_every_endpoint_is_403(notebooks, jp_serverapp, http_server_client,
                                                    jp_base_url):
    """No token, no cookie: refused (and no XSRF cookie either for the POST/DELETE)."""
    client = http_server_client
    base = f"{jp_base_url}mlbox/api/"
    for method, path, body in [("GET", "status", None), ("GET", "images", None),
                               ("GET", "requirements?path=work/hello.ipynb", None),
                               ("GET", "jobs", None),
                               ("POST", "builds", json.dumps({"path": "work/hello.ipynb"})),
                               ("DELETE", "images/mlbox%2Fhello%3Aabc", None)]:
        response = await client.fetch(base + path, method=method, body=body, raise_error=False,
                                      allow_nonstandard_methods=True)
        assert response.code == 403, (method, path, response.code)


async def test_build_job_lifecycle_and_images(engine, notebooks, api, no_leftover_containers):
    code, job = await api.post("builds", body={"path": "work/hello.ipynb"})
    assert code == 202, job
    assert job["kind"] == "build" and job["status"] in {"queued", "running"}
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["phase"] == "done"
    tag = job["result"]["tag"]
    assert tag.startswith("mlbox/hello:") and engine.image_exists(tag)
    assert job["log"], "a job keeps a log tail"

    code, listing = await api.get("jobs")
    assert job["id"] in {j["id"] for j in listing["jobs"]}
    code, body = await api.get("requirements", path="work/hello.ipynb")
    assert body["image"] == {"tag": tag, "exists": True, "detail": ""}
    code, images = await api.get("images")
    assert code == 200
    mine = [i for i in images["images"] if i["tag"] == tag]
    assert mine and mine[0]["notebook"] == "hello.ipynb" and mine[0]["size"] > 0

    # a second build reuses the image
    code, again = await api.post("builds", body={"path": "work/hello.ipynb"})
    again = await api.wait_job(again["id"])
    assert again["status"] == "done" and again["result"]["built"] is False
    # DELETE of a finished job is a conflict
    code, body = await api.delete("jobs", job["id"])
    assert code == 409


async def test_run_job_writes_the_executed_notebook(notebooks, api, no_leftover_containers):
    code, job = await api.post("runs", body={"path": "work/hello.ipynb",
                                             "options": {"parameters": {"x": 21}}})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    assert job["result"]["output_path"] == "work/hello.mlbox.ipynb"
    nb = nbformat.read(notebooks / "work" / "hello.mlbox.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert json.loads(text) == {"x": 21, "double": 42}


async def test_failed_run_keeps_the_executed_notebook(notebooks, api, no_leftover_containers):
    code, job = await api.post("runs", body={"path": "work/boom.ipynb"})
    job = await api.wait_job(job["id"])
    assert job["status"] == "failed"
    assert job["error_type"] == "CellExecutionError"
    assert "server boom" in job["error"]
    assert job["result"] == {"output_path": "work/boom.mlbox.ipynb"}
    assert (notebooks / "work" / "boom.mlbox.ipynb").exists()


async def test_cancel_a_running_job_removes_its_container(engine, notebooks, api,
                                                          no_leftover_containers):
    code, job = await api.post("runs", body={"path": "work/sleepy.ipynb"})
    assert code == 202
    running = await api.wait_job(job["id"], until=lambda j: j["phase"] == "running"
                                 or j["status"] in {"done", "failed", "cancelled"})
    assert running["status"] == "running", running
    await asyncio.sleep(3)  # the kernel is inside time.sleep(120) now
    code, cancelled = await api.delete("jobs", job["id"])
    assert code == 202
    job = await api.wait_job(job["id"], timeout=60)
    assert job["status"] == "cancelled", job
    assert not (notebooks / "work" / "sleepy.mlbox.ipynb").exists()
    # precisely this run's container is gone (the fixture checks all of jupyter_mlbox's)
    assert not engine.list_containers("io.jupyter-mlbox.notebook=sleepy.ipynb")


async def test_cancel_a_build(engine, notebooks, api):
    code, job = await api.post("builds", body={"path": "work/needs.ipynb",
                                               "options": {"rebuild": True,
                                                           "exclude": ["surely-not"]}})
    await api.wait_job(job["id"], until=lambda j: j["phase"] == "building"
                       or j["status"] in {"done", "failed", "cancelled"})
    code, _ = await api.delete("jobs", job["id"])
    assert code == 202
    job = await api.wait_job(job["id"], timeout=60)
    assert job["status"] == "cancelled", job


async def test_export_job_then_delete_the_image(engine, notebooks, api):
    tag = "mlbox-test/server-export:1"
    code, job = await api.post("exports", body={"path": "work/hello.ipynb", "tag": tag})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    assert job["result"]["tag"] == tag and job["result"]["pushed"] is False
    code, images = await api.get("images")
    assert tag in {i["tag"] for i in images["images"]}
    assert [i for i in images["images"] if i["tag"] == tag][0]["kind"] == "export"

    code, _ = await api.delete("images", tag)  # jp_fetch escapes it, as the front end does
    assert code == 204
    assert not engine.image_exists(tag)
    code, body = await api.delete("images", tag)
    assert code == 404, body


async def test_only_mlbox_images_can_be_deleted(engine, api):
    code, body = await api.delete("images", default_base_image())
    assert code == 404
    assert engine.image_exists(default_base_image())


async def test_export_job_pushes_to_a_registry(engine, notebooks, api, local_registry):
    tag = f"{local_registry}/mlbox/server-hello:pushed"
    code, job = await api.post("exports", body={"path": "work/hello.ipynb", "tag": tag,
                                                "push": True})
    assert code == 202, job
    try:
        job = await api.wait_job(job["id"])
        assert job["status"] == "done", job
        assert job["result"]["pushed"] is True
        assert any("pushing" in line for line in job["log"])
        import urllib.request
        tags = json.loads(urllib.request.urlopen(
            f"http://{local_registry}/v2/mlbox/server-hello/tags/list", timeout=10).read())
        assert tags["tags"] == ["pushed"]
    finally:
        if engine.image_exists(tag):
            engine.remove_image(tag)

"""``export_image`` against the real daemon: the image executes its notebook when run."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import nbformat
import pytest

from jupyter_mlbox.core.dockerfile import KIND_LABEL, MANAGED_LABEL, NOTEBOOK_LABEL
from jupyter_mlbox.core.export import ExportResult, export_image
from jupyter_mlbox.errors import MlboxError

from ..conftest import TEST_ENGINE

pytestmark = pytest.mark.docker


def docker_run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """``docker run --rm``, or on Podman ``podman run --rm`` as the export's summary says
    (the docker CLI's ``run --rm`` against Podman 4.3's API exits 0 whatever happened); with
    the service's containers.conf (scripts/ensure-podman.sh) so the limits are the same."""
    if TEST_ENGINE == "podman":
        conf = Path("/run/mlbox-podman/containers.conf")
        env = {**os.environ, **({"CONTAINERS_CONF": str(conf)} if conf.exists() else {})}
        return subprocess.run(["podman", "run", "--rm", *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    return subprocess.run(["docker", "run", "--rm", *args], capture_output=True, text=True,
                          timeout=timeout)


def stream_text(nb, index: int) -> str:
    return "".join(o.get("text", "") for o in nb.cells[index].outputs
                   if o.output_type == "stream")


@pytest.fixture
def exported(engine, stdlib_notebook):
    events = []
    result = export_image(engine, stdlib_notebook, "mlbox-test/params-export:v1",
                          on_event=events.append)
    yield result, events
    for ref in ("mlbox-test/params-export:v1",):
        try:
            engine.remove_image(ref)
        except MlboxError:
            pass


def test_export_result_and_labels(engine, exported):
    result, events = exported
    assert isinstance(result, ExportResult)
    assert result.tag == "mlbox-test/params-export:v1"
    assert result.content_tag.startswith("mlbox/params:")
    assert result.pushed is False and result.size > 0
    runner = "podman" if TEST_ENGINE == "podman" else "docker"
    assert result.runner == runner and f"run it with: {runner} run --rm" in result.summary()
    labels = engine.image_attrs(result.tag)["Config"]["Labels"]
    assert labels[MANAGED_LABEL] == "true"
    assert labels[KIND_LABEL] == "export"
    assert labels[NOTEBOOK_LABEL] == "params.ipynb"
    assert labels["org.opencontainers.image.title"] == "params"
    assert "done" in {e.phase for e in events}


def test_exported_image_runs_notebook_and_writes_out(exported, out_dir):
    result, _ = exported
    proc = docker_run("-v", f"{out_dir}:/out", result.tag)
    assert proc.returncode == 0, proc.stderr
    nb = nbformat.read(out_dir / "params.ipynb", as_version=4)
    assert stream_text(nb, 1).strip() == "hello from the image"
    assert json.loads(stream_text(nb, 2)) == {"n": 2, "word": "x", "square": 4}
    assert nb.metadata["mlbox"]["status"] == "ok"


def test_exported_image_takes_parameters_env_and_args(exported, out_dir):
    result, _ = exported
    proc = docker_run("-e", "MLBOX_PARAM_n=7", "-v", f"{out_dir}:/out", result.tag,
                      "-p", "word", "hey")
    assert proc.returncode == 0, proc.stderr
    nb = nbformat.read(out_dir / "params.ipynb", as_version=4)
    # papermill's way: an injected cell right after the one tagged "parameters"
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    assert json.loads(stream_text(nb, 3)) == {"n": 7, "word": "hey", "square": 49}


def test_exported_image_with_host_user(exported, tmp_path):
    """``--user $(id -u)`` is the other way to make a bind-mounted /out writable."""
    import os

    result, _ = exported
    out = tmp_path / "out-user"
    out.mkdir()
    proc = docker_run("--user", f"{os.getuid()}", "-v", f"{out}:/out", result.tag)
    assert proc.returncode == 0, proc.stderr
    assert (out / "params.ipynb").exists()


def test_exported_image_fails_when_a_cell_fails(engine, failing_notebook, out_dir):
    result = export_image(engine, failing_notebook, "mlbox-test/boom-export")
    try:
        assert result.tag == "mlbox-test/boom-export:latest"
        proc = docker_run("-v", f"{out_dir}:/out", result.tag)
        assert proc.returncode == 1
        assert "exported boom" in proc.stderr
        nb = nbformat.read(out_dir / "boom.ipynb", as_version=4)
        assert nb.metadata["mlbox"]["ename"] == "ValueError"
        assert stream_text(nb, 0).strip() == "before"
        assert not nb.cells[2].outputs
    finally:
        engine.remove_image(result.tag)


def test_export_rejects_a_bad_tag(engine, stdlib_notebook):
    with pytest.raises(MlboxError, match="not a valid image name"):
        export_image(engine, stdlib_notebook, "Bad Tag!")


def test_export_and_push_to_a_local_registry(engine, stdlib_notebook, local_registry, out_dir):
    tag = f"{local_registry}/mlbox/params:pushed"
    events = []
    result = export_image(engine, stdlib_notebook, tag, push=True, on_event=events.append)
    assert result.pushed is True
    assert "pushing" in {e.phase for e in events}
    tags = json.loads(urllib.request.urlopen(
        f"http://{local_registry}/v2/mlbox/params/tags/list", timeout=10).read())
    assert tags["tags"] == ["pushed"]
    # The pushed image is complete: remove the local tag, pull it back, run it.
    engine.remove_image(tag)
    pull = (["podman", "pull", "--tls-verify=false"] if TEST_ENGINE == "podman"  # as for push
            else ["docker", "pull"])
    subprocess.run([*pull, tag], check=True, capture_output=True, timeout=120)
    try:
        proc = docker_run("-v", f"{out_dir}:/out", tag)
        assert proc.returncode == 0, proc.stderr
    finally:
        engine.remove_image(tag)

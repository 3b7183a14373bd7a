"""The nbformat round trip against the real daemon: outputs, failures, limits, cleanup."""
from __future__ import annotations


import nbformat
import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.run import RunOptions, run_notebook_file
from jupyter_mlbox.errors import (KernelDiedError, RunTimeoutError)

from ..conftest import TEST_ENGINE, write_notebook
from .helpers import cli, outputs

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

NUMPY_CELL = "import numpy as np\nprint('sum', int(np.arange(4).sum()))"


def test_cli_run_writes_executed_notebook_next_to_input(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", [NUMPY_CELL, "import os\nos.getuid()"])
    before = path.read_bytes()
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "t.mlbox.ipynb"
    assert result.stdout.strip() == str(out)
    nb = nbformat.read(out, as_version=4)
    texts = [o.get("text", "") for o in outputs(nb)]
    assert "sum 6\n" in texts
    uid = [o["data"]["text/plain"] for o in outputs(nb) if o["output_type"] == "execute_result"]
    assert uid == ["1000"]  # not root
    assert path.read_bytes() == before  # the input is never touched


def test_unchanged_notebook_builds_nothing_the_second_time(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", [NUMPY_CELL])
    plan = plan_image([NUMPY_CELL], notebook_name=path.name, search_dir=tmp_path)
    first = build_image(engine, plan)
    second = build_image(engine, plan_image([NUMPY_CELL], notebook_name=path.name,
                                            search_dir=tmp_path))
    assert second.tag == first.tag and second.built is False
    result = cli("build", str(path))
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == first.tag
    assert "reused" in result.stderr


def test_cell_error_exits_non_zero_with_in_container_traceback(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", [
        "x = 1", "def f():\n    raise ValueError('boom from the container')\nf()",
        "print('never')"])
    result = cli("run", str(path), "-o", str(tmp_path / "out.ipynb"))
    assert result.returncode == 1
    assert "ValueError" in result.stderr and "boom from the container" in result.stderr
    assert "cell 2" in result.stderr
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert nb.metadata["mlbox"]["status"] == "error"
    assert not nb.cells[2].outputs


def test_kernel_death_is_reported_and_the_container_removed(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", ["import os\nos._exit(1)"])
    with pytest.raises(KernelDiedError, match="kernel died"):
        run_notebook_file(engine, path)
    kept = nbformat.read(tmp_path / "t.mlbox.ipynb", as_version=4)  # kept to read in context
    assert kept.metadata["mlbox"]["status"] == "kernel-died"


def test_out_of_memory_is_reported(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", ["blocks = []\nfor _ in range(64):\n"
                                                 "    blocks.append(bytearray(16 * 2**20))"])
    with pytest.raises(KernelDiedError, match="ran out of memory \\(limit 96m\\)"):
        run_notebook_file(engine, path, options=RunOptions(memory="96m"))


def test_timeout_stops_and_removes_the_container(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", ["import time\ntime.sleep(120)"])
    with pytest.raises(RunTimeoutError, match="timeout") as caught:
        run_notebook_file(engine, path, options=RunOptions(timeout=3))
    # issue 14: what ran before the timeout is kept, the timed-out cell marked
    assert caught.value.output_path == tmp_path / "t.mlbox.ipynb"
    kept = nbformat.read(caught.value.output_path, as_version=4)
    assert kept.cells[0].metadata["mlbox"]["status"] == "timed-out"


def test_parameters_env_and_local_files_reach_the_container(tmp_path, engine):
    (tmp_path / "helpers.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "numbers.csv").write_text("a\n1\n2\n")
    path = write_notebook(tmp_path / "t.ipynb", [
        ("alpha = 1\nname = 'x'", ["parameters"]),
        "import os, helpers\nprint(helpers.greet(name), alpha * 2, os.environ['MLBOX_TEST'])",
        "print(open('data/numbers.csv').read().split())",
    ])
    result = cli("run", str(path), "-p", "alpha=21", "-p", "name=world", "-e", "MLBOX_TEST=yes")
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "t.mlbox.ipynb", as_version=4)
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    texts = "".join(o.get("text", "") for o in outputs(nb))
    assert "hello world 42 yes" in texts
    assert "['a', '1', '2']" in texts


def test_figure_comes_back_as_png(tmp_path, engine):
    """The pandas + matplotlib example: a table and a PNG produced in the container."""
    import shutil

    from tests.conftest import EXAMPLES

    shutil.copy(EXAMPLES / "pandas_matplotlib.ipynb", tmp_path)
    result = cli("run", str(tmp_path / "pandas_matplotlib.ipynb"), "-p", "rows=50")
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "pandas_matplotlib.mlbox.ipynb", as_version=4)
    kinds = {k for o in outputs(nb) for k in o.get("data", {})}
    assert {"image/png", "text/html"} <= kinds
    assert any("50 rows" in o.get("text", "") for o in outputs(nb))


def test_malformed_notebook_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [')
    result = cli("run", str(bad))
    assert result.returncode == 3
    assert "malformed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bad.mlbox.ipynb").exists()


def test_unknown_package_fails_the_build_with_the_step_and_log(tmp_path, engine):
    path = write_notebook(tmp_path / "t.ipynb", ["import numpy"])
    result = cli("build", str(path), "--pip", "mlbox-no-such-package-zz==9.9.9")
    assert result.returncode == 3
    assert "failing step" in result.stderr and "uv pip" in result.stderr
    assert "mlbox-no-such-package-zz" in result.stderr
    assert "Traceback" not in result.stderr


def test_dead_daemon_is_a_clear_error(tmp_path):
    path = write_notebook(tmp_path / "t.ipynb", ["1"])
    result = cli("run", str(path), env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert result.returncode == 3
    assert "cannot reach a Docker daemon" in result.stderr and "Traceback" not in result.stderr


def test_doctor_reports_daemon_base_image_gpu_and_pip_settings(engine):
    result = cli("doctor")
    # it names the engine it talks to: dockerd, or Podman behind the same API
    named = f"Podman {engine.version()}" if TEST_ENGINE == "podman" else "Docker "
    assert f"ok  docker daemon: {named}" in result.stdout
    assert engine.is_podman == (TEST_ENGINE == "podman")
    assert "ok  base image: python:3.11-slim is present" in result.stdout
    assert "GPU runtime: no NVIDIA support" in result.stdout
    assert "CA bundle: /etc/ssl/certs/ca-certificates.crt" in result.stdout
    result = cli("doctor", "--help")
    assert result.returncode == 0
    missing = cli("build", "--help")
    assert "--base IMAGE" in missing.stdout


def test_missing_base_image_that_cannot_be_pulled_is_a_clear_error(tmp_path, engine):
    config = tmp_path / "jupyter_mlbox_config.json"
    config.write_text('{"MlboxDefaults": {"base_image": "python:0.0-nonexistent"}}')
    path = write_notebook(tmp_path / "t.ipynb", ["import numpy"])
    result = cli("build", str(path), env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 3
    assert "python:0.0-nonexistent is not on this daemon and cannot be pulled" in result.stderr
    assert "Traceback" not in result.stderr
    doctor = cli("doctor", env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert "NO  base image: python:0.0-nonexistent is not on the daemon and cannot be pulled" \
        in doctor.stdout
    assert doctor.returncode == 3


def test_host_pip_warnings_come_with_builds_not_with_every_requirements_listing(tmp_path,
                                                                                 engine):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = file:///nowhere/simple\n")
    path = write_notebook(tmp_path / "t.ipynb", ["import numpy"])
    env = {"PIP_CONFIG_FILE": str(conf)}
    listing = cli("requirements", str(path), env=env)
    assert "file:///nowhere/simple" not in listing.stderr
    # The same settings in-process name the image; remove it so the CLI really builds (the
    # layer cache keeps that quick).
    import os

    from jupyter_mlbox.core.build import BuildOptions, plan_image
    from jupyter_mlbox.core.pip_settings import host_pip_settings

    pip = host_pip_settings({**os.environ, **env})
    tag = plan_image(["import numpy"], notebook_name=path.name, search_dir=tmp_path,
                     options=BuildOptions(pip=("six",)), pip=pip).tag
    if engine.image_exists(tag):
        engine.remove_image(tag, force=True)
    build = cli("build", str(path), "--pip", "six", env=env)
    assert build.returncode == 0, build.stderr
    assert "file:///nowhere/simple is local to this host" in build.stderr

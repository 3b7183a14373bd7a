"""What ends up in the final image, inspected on the real daemon."""
from __future__ import annotations

import subprocess

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.pip_settings import host_pip_settings

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def built(engine):
    pip = host_pip_settings()
    assert pip.cert_file is not None, "this machine reaches PyPI only through its CA bundle"
    plan = plan_image(["import numpy"], notebook_name="hygiene.ipynb", search_dir=None, pip=pip)
    build_image(engine, plan)
    return plan


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def test_final_image_holds_no_ca_copy_pip_config_or_build_settings(built, engine):
    tag = built.tag
    listing = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c",
                     "ls -d /mlbox-build /opt/uv 2>&1; find / -xdev \\( -name ca.pem -o "
                     "-name pip.conf -o -name requirements.txt \\) 2>/dev/null; "
                     "env | grep -E '^(PIP_|UV_|SSL_CERT|REQUESTS_CA)' || true")
    assert "No such file" in listing and "/mlbox-build" in listing  # ls failed for both
    assert "ca.pem" not in listing.replace("ls: cannot access '/mlbox-build'", "")
    assert "pip.conf" not in listing and "PIP_" not in listing and "UV_" not in listing
    assert "SSL_CERT" not in listing
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)
    # the cached build's steps name /mlbox-build (a per-build volume, never in a layer), never
    # what it held
    assert "ca.pem" not in history and "pip.conf" not in history and "UV_" not in history
    inspected = docker("image", "inspect", tag)
    assert "ca.pem" not in inspected and "pip.conf" not in inspected, inspected


def test_final_image_labels_user_and_gpu_environment(built, engine):
    attrs = engine.image_attrs(built.tag)
    config = attrs["Config"]
    labels = config["Labels"]
    assert labels["io.jupyter-mlbox.notebook"] == "hygiene.ipynb"
    assert labels["io.jupyter-mlbox.requirements-sha256"] == built.context.labels[
        "io.jupyter-mlbox.requirements-sha256"]
    assert labels["io.jupyter-mlbox.version"]
    assert not labels.get("io.jupyter-mlbox.build-step")  # "" overrides the venv image's
    assert config["User"] == "1000"
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in config["Env"]


def test_builder_tools_and_caches_stay_out(built):
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", built.tag, "-c",
                 "ls /opt; du -s /root/.cache /home/mlbox/.cache 2>/dev/null | wc -l;"
                 " /opt/venv/bin/python -c 'import numpy, ipykernel, nbclient; print(\"ok\")'")
    lines = out.split()
    assert "uv" not in lines and "venv" in lines and "mlbox" in lines
    assert "ok" in lines

"""Binaries in the image must load, on the real daemon: a wheel whose ``.so`` links OpenMP
(libgomp.so.1, which python:3.x-slim lacks) gets libgomp1 and imports in a run; a wheel whose
``.so`` links a library no package is known for stops the build with one sentence.

The wheels are made here: a C file compiled with gcc against ``-lgomp`` (or against a library
that is then deleted), zipped as a wheel and served from a PEP 503 index on the docker bridge's
gateway, which the build's builder stage reaches as an extra index."""
from __future__ import annotations

import base64
import hashlib
import http.server
import shutil
import subprocess
import threading
import zipfile
from functools import partial
from pathlib import Path

import nbformat
import pytest

from jupyter_mlbox.core.dockerfile import APT_LABEL

from ..conftest import free_port, write_notebook
from ..unit.test_shared_libraries import OPENMP_C, compile_shared_object, unknown_library_pair
from .helpers import cli, outputs

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers"),
              pytest.mark.skipif(shutil.which("gcc") is None,
                                 reason="needs gcc to make the wheels")]

GOMP_INIT = """\
import ctypes, os
_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "_threads.so"))
def threads():
    return _lib.mlbox_threads()
"""


def make_wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    """A ``py3-none-any`` wheel of ``name`` 0.1 holding ``files`` (path in the wheel → bytes)."""
    module = name.replace("-", "_")
    info = f"{module}-0.1.dist-info"
    files = {**files,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mlbox-tests\n"
                              b"Root-Is-Purelib: false\nTag: py3-none-any\n"}

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{module}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def bridge_gateway() -> str:
    """The address containers on the default bridge reach this host at."""
    import docker

    client = docker.from_env()
    try:
        return client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
    finally:
        client.close()


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory):
    """A PEP 503 index of the two fixture wheels; yields ``(index_url, made)`` where ``made``
    holds the wheels' unpacked files (an "installed" copy for PYTHONPATH)."""
    root = tmp_path_factory.mktemp("index")
    made = tmp_path_factory.mktemp("made")
    threads = compile_shared_object(made / "_threads.so", OPENMP_C, "-lgomp")
    needs = unknown_library_pair(made / "unknown")
    wheels = [make_wheel(root, "mlbox-gomp-fixture", {
                  "mlbox_gomp_fixture/__init__.py": GOMP_INIT.encode(),
                  "mlbox_gomp_fixture/_threads.so": threads.read_bytes()}),
              make_wheel(root, "mlbox-unknown-fixture", {
                  "mlbox_unknown_fixture/__init__.py": b"",
                  "mlbox_unknown_fixture/_needs.so": needs.read_bytes()})]
    installed = made / "site"
    for wheel in wheels:
        project = wheel.name.split("-")[0].replace("_", "-")
        (root / "simple" / project).mkdir(parents=True)
        (root / "simple" / project / "index.html").write_text(
            f'<html><body><a href="../../{wheel.name}">{wheel.name}</a></body></html>\n')
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(installed)
    host = bridge_gateway()
    server = http.server.ThreadingHTTPServer(
        (host, free_port()), partial(http.server.SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/simple/", installed
    finally:
        server.shutdown()
        server.server_close()


def test_a_wheel_linking_libgomp_gets_libgomp1_and_imports(tmp_path, engine, fixture_index):
    index, installed = fixture_index
    path = write_notebook(tmp_path, ["import importlib\n"
                                     "m = importlib.import_module('mlbox_gomp_fixture')\n"
                                     "print('threads', m.threads() >= 1)"], name="gomp.ipynb")
    env = {"PIP_EXTRA_INDEX_URL": index}
    # The kernel here lacks the wheel: the in-image check finds libgomp.so.1 missing and
    # installs libgomp1 itself.
    result = cli("run", str(path), "--pip", "mlbox-gomp-fixture==0.1", "-o",
                 str(tmp_path / "out.ipynb"), "--verbose", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "installing libgomp1 for libgomp.so.1 (needed by mlbox_gomp_fixture/_threads.so" \
           in result.stderr + result.stdout
    text = "".join(o.get("text", "") for o in outputs(nbformat.read(tmp_path / "out.ipynb", 4)))
    assert "threads True" in text  # the .so loaded, libgomp found, inside the container

    # A kernel that has the wheel installed plans libgomp1 ahead, in the apt step (labelled).
    env["PYTHONPATH"] = str(installed)
    dockerfile = cli("dockerfile", str(path), "--pip", "mlbox-gomp-fixture==0.1", env=env)
    assert dockerfile.returncode == 0, dockerfile.stderr
    assert "apt-get install -y --no-install-recommends libgomp1" in dockerfile.stdout
    assert "system package libgomp1 added (inferred from libgomp.so.1, which " \
           "mlbox-gomp-fixture links)" in dockerfile.stderr
    build = cli("build", str(path), "--pip", "mlbox-gomp-fixture==0.1", env=env)
    assert build.returncode == 0, build.stderr[-3000:]
    tag = build.stdout.strip().splitlines()[-1]
    assert engine.image_attrs(tag)["Config"]["Labels"][APT_LABEL] == "libgomp1"
    check = subprocess.run(["docker", "run", "--rm", tag, "python",
                            "/opt/mlbox/shared_libraries.py", "/opt/venv"],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "every needed library found" in check.stdout


def test_an_unknown_library_stops_the_build_with_one_sentence(tmp_path, engine, fixture_index):
    index, _ = fixture_index
    path = write_notebook(tmp_path, ["import importlib\n"
                                     "importlib.import_module('mlbox_unknown_fixture')"],
                          name="unknown.ipynb")
    result = cli("run", str(path), "--pip", "mlbox-unknown-fixture==0.1",
                 env={"PIP_EXTRA_INDEX_URL": index})
    assert result.returncode == 3, result.stderr[-3000:]
    first = result.stderr.split("error: ", 1)[1].splitlines()[0]
    assert first == (
        "libmlboxnowhere.so.1 (needed by mlbox_unknown_fixture/_needs.so of mlbox_unknown_fixture) "
        "is not in the image and jupyter_mlbox does not know which Debian package provides it: "
        "add that package with --apt NAME or a line in apt.txt (`apt-file search "
        "libmlboxnowhere.so.1` or packages.debian.org names it).")
    assert "failing step" not in result.stderr  # the sentence is the message, not "returned 3"
    assert not (tmp_path / "unknown.mlbox.ipynb").exists()

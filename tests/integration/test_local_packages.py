"""Issue 16 item 1: a package the kernel installed with ``pip install -e .`` runs in the
container as the user's own code, never as the index's package of the same name.

Real parts: a kernel venv made by uv holding an editable src-layout package named like a real
PyPI distribution (tabulate) at a version PyPI lacks, the CLI run by that venv's python (the
kernel), the real index for the lock, a real daemon for the builds and the run."""
from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess

import nbformat

from tests.conftest import write_notebook

from ..local_packages import install, make_kernel_venv, write_project

#: Not on PyPI (whose tabulate is 0.9-ish): asked by name, the build would fail or, worse, find
#: a stranger's upload.
VERSION = "99.0.0.dev1"
SOURCE = "import six\nMARKER = 'local tabulate {}'\nSIX = six.__version__\n"


def _kernel_cli(venv, *args, cache):
    return subprocess.run([str(venv / "bin" / "python"), "-m", "jupyter_mlbox.cli", *args],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache)})


def test_an_editable_package_named_like_pypis_runs_its_local_code_and_edits_rebuild(
        tmp_path, engine):
    package = write_project(tmp_path / "project", "tabulate", VERSION, "tabulate",
                            SOURCE.format("v1"), dependencies=("six",))
    venv = tmp_path / "kernel"
    make_kernel_venv(venv)
    install(venv, "-e", str(package))
    notebook = write_notebook(tmp_path / "project" / "notebooks" / "uses.ipynb",
                              ["import tabulate\nprint(tabulate.MARKER, tabulate.SIX)"])
    cache = tmp_path / "cache"

    explained = _kernel_cli(venv, "requirements", str(notebook), "--explain", cache=cache)
    assert explained.returncode == 0, explained.stderr
    [line] = [line for line in explained.stdout.splitlines() if line.startswith("tabulate")]
    assert line.startswith("tabulate @ file:///mlbox-build/wheels/tabulate-")
    assert line.endswith(f"/tabulate-{VERSION}-py3-none-any.whl  # local build of editable "
                         f"{package} (tabulate)")
    assert "tabulate==" not in explained.stdout  # never asked of the index by name

    # its own dependency (six) enters the lock at the kernel's version, like any other
    locked = _kernel_cli(venv, "lock", str(notebook), cache=cache)
    assert locked.returncode == 0, locked.stderr
    lock = (notebook.parent / "uses.mlbox.lock").read_text()
    assert f"six=={metadata.version('six')} \\" in lock

    first = _kernel_cli(venv, "build", str(notebook), cache=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    tag = first.stdout.strip().splitlines()[-1]
    out = tmp_path / "out.ipynb"
    ran = _kernel_cli(venv, "run", str(notebook), "-o", str(out), cache=cache)
    assert ran.returncode == 0, ran.stderr[-3000:]
    text = "".join(o.get("text", "") for cell in nbformat.read(out, 4).cells
                   for o in cell.get("outputs", []))
    assert f"local tabulate v1 {metadata.version('six')}" in text  # the user's code, in there

    # an edit to the editable source gives a new tag whose image runs the edit (the lock's
    # stale wheel hash is replaced, or --require-hashes would refuse it); the unchanged source
    # gives the first tag again, and its image is reused
    init = package / "src" / "tabulate" / "__init__.py"
    init.write_text(SOURCE.format("v2"))
    edited = _kernel_cli(venv, "build", str(notebook), cache=cache)
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert edited.stdout.strip().splitlines()[-1] != tag
    ran = _kernel_cli(venv, "run", str(notebook), "-o", str(out), cache=cache)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "local tabulate v2" in "".join(o.get("text", "") for cell in nbformat.read(
        out, 4).cells for o in cell.get("outputs", []))
    init.write_text(SOURCE.format("v1"))
    again = _kernel_cli(venv, "build", str(notebook), cache=cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip().splitlines()[-1] == tag
    assert "reused " in again.stderr

"""Local packages for the tests of issue 16: a src-layout project on disk, installed into a
fresh venv by real uv, as ``pip install -e .`` / ``pip install ./pkg`` / a wheel / git would.

The project's build backend lives in its own tree (PEP 517 ``backend-path``) and needs nothing
from an index, so installing and building it works offline; uv runs it like any backend.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from uv import find_uv_bin

BACKEND = r'''
"""A tiny in-tree PEP 517 backend: wheels of src/<package>, editable ones by a .pth."""
import base64, hashlib, os, tomllib, zipfile

def _project():
    with open("pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    return project["name"], project["version"], project.get("dependencies", [])

def _dist(name):
    return name.replace("-", "_")

def _metadata(name, version, deps):
    return "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                    *[f"Requires-Dist: {d}\n" for d in deps]])

def _wheel(directory, files):
    name, version, deps = _project()
    if os.environ.get("MLBOX_FIXTURE_FAIL") or os.path.exists("FAIL_BUILD"):
        raise RuntimeError("fixture build failed on purpose: FAIL_BUILD is here")
    info = f"{_dist(name)}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata(name, version, deps).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: fixture\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{_dist(name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, wheel_name), "w") as archive:
        for path, data in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return wheel_name

def get_requires_for_build_wheel(config_settings=None):
    return []

get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for folder, _, names in os.walk("src"):
        for name in names:
            if not name.endswith(".pyc"):
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    files[os.path.relpath(path, "src").replace(os.sep, "/")] = handle.read()
    return _wheel(wheel_directory, files)

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = _dist(_project()[0])
    return _wheel(wheel_directory, {f"_{name}.pth": (os.path.abspath("src") + "\n").encode()})

def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
'''


def write_project(root: Path, name: str, version: str, module: str, source: str,
                  dependencies: tuple[str, ...] = ()) -> Path:
    """A src-layout project at ``root``: ``src/<module>/__init__.py`` holds ``source``."""
    (root / "src" / module).mkdir(parents=True, exist_ok=True)
    (root / "src" / module / "__init__.py").write_text(source)
    (root / "fixture_backend.py").write_text(BACKEND)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n\n'
        f'[build-system]\nrequires = []\nbuild-backend = "fixture_backend"\n'
        f'backend-path = ["."]\n')
    return root


def uv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([find_uv_bin(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "UV_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return done


def make_kernel_venv(path: Path, *, with_host_packages: bool = True) -> Path:
    """A venv of this Python; ``with_host_packages`` makes the test venv's packages (and
    jupyter_mlbox) importable in it, so its python runs the CLI as a kernel with extra
    distributions would. Returns its site-packages."""
    uv("venv", "--quiet", "--python", sys.executable, str(path))
    site = next(path.glob("lib/python3*/site-packages"))
    if with_host_packages:
        host = sysconfig.get_paths()["purelib"]
        (site / "zz_mlbox_host.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    return site


def install(venv: Path, *targets: str) -> None:
    uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *targets)

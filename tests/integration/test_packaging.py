"""Installing jupyter_mlbox, as a user does, from a fresh virtual environment.

Installing it where IPython 9 is installed must not downgrade IPython (pipreqs 0.5.0 hard-pins
ipython==8.12.3): pip's real resolver answers, in dry-run mode.
Every way of installing yields the JupyterLab panel: a wheel built from a clean tree (what
`pip install <clone>` and `pip install git+...` do) compiles it with node, an sdist carries it
built, and a wheel built from that sdist needs no node."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

PANEL = "share/jupyter/labextensions/jupyter-mlbox/"


@pytest.mark.timeout(900)
def test_install_beside_ipython_9_does_not_downgrade_it(tmp_path):
    venv.create(tmp_path / "env", with_pip=True)
    pip = [str(tmp_path / "env" / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "install", "--quiet", "ipython>=9"], check=True, capture_output=True)
    report = tmp_path / "report.json"
    result = subprocess.run([*pip, "install", "--dry-run", "--quiet", "--report", str(report),
                             str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    changes = {item["metadata"]["name"].lower(): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert "ipython" not in changes, f"pip would install ipython {changes['ipython']}"
    assert changes.get("pipreqs") != "0.5.0"


def source_tree(dest: Path) -> Path:
    """The files of the tree under test as a fresh clone would have them (tracked and untracked,
    not ignored: no node_modules, no built extension), uncommitted edits included."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is not there
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    assert not (dest / "jupyter_mlbox" / "labextension").exists()
    return dest


def fresh_env(path: Path, *, node: bool) -> tuple[Path, dict[str, str]]:
    """A new virtual environment and the environment variables of a shell that activated it:
    PATH holds no other Python (so nothing but the build's own isolation provides jupyterlab)
    and node/npm only when ``node``."""
    venv.create(path, with_pip=True)
    dirs = [str(path / "bin")]
    if node:
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            pytest.skip("node and npm are needed to build the panel (scripts/install-test-deps.sh)")
        dirs.append(str(Path(npm).parent))
    dirs += [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if d not in dirs]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith("JUPYTER")}
    if not node:  # no python on PATH may know a node either
        dirs = [d for d in dirs if not (Path(d) / "node").exists() and not (Path(d) / "npm").exists()]
    env.update(PATH=os.pathsep.join(dirs), VIRTUAL_ENV=str(path))
    return path / "bin" / "python", env


def run(args: list, env: dict, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True,
                            **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def panel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split(".data/data/", 1)[1] for name in archive.namelist()
                if ".data/data/" + PANEL in name}


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_a_wheel_built_from_a_clean_tree_installs_the_panel(tmp_path):
    src = source_tree(tmp_path / "src")
    python, env = fresh_env(tmp_path / "build-env", node=True)
    run([python, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", src], env)
    (wheel,) = (tmp_path / "dist").glob("jupyter_mlbox-*.whl")
    files = panel_files(wheel)
    assert PANEL + "package.json" in files and PANEL + "static/style.js" in files, sorted(files)
    assert any(name.startswith(PANEL + "static/remoteEntry.") for name in files), sorted(files)

    python, env = fresh_env(tmp_path / "user-env", node=False)
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    run([python, "-m", "pip", "install", "--quiet", wheel, "jupyterlab>=4.2,<5"], env)
    listing = run([python, "-m", "jupyter", "labextension", "list"], env)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr).splitlines()
    prefix = lines.index(str(tmp_path / "user-env" / "share" / "jupyter" / "labextensions"))
    ours = [line.split() for line in lines[prefix + 1:] if "jupyter-mlbox" in line]
    assert ours and ours[0][:4] == ["jupyter-mlbox", "v0.1.0", "enabled", "OK"], lines


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_the_sdist_carries_the_panel_and_its_wheel_builds_without_node(tmp_path):
    src = source_tree(tmp_path / "src")
    python, env = fresh_env(tmp_path / "build-env", node=True)
    run([python, "-m", "pip", "install", "--quiet", "build"], env)
    run([python, "-m", "build", "--sdist", "--outdir", tmp_path / "dist", src], env)
    (sdist,) = (tmp_path / "dist").glob("jupyter_mlbox-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "jupyter_mlbox/labextension/package.json" in names
    assert "labextension/src/index.ts" in names  # the source travels too
    assert not any(name.startswith("labextension/node_modules/") for name in names)

    python, env = fresh_env(tmp_path / "no-node-env", node=False)
    assert shutil.which("npm", path=env["PATH"]) is None
    run([python, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "wheels", sdist],
        env)
    (wheel,) = (tmp_path / "wheels").glob("jupyter_mlbox-*.whl")
    assert PANEL + "package.json" in panel_files(wheel)

"""A real JupyterLab (started here) and headless Debian Chromium driven by Playwright.

Playwright never downloads a browser: it launches /usr/bin/chromium. The lab gets its own
config and data dirs, so the MLBox server extension and the freshly built lab extension are
enabled for it without touching the environment.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..conftest import free_port, write_notebook

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("MLBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def built_labextension() -> Path:
    """The prebuilt lab extension, built from labextension/ when its sources changed."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    subprocess.run(["bash", str(ROOT / "scripts" / "build-labextension.sh")], check=True,
                   env=env, timeout=900)
    out = ROOT / "jupyter_mlbox" / "labextension"
    assert (out / "package.json").exists()
    return out


class Lab:
    def __init__(self, url: str, token: str, root: Path, log: Path) -> None:
        self.url, self.token, self.root, self.log = url, token, root, log

    def page_url(self, path: str = "") -> str:
        return f"{self.url}lab/tree/{path}?reset&token={self.token}"


def start_lab(tmp: Path, root: Path, extra_args: list[str] = ()) -> tuple[subprocess.Popen, Lab]:
    config, data, runtime = tmp / "config", tmp / "data", tmp / "runtime"
    for folder in (config, data / "labextensions", runtime):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"jupyter_mlbox": True}}}))
    settings = tmp / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(
        {"fetchNews": "false", "checkForUpdates": False}))
    link = data / "labextensions" / "jupyter-mlbox"
    if not link.exists():
        link.symlink_to(ROOT / "jupyter_mlbox" / "labextension", target_is_directory=True)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_PATH": str(data),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_PLATFORM_DIRS": "1"}
    log = tmp / "lab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
               f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               *(["--allow-root"] if os.getuid() == 0 else []), *extra_args]
    process = subprocess.Popen(command, env=env, stdout=open(log, "wb"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("JupyterLab did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.3)
    return process, Lab(url, token, root, log)


def stop_lab(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


OTHER_HOST = "unix:///run/../var/run/docker.sock"


@pytest.fixture(scope="module")
def lab(built_labextension, tmp_path_factory):
    """JupyterLab serving a copy of example_notebooks/ plus a tiny numpy notebook."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "example_notebooks", root)
    write_notebook(root / "guess.ipynb", [
        "import numpy as np\ntry:\n    import surely_not_a_module_xyz\nexcept ImportError:\n"
        "    pass"])
    write_notebook(root / "tiny.ipynb", [
        "import numpy as np",
        "values = np.arange(5)\nprint('sum of squares:', int((values ** 2).sum()))",
    ])
    write_notebook(root / "sleepy.ipynb", ["import time\ntime.sleep(300)"])
    write_notebook(root / "edit.ipynb", ["x = 1"])
    # a host a request may name: the suite's daemon under another spelling (no second box)
    process, server = start_lab(tmp, root, [f"--MlboxApp.allowed_hosts={OTHER_HOST}"])
    yield server
    stop_lab(process)


@pytest.fixture(scope="module")
def lab_without_docker(built_labextension, tmp_path_factory):
    """JupyterLab whose MLBox extension points at a Docker socket that does not exist."""
    tmp = tmp_path_factory.mktemp("lab-no-docker")
    root = tmp / "notebooks"
    root.mkdir()
    write_notebook(root / "tiny.ipynb", ["import numpy as np"])
    process, server = start_lab(
        tmp, root, [f"--MlboxApp.docker_host=unix://{tmp}/no-docker-here.sock"])
    yield server
    stop_lab(process)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-test-deps.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str, locator=None) -> Path:
        path = ARTIFACTS / f"{name}.png"
        (locator or page).screenshot(path=str(path))
        return path

    return take

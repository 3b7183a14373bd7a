"""Installing jupyter_mlbox where IPython 9 is installed must not downgrade IPython
(pipreqs 0.5.0 hard-pins ipython==8.12.3). pip's real resolver answers, in dry-run mode, in a
fresh virtual environment that has IPython 9, as a JupyterLab 4 user's has."""
from __future__ import annotations

import json
import subprocess
import venv

import pytest

from tests.conftest import ROOT


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

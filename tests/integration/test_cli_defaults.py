"""c.MlboxDefaults.gpus = "auto" in a config file reaches `jupyter mlbox run` (issue 7; the
magics and the server have their own tests of the same setting)."""
from __future__ import annotations

import json

from tests.conftest import write_notebook
from tests.integration.helpers import cli


def test_configured_gpus_auto_reaches_the_cli_run(tmp_path, engine):
    (tmp_path / "jupyter_mlbox_config.json").write_text(
        json.dumps({"MlboxDefaults": {"gpus": "auto"}}))
    path = write_notebook(tmp_path / "auto.ipynb", ["print('ran')"])
    result = cli("run", str(path), env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "with --gpus auto" in result.stderr
    assert "no GPU support on this Docker daemon: running on CPU" in result.stderr
    assert "on CPU" in result.stderr.splitlines()[-1]
    forced = cli("run", str(path), "--gpus", "none", env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert forced.returncode == 0 and "--gpus auto" not in forced.stderr  # flags win

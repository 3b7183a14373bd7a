"""The CLI's argument handling and Jupyter-style config (no Docker needed)."""
from __future__ import annotations

import json

import nbformat

from jupyter_mlbox.core.notebook import new_notebook_from_cells
from tests.integration.helpers import cli


def test_config_file_sets_defaults_and_flags_override_them(tmp_path):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_mlbox_config.json").write_text(json.dumps(
        {"MlboxDefaults": {"base_image": "python:3.11-slim-custom", "pip": ["tqdm==4.66.0"],
                           "exclude": ["pandas"]}}))
    nb = tmp_path / "n.ipynb"
    nbformat.write(new_notebook_from_cells(["import numpy, pandas"]), nb)
    env = {"JUPYTER_CONFIG_DIR": str(config_dir)}
    result = cli("dockerfile", str(nb), env=env)
    assert result.returncode == 0, result.stderr
    assert "FROM python:3.11-slim-custom AS builder" in result.stdout
    result = cli("requirements", str(nb), env=env)
    assert "tqdm==4.66.0" in result.stdout and "pandas" not in result.stdout
    result = cli("dockerfile", str(nb), "--base", "python:3.12-slim", env=env)
    assert "FROM python:3.12-slim AS builder" in result.stdout


def test_bad_arguments_are_one_clear_line(tmp_path):
    result = cli("run", "x.ipynb", "--gpus", "lots")
    assert result.returncode == 2
    assert "expected all, none, auto" in result.stderr and "Traceback" not in result.stderr
    result = cli("run", "x.ipynb", "-e", "NOEQUALS")
    assert result.returncode == 2 and "NAME=VALUE" in result.stderr


def test_requirements_on_stdout_warnings_on_stderr(tmp_path):
    nb = tmp_path / "n.ipynb"
    nbformat.write(new_notebook_from_cells(["import numpy\nimport cv2"]), nb)
    result = cli("requirements", str(nb))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "opencv-python" in lines and any(line.startswith("numpy==") for line in lines)
    assert "cv2" in result.stderr and "guess" in result.stderr


def test_the_cli_does_not_pay_for_an_iri_grammar_it_never_uses(tmp_path):
    """jsonschema builds rfc3987-syntax's grammar at import (a second of CPU) when installed;
    a CLI command runs as though it were not (issue 11 item 3)."""
    import subprocess
    import sys

    from tests.conftest import write_notebook

    path = write_notebook(tmp_path / "t.ipynb", ["import json"])
    probe = ("import sys\nfrom jupyter_mlbox.cli import main\n"
             f"main(['requirements', {str(path)!r}])\n"
             "import nbformat, jsonschema\n"
             "print('LOADED' if sys.modules.get('rfc3987_syntax') else 'SKIPPED')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("SKIPPED"), done.stdout

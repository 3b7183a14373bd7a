"""Runtime tracing (issue 8, item 1): what the kernel really loaded counts, beyond a fresh
kernel's baseline. A real local kernel (nbclient), no Docker."""
from __future__ import annotations

import importlib.metadata as metadata

from jupyter_mlbox.core.trace import traced_modules
from tests.conftest import write_notebook
from tests.integration.helpers import cli

HIDDEN = "exec('import ' + 'pandas')\nimport json\nprint(json.dumps({'ok': True}))"


def test_traced_modules_drop_the_baseline_stdlib_private_and_our_own():
    loaded = ["pandas", "pandas.core", "json", "_ctypes", "jupyter_mlbox.core", "zmq", "six"]
    assert traced_modules(loaded, baseline={"zmq"}) == {"pandas", "pandas.core", "six"}


def test_trace_finds_an_import_no_statement_shows(tmp_path):
    path = write_notebook(tmp_path / "hidden.ipynb", [HIDDEN])
    static = cli("requirements", str(path))
    assert static.returncode == 0, static.stderr
    assert "pandas" not in static.stdout
    traced = cli("requirements", str(path), "--trace")
    assert traced.returncode == 0, traced.stderr
    assert f"pandas=={metadata.version('pandas')}" in traced.stdout.splitlines()
    assert f"numpy=={metadata.version('numpy')}" in traced.stdout.splitlines()  # via pandas
    assert "docker" not in traced.stdout and "tornado" not in traced.stdout  # the baseline

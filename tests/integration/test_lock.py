"""A lock pinned to the kernel (issue 8, item 4): the whole closure, the kernel's versions,
hashes; builds install exactly it; a stale lock is said. Real index (uv) and real daemon."""
from __future__ import annotations

import importlib.metadata as metadata
import json

import nbformat

from tests.conftest import write_notebook
from tests.integration.helpers import cli

VERSIONS = ("import importlib.metadata as m, json\n"
            "print(json.dumps({d: m.version(d) for d in ['pandas', 'numpy', 'python-dateutil']}))")


def test_lock_pins_the_closure_to_the_kernel_and_the_image_installs_exactly_it(tmp_path,
                                                                               engine):
    path = write_notebook(tmp_path / "locked.ipynb", ["import pandas as pd", VERSIONS])
    made = cli("lock", str(path))
    assert made.returncode == 0, made.stderr
    lock = tmp_path / "locked.mlbox.lock"
    assert made.stdout.strip() == str(lock)
    text = lock.read_text()
    for dist in ("pandas", "numpy", "python-dateutil"):  # numpy and dateutil: transitive
        assert f"{dist}=={metadata.version(dist)} \\" in text, dist
    assert "--hash=sha256:" in text
    assert "--require-hashes" in cli("dockerfile", str(path)).stdout
    result = cli("run", str(path))
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "locked.mlbox.ipynb", as_version=4)
    inside = json.loads(executed.cells[1].outputs[0]["text"])
    assert inside == {d: metadata.version(d) for d in inside}  # the kernel's, transitive too


def test_a_lock_that_lacks_a_new_import_is_stale_and_relock_refreshes_it(tmp_path):
    path = write_notebook(tmp_path / "grows.ipynb", ["import dateutil"])
    assert cli("lock", str(path)).returncode == 0
    write_notebook(path, ["import dateutil", "import pandas"])
    stale = cli("requirements", str(path))
    assert stale.returncode == 3
    assert "grows.mlbox.lock is stale: it lacks pandas" in stale.stderr
    assert "--relock" in stale.stderr and "Traceback" not in stale.stderr
    fresh = cli("dockerfile", str(path), "--relock")
    assert fresh.returncode == 0, fresh.stderr
    assert f"pandas=={metadata.version('pandas')}" in (tmp_path / "grows.mlbox.lock").read_text()

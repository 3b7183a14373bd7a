"""%mlbox … --trace and %mlbox lock in a live kernel: what the kernel really loaded counts,
beyond a fresh kernel's; the lock pins the closure to the kernel (issue 8, items 1 and 4). A real
kernel; no image is built."""
from __future__ import annotations

import importlib.metadata as metadata

from .helpers import execute_notebook, streams


def test_the_live_kernel_s_modules_count_with_trace(tmp_path):
    nb = execute_notebook(["%load_ext jupyter_mlbox",
                           "exec('import ' + 'pandas')",  # no import statement shows it
                           "%mlbox requirements",
                           "%mlbox requirements --trace"], tmp_path)
    static, traced = streams(nb.cells[2], "stdout"), streams(nb.cells[3], "stdout")
    assert "pandas" not in static
    assert f"pandas=={metadata.version('pandas')}" in traced.splitlines()
    assert f"numpy=={metadata.version('numpy')}" in traced.splitlines()  # loaded by pandas
    assert "docker" not in traced and "ipywidgets" not in traced  # jupyter_mlbox's own


def test_mlbox_lock_writes_the_lock_beside_the_notebook(tmp_path):
    """%mlbox lock: the closure pinned to this kernel (uv against the real index)."""
    from tests.conftest import write_notebook

    write_notebook(tmp_path / "other.ipynb", ["import pandas"])
    nb = execute_notebook(["%load_ext jupyter_mlbox", "%mlbox lock other.ipynb"], tmp_path)
    assert streams(nb.cells[1], "stdout").strip().endswith("other.mlbox.lock")
    text = (tmp_path / "other.mlbox.lock").read_text()
    assert f"numpy=={metadata.version('numpy')} \\" in text and "--hash=sha256:" in text

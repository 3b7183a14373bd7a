"""%mlbox … --trace in a live kernel: what the kernel really loaded counts, beyond a fresh
kernel's (issue 8, item 1). A real kernel; no image is built."""
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

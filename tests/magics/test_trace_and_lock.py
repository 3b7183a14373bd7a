"""%mlbox … --trace and %mlbox lock in a live kernel: what the kernel really loaded counts,
beyond a fresh kernel's; the lock pins the closure to the kernel (issue 8, items 1 and 4). A real
kernel; no image is built."""
from __future__ import annotations

import importlib.metadata as metadata

from .helpers import execute_notebook, streams


def test_the_live_kernel_s_modules_count_unless_no_trace(tmp_path):
    nb = execute_notebook(["%load_ext jupyter_mlbox",
                           "exec('import ' + 'pandas')",  # no import statement shows it
                           "%mlbox requirements --no-trace",
                           "%mlbox requirements"], tmp_path)
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


def test_what_jupyter_mlbox_reads_itself_is_not_the_notebook_s_reading(tmp_path):
    """The notebook file, apt.txt and the like are read by %mlbox, not by the notebook: they
    must not be shipped as files the notebook read."""
    (tmp_path / "apt.txt").write_text("# none\n")
    nb = execute_notebook(["%load_ext jupyter_mlbox",
                           "%mlbox requirements",
                           "print(open('da' + 'ta.txt', 'w').write('x'))",
                           "print(open('da' + 'ta.txt').read())",
                           "from jupyter_mlbox.core.opened import opened_files\n"
                           "import os\nprint(sorted(os.path.basename(p) for p in "
                           "opened_files(os.getcwd())))"], tmp_path)
    assert streams(nb.cells[4], "stdout").strip() == "['data.txt']"

"""Runtime tracing (issue 8, item 1): what the kernel really loaded counts, beyond a fresh
kernel's baseline. A real local kernel (nbclient), no Docker."""
from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

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


READS_HIDDEN_FILE = ("import glob\n"
                     "path = glob.glob('*/' + 'da' + 'ta.txt')[0]  # no literal names it\n"
                     "print(open(path).read().strip())\n"
                     "open('writ' + 'ten.txt', 'w').write('made here')")


def test_trace_records_the_files_the_kernel_read_and_they_travel(tmp_path):
    """Files found by globbing are invisible to static analysis; the audit hook of a traced run
    sees them (issue 13, item 4). Files the notebook writes are not shipped."""
    from jupyter_mlbox.core.build import plan_notebook
    from jupyter_mlbox.core.options import BuildOptions

    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "data.txt").write_text("found by glob\n")
    (tmp_path / "inputs" / "other.txt").write_text("never read\n")
    path = write_notebook(tmp_path / "reads.ipynb", [READS_HIDDEN_FILE])
    _, static = plan_notebook(path)
    assert "inputs/data.txt" not in static.local_files
    _, traced = plan_notebook(path, BuildOptions(trace=True))
    assert "inputs/data.txt" in traced.local_files
    assert "inputs/other.txt" not in traced.local_files and "written.txt" not in traced.local_files


def test_what_jupyter_mlbox_loads_or_reads_itself_is_not_the_notebook_s(tmp_path, monkeypatch):
    """A module jupyter_mlbox loads while it works (pipreqs' mapping, a reader of --out values)
    would otherwise be traced, and change the image between two cells."""
    from jupyter_mlbox.core import trace
    from jupyter_mlbox.core.opened import opened_files, record_opened

    for name in ("mlbox_probe_ours", "mlbox_probe_notebooks"):
        (tmp_path / f"{name}.py").write_text("x = 1\n")
    (tmp_path / "ours.txt").write_text("read by jupyter_mlbox")
    (tmp_path / "theirs.txt").write_text("read by the notebook")
    monkeypatch.syspath_prepend(str(tmp_path))
    record_opened()
    with trace.own_work():
        import mlbox_probe_ours  # noqa: F401
        (tmp_path / "ours.txt").read_text()
    import mlbox_probe_notebooks  # noqa: F401
    (tmp_path / "theirs.txt").read_text()
    loaded = trace.traced_modules(list(sys.modules), trace._own_loaded)
    assert "mlbox_probe_notebooks" in loaded and "mlbox_probe_ours" not in loaded
    read = [Path(p).name for p in opened_files(tmp_path)]
    assert "theirs.txt" in read and "ours.txt" not in read

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

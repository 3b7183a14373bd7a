"""What the kernel loaded and read counts by default in %%mlbox (issue 8 item 1, issue 13
item 4): a real kernel, the real Docker daemon, fixtures of our own."""
from __future__ import annotations

import pytest

from .helpers import COMMON_IMPORTS, execute_notebook, of_type, streams

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]

#: No literal names the file: static analysis cannot see it; the kernel that read it did.
GLOBBED = "import glob\nprint(open(glob.glob('da' + '*/*.txt')[0]).read().strip())"


def test_a_file_the_kernel_read_travels_with_the_cell(tmp_path, shared_image):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "found.txt").write_text("read here first\n")
    nb = execute_notebook(["%load_ext jupyter_mlbox", COMMON_IMPORTS, GLOBBED,
                           f"%%mlbox --quiet --no-trace\n{GLOBBED}",
                           f"%%mlbox --quiet\n{GLOBBED}"], tmp_path)
    assert streams(nb.cells[2], "stdout") == "read here first\n"
    assert of_type(nb.cells[3], "error"), "without tracing the file must not be there"
    assert not of_type(nb.cells[4], "error"), of_type(nb.cells[4], "error")
    assert streams(nb.cells[4], "stdout") == "read here first\n"

"""`jupyter mlbox build/run` say what the plan reproduces before the build starts (issue 13
item 7), on the real daemon; `jupyter mlbox requirements` still prints only the requirements."""
from __future__ import annotations

import re
import uuid

from tests.conftest import write_notebook
from tests.integration.helpers import cli


def test_the_report_comes_before_the_first_build_step_and_before_the_run(tmp_path, engine):
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "values.csv").write_text("1\n2\n3\n")
    # a name of its own: a new tag (the label holds it), so the build really runs its steps
    name = f"report-{uuid.uuid4().hex[:8]}.ipynb"
    path = write_notebook(tmp_path / name, [
        "import numpy as np\nimport helpers",
        "print('total', helpers.double(int(np.loadtxt('values.csv').sum())))",
    ])
    built = cli("build", str(path))
    tag = built.stdout.strip().splitlines()[-1] if built.stdout.strip() else ""
    try:
        assert built.returncode == 0, built.stderr
        lines = built.stderr.splitlines()
        head = next(i for i, line in enumerate(lines) if "before the build:" in line)
        first_step = next(i for i, line in enumerate(lines) if re.search(r"step 1/\d+", line))
        assert head < first_step, built.stderr
        assert re.search(r"before the build: 1 requirement · no lock · 2 files \(\d+ B\)$",
                         lines[head]), lines[head]
        report = [line.strip() for line in lines[head + 1:first_step]]
        assert "imports: numpy" in report
        assert any(line.startswith("lock: none") for line in report)
        assert any(re.fullmatch(r"files: 2 \(\d+ B\): helpers\.py, values\.csv", line)
                   for line in report), report

        ran = cli("run", str(path))
        assert ran.returncode == 0, ran.stderr
        lines = ran.stderr.splitlines()
        head = next(i for i, line in enumerate(lines) if "before the build:" in line)
        building = next(i for i, line in enumerate(lines) if "[building]" in line)
        starting = next(i for i, line in enumerate(lines) if "starting a container" in line)
        assert head < building < starting, ran.stderr
    finally:  # this notebook's images only (a run may have built anew if the tag moved)
        from jupyter_mlbox.core.images import list_mlbox_images

        for image in list_mlbox_images(engine):
            if image.notebook == name or image.tag == tag:
                engine.remove_image(image.tag)


def test_requirements_prints_only_the_requirements(tmp_path):
    path = write_notebook(tmp_path / "r.ipynb", ["import numpy"])
    listed = cli("requirements", str(path))
    assert listed.returncode == 0, listed.stderr
    assert re.fullmatch(r"numpy==[\w.]+\n", listed.stdout)
    assert "before the build" not in listed.stderr + listed.stdout

"""The plan's report through the REST API (issue 13 item 7, issue 8): the panel's notebook view
gets it with the requirements, a job carries its lines once it has planned."""
from __future__ import annotations

import pytest

from ..conftest import write_notebook

pytestmark = pytest.mark.docker


async def test_requirements_carry_the_report_lock_and_system_packages(jp_root_dir, api):
    folder = jp_root_dir / "work"
    write_notebook(folder / "plot.ipynb", ["import numpy as np\nrows = open('rows.txt').read()"])
    (folder / "rows.txt").write_text("1\n2\n")
    (folder / "apt.txt").write_text("libgomp1\n")
    code, body = await api.get("requirements", path="work/plot.ipynb")
    assert code == 200, body
    assert body["locked"] is False
    assert body["system_packages"] == [{"name": "libgomp1", "origin": "apt.txt", "because": ""}]
    report = body["report"]
    assert report["headline"] == "1 requirement · no lock · 1 file (4 B) · 1 system package"
    assert report["files"] == {"count": 1, "bytes": 4, "names": ["rows.txt"]}  # project-relative
    lines = {line["key"]: line["text"] for line in report["lines"]}
    assert lines["requirements-import"] == "numpy"
    assert lines["system"] == "libgomp1 (apt.txt)"
    assert lines["lock"].startswith("none")
    assert report["unverified"] == []


async def test_a_job_keeps_the_report_it_said_before_the_build(notebooks, api):
    code, job = await api.post("builds", body={"path": "work/hello.ipynb"})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    assert job["report"][0] == "before the build: 0 requirements · no lock"
    assert "  requirements: none beyond the standard library" in job["report"]
    head = next(i for i, line in enumerate(job["log"]) if line.startswith("before the build:"))
    assert head < next(i for i, line in enumerate(job["log"]) if "mlbox/hello:" in line)

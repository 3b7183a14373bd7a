"""The plan's report (issue 13 item 7): computed once in the core from a real plan, said before
the build, rendered by the terminal, the text view and the widget model. Offline: the index is
a closed port (conftest), so a guess stays unverified."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jupyter_mlbox.core.build import plan_notebook
from jupyter_mlbox.core.events import CancelToken, EventKind, ProgressEvent, ProgressState
from jupyter_mlbox.core.inference import PinnedRequirement
from jupyter_mlbox.core.options import BuildOptions
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.report import import_sources, requirement_source
from jupyter_mlbox.core.run import run_notebook_file
from jupyter_mlbox.progress import TerminalProgress
from jupyter_mlbox.widgets import TextProgressView, WidgetProgressView

from ..conftest import write_notebook
from .memory_engine import MemoryEngine

PIP = PipSettings()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A notebook whose requirements come from every source a plan reads, a data file, a
    local module with its own import, apt.txt and an import nobody has (a guess)."""
    (tmp_path / "helpers.py").write_text("import packaging.version\n\ndef f():\n    return 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "iris.csv").write_text("a,b\n1,2\n")
    (tmp_path / "apt.txt").write_text("# system packages\nlibgomp1\n")
    write_notebook(tmp_path / "analysis.ipynb", [
        "import numpy as np\nimport helpers\nimport pandas as pd\n"
        "df = pd.read_csv('data/iris.csv')",
        "pd.read_parquet('x.parquet')",  # implied: pyarrow
        "%pip install tabulate==0.9.0",
        "import graphviz_surely_missing_xyz\nimport graphviz",
    ])
    return tmp_path / "analysis.ipynb"


def plan_of(path: Path, **options):
    return plan_notebook(path, BuildOptions(**options), pip=PIP)[1]


def by_name(report) -> dict[str, dict]:
    return {r["name"]: r for r in report.requirements}


def test_requirements_by_source_files_system_packages_and_unverified(project):
    report = plan_of(project, pip=("rich==13.0.0",), apt=("curl",)).report()
    sources = {name: r["source"] for name, r in by_name(report).items()}
    assert sources["numpy"] == "import" and sources["pandas"] == "import"
    assert sources["packaging"] == "local-module"  # only helpers.py imports it
    assert sources["pyarrow"] == "implied"
    assert sources["tabulate"] == "magic"
    assert sources["rich"] == "explicit"
    assert sources["graphviz-surely-missing-xyz"] == "import"
    assert [u["name"] for u in report.unverified] == ["graphviz", "graphviz-surely-missing-xyz"]
    assert report.lock is None
    assert report.files["count"] == 2  # largest first
    assert report.files["names"] == ["helpers.py", "data/iris.csv"]
    assert report.files["bytes"] == len("a,b\n1,2\n") + len(
        (project.parent / "helpers.py").read_bytes())
    system = {p["name"]: (p["origin"], p["because"]) for p in report.system_packages}
    assert system == {"libgomp1": ("apt.txt", ""), "curl": ("explicit", ""),
                      "graphviz": ("inferred", "import graphviz")}
    assert report.runtime > 0  # the container's kernel stack, not the notebook's requirements

    text = report.text()
    lines = text.splitlines()
    assert lines[0] == ("before the build: 8 requirements · no lock · 2 files (56 B) · "
                        "3 system packages · 2 unverified")
    assert "  local modules' imports: packaging" in lines
    assert "  implied: pyarrow (read_parquet(…))" in lines
    assert "  magics (%load_ext, %pip): tabulate" in lines
    assert "  --pip: rich" in lines
    assert "  files: 2 (56 B): helpers.py, data/iris.csv" in lines
    assert "  system packages: libgomp1 (apt.txt), curl (--apt), graphviz (import graphviz)" \
        in lines
    assert any(line.startswith("  imports: ") and "graphviz-surely-missing-xyz (unverified "
               "guess)" in line for line in lines)
    unverified = [line for line in lines if line.startswith("  unverified: ")]
    assert len(unverified) == 2 and "`import graphviz_surely_missing_xyz`" in unverified[1]
    assert "--pip NAME" in unverified[1]
    assert lines.index("  --pip: rich") < lines.index(unverified[0])  # sources, then the rest

    data = json.loads(json.dumps(plan_of(project).as_dict()))["report"]  # the API's JSON
    assert data["headline"] == report.headline().replace(" · 3 system", " · 2 system") \
        .replace("8 requirements", "7 requirements")
    assert {line["key"] for line in data["lines"]} >= {"requirements-import", "lock", "files",
                                                      "system", "unverified"}


def test_a_lock_beside_the_notebook_is_said_with_its_size(tmp_path):
    path = write_notebook(tmp_path / "locked.ipynb", ["import numpy"])
    unlocked = plan_of(path)
    lock = "".join(f"{r}\n" for r in unlocked.spec.requirements) + "extra-dependency==1.0\n"
    (tmp_path / "locked.mlbox.lock").write_text("# a lock\n" + lock)
    report = plan_of(path).report()
    assert report.lock == {"file": "locked.mlbox.lock",
                           "distributions": len(unlocked.spec.requirements) + 1}
    assert "lock locked.mlbox.lock" in report.headline()
    assert f"  lock: locked.mlbox.lock pins {report.lock['distributions']} distributions, with " \
           f"hashes" in report.text().splitlines()
    assert "lock: none" in unlocked.report().text()


def test_requirements_file_trace_and_stdlib_only(tmp_path):
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    path = write_notebook(tmp_path / "r.ipynb", ["import requests"])
    report = plan_of(path).report()
    assert [(r["name"], r["source"]) for r in report.requirements] == [("requests", "file")]
    assert "  requirements file: requests" in report.text().splitlines()

    plain = write_notebook(tmp_path / "plain" / "p.ipynb", ["import json"])
    text = plan_of(plain).report().text()
    assert text.splitlines()[0] == "before the build: 0 requirements · no lock"
    assert "  requirements: none beyond the standard library" in text.splitlines()

    traced = PinnedRequirement("scipy==1.0", "traced", ("scipy",))
    assert requirement_source(traced, {}) == "trace"


def test_import_sources_tell_the_notebook_from_its_local_modules_and_magics():
    imported = import_sources(["import numpy.linalg\nfrom pandas import DataFrame",
                               "%load_ext line_profiler", "%load_ext numpy"])
    assert imported == {"numpy": "import", "pandas": "import", "line_profiler": "magic"}
    req = PinnedRequirement("line-profiler==4.0", "installed", ("line_profiler",))
    assert requirement_source(req, imported) == "magic"
    assert requirement_source(req, None) == "import"  # unknown: the notebook's own import
    assert requirement_source(PinnedRequirement("x==1", "installed", ("x",)), imported) \
        == "local-module"


def test_the_report_is_emitted_after_the_warnings_and_before_the_build(project):
    """A run's events: the report arrives once, in the inferring phase, before the first
    build step; the job state keeps its lines (the panel's job view)."""
    events: list[ProgressEvent] = []
    engine = MemoryEngine(images=("python:3.11-slim",))
    run_notebook_file(engine, project, build_options=BuildOptions(), on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.REPORT) == 1
    report = kinds.index(EventKind.REPORT)
    assert report < kinds.index(EventKind.STEP)
    assert max(i for i, k in enumerate(kinds) if k == EventKind.WARNING) < report
    assert events[report].phase == "inferring"
    state = ProgressState()
    for event in events:
        state.apply(event)
    assert state.report[0].startswith("before the build: 7 requirements")
    assert state.snapshot()["report"] == state.report


def test_nothing_is_emitted_when_nobody_listens_and_requirements_stay_as_they_were(project):
    """`jupyter mlbox requirements` prints the direct requirements only (plan without
    on_event); the report does not change the plan's tag or requirements."""
    plan = plan_of(project)
    names = [r.name for r in plan.inference.requirements]
    assert "pyarrow" in names and plan.tag == plan_of(project).tag


REPORT = ProgressEvent("inferring", "report",
                       "before the build: 2 requirements · no lock · 1 unverified\n"
                       "  imports: numpy, foo (unverified guess)\n  lock: none\n"
                       "  unverified: foo (a guess for `import foo` the package index could not "
                       "confirm; --pip NAME or --exclude NAME settles it)")
STEP = ProgressEvent("building", "step", "FROM python:3.11-slim", 1, 4)


def test_terminal_prints_the_report_as_lines_before_the_steps():
    out = io.StringIO()
    progress = TerminalProgress(out, tty=False)
    progress(ProgressEvent("inferring", "phase", "reading the imports of a.ipynb"))
    progress(REPORT)
    progress(STEP)
    lines = out.getvalue().splitlines()
    assert lines[1].endswith("[inferring] before the build: 2 requirements · no lock · "
                             "1 unverified")
    assert lines[2].strip() == "imports: numpy, foo (unverified guess)"
    assert lines[2].startswith(" " * 9)  # under the message, not under the time
    assert lines[4].strip().startswith("unverified: foo")
    assert "step 1/4" in lines[5]

    quiet = io.StringIO()
    TerminalProgress(quiet, quiet=True, tty=False)(REPORT)
    assert quiet.getvalue() == ""


def test_text_view_prints_the_report_and_quiet_does_not():
    out = io.StringIO()
    view = TextProgressView(CancelToken(), title="%%mlbox", stream=out)
    view.handle(REPORT)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and all(line.startswith("[%%mlbox ") for line in lines)
    assert lines[0].endswith("] before the build: 2 requirements · no lock · 1 unverified")
    assert lines[3].endswith("]     unverified: foo (a guess for `import foo` the package "
                             "index could not confirm; --pip NAME or --exclude NAME settles it)")
    quiet = io.StringIO()
    TextProgressView(CancelToken(), stream=quiet, quiet=True).handle(REPORT)
    assert quiet.getvalue() == ""


def test_widget_shows_the_report_open_when_unverified_and_keeps_it_on_failure():
    view = WidgetProgressView(CancelToken(), title="%%mlbox")
    assert view.widget.children == (view.header, view.log_section)  # no plan yet
    view.handle(REPORT)
    assert view.widget.children == (view.header, view.report_section, view.log_section)
    assert view.report_section.get_title(0) == ("before the build: 2 requirements · no lock · "
                                                "1 unverified")
    assert view.report_section.selected_index == 0  # open: something is unverified
    assert "unverified: foo (a guess for `import foo`" in view.report.value
    assert "<script" not in view.report.value
    view.fail("the cell raised ModuleNotFoundError inside mlbox/x:1")
    assert view.widget.children == (view.summary, view.report_section, view.log_section)

    calm = WidgetProgressView(CancelToken())
    calm.handle(ProgressEvent("inferring", "report", "before the build: 1 requirement · no "
                              "lock\n  imports: <b>numpy</b>\n  lock: none"))
    assert calm.report_section.selected_index is None  # nothing unverified: collapsed
    assert "&lt;b&gt;numpy&lt;/b&gt;" in calm.report.value  # names are text, never HTML
    calm.finish("built mlbox/x:1")
    assert calm.widget.children == (calm.summary,)  # success: one line, as before

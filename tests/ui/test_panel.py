"""The MLBox panel in a real JupyterLab, clicked through in headless Chromium."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
from playwright.sync_api import expect

from ..integration import test_session

session_image = test_session.image  # its module-scoped image fixture, reused here

pytestmark = [pytest.mark.browser, pytest.mark.docker]

BUILD_TIMEOUT = 300_000


def open_notebook_with_panel(page, lab, path: str):
    page.goto(lab.page_url(path))
    # the notebook is open once its first cell editor shows
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    tab = page.locator('.jp-SideBar li[data-id="jupyter-mlbox-panel"]')
    expect(tab).to_be_visible()
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    panel = page.locator("#jupyter-mlbox-panel")
    expect(panel).to_be_visible()
    return panel


def job_row(panel, label: str):
    return panel.locator(".jp-MlboxPanel-job", has_text=label).first


def wait_final(row, expected: str = "done", timeout: int = BUILD_TIMEOUT) -> None:
    """Wait until the job row is final, then say what it shows when it is not ``expected``."""
    expect(row).to_have_attribute("data-status", re.compile("done|failed|cancelled"),
                                  timeout=timeout)
    status = row.get_attribute("data-status")
    assert status == expected, f"job {status}: {row.inner_text()}"


def test_requirements_with_warnings(lab, page, screenshot):
    panel = open_notebook_with_panel(page, lab, "guess.ipynb")
    # daemon status line and requirements with the unresolved-import warning
    expect(panel.locator(".jp-MlboxPanel-status")).to_contain_text("Docker", timeout=60_000)
    expect(panel.locator(".jp-MlboxPanel-status")).to_contain_text("GPU")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("guess.ipynb")
    expect(panel.locator(".jp-MlboxPanel-requirements")).to_contain_text(re.compile(r"numpy==\d"))
    expect(panel.locator(".jp-MlboxPanel-warning").first).to_contain_text("surely_not_a_module_xyz")
    expect(panel.locator(".jp-MlboxPanel-image")).to_contain_text("mlbox/guess:")
    screenshot("01-panel-requirements")


def test_requirements_follow_a_saved_edit(lab, page):
    panel = open_notebook_with_panel(page, lab, "edit.ipynb")
    expect(panel.locator(".jp-MlboxPanel-requirements")).to_contain_text("standard library only")
    page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first.click()
    page.keyboard.press("End")
    page.keyboard.type("\nimport numpy")
    page.keyboard.press("Control+s")
    expect(panel.locator(".jp-MlboxPanel-requirements")).to_contain_text(re.compile(r"numpy==\d"),
                                                                         timeout=15_000)


def test_a_declared_requirement_says_where_it_comes_from(lab, page):
    """A notebook in a project with a pyproject.toml: its requirement is marked "file", and
    the mark names the file and the table it came from."""
    from ..conftest import write_notebook

    project = lab.root / "declared"
    (project / ".git").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "tiny"\nversion = "0.1.0"\ndependencies = ["six==1.16.0"]\n')
    write_notebook(project / "uses.ipynb", ["import six"])
    panel = open_notebook_with_panel(page, lab, "declared/uses.ipynb")
    item = panel.locator(".jp-MlboxPanel-requirements li", has_text="six==1.16.0")
    expect(item).to_be_visible(timeout=60_000)
    origin = item.locator(".jp-MlboxPanel-origin")
    expect(origin).to_have_text("file")
    expect(origin).to_have_attribute("title", "pyproject.toml [project] dependencies")


def test_build_run_open_export(engine, lab, page, screenshot):
    panel = open_notebook_with_panel(page, lab, "tiny.ipynb")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("tiny.ipynb")
    expect(panel.locator(".jp-MlboxPanel-requirements")).to_contain_text(re.compile(r"numpy==\d"))
    expect(panel.locator(".jp-MlboxPanel-image")).to_contain_text("mlbox/tiny:")

    # Build: the job appears, shows progress, and reaches done; the image is then up to date
    panel.get_by_role("button", name="Build", exact=True).click()
    build = job_row(panel, "Build tiny.ipynb")
    expect(build).to_be_visible()
    wait_final(build)
    expect(panel.locator(".jp-MlboxPanel-image")).to_contain_text("up to date", timeout=15_000)
    build.get_by_role("button", name="Log").click()
    expect(build.locator(".jp-MlboxPanel-log")).to_be_visible()
    screenshot("02-panel-built", panel)

    # Run in container, then open the executed notebook from the job
    panel.get_by_role("button", name="Run in container").click()
    run = job_row(panel, "Run tiny.ipynb")
    wait_final(run)
    assert (lab.root / "tiny.mlbox.ipynb").exists()
    run.get_by_role("button", name="Open tiny.mlbox.ipynb").click()
    executed_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab",
                                has_text="tiny.mlbox.ipynb")
    expect(executed_tab).to_be_visible(timeout=30_000)
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output",
                          has_text="sum of squares: 30")
    expect(output).to_be_visible(timeout=30_000)
    screenshot("03-executed-notebook")

    # Export… from the panel of the original notebook: dialog with tag and push
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=re.compile(r"^tiny\.ipynb")) \
        .first.click()
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("tiny.ipynb")
    panel.get_by_role("button", name="Export…").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Export Notebook as Docker Image")
    dialog.locator('input[name="tag"]').fill("mlbox-ui-test/tiny:1")
    screenshot("04-export-dialog")
    dialog.get_by_role("button", name="Export").click()
    export = job_row(panel, "mlbox-ui-test/tiny:1")
    try:
        wait_final(export)
        assert engine.image_exists("mlbox-ui-test/tiny:1")
        # the exported image is in the Images list; delete it with the mouse
        row = panel.locator('.jp-MlboxPanel-imageRow[data-tag="mlbox-ui-test/tiny:1"]')
        expect(row).to_be_visible(timeout=15_000)
        screenshot("05-panel-exported", panel)
        row.get_by_role("button", name="Delete").click()
        page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
        expect(row).to_have_count(0, timeout=15_000)
        assert not engine.image_exists("mlbox-ui-test/tiny:1")
    finally:
        subprocess.run(["docker", "rmi", "-f", "mlbox-ui-test/tiny:1"], capture_output=True)


def test_menus_have_the_commands_and_they_run(lab, page, screenshot, no_leftover_containers):
    panel = open_notebook_with_panel(page, lab, "tiny.ipynb")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("tiny.ipynb")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.click(button="right")
    context_menu = page.locator(".lm-Menu").last
    expect(context_menu).to_contain_text("Run Notebook in Container")
    expect(context_menu).to_contain_text("Export Notebook as Docker Image…")
    page.keyboard.press("Escape")

    # the command palette lists them under MLBox
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^View$")).click()
    page.locator(".lm-Menu-item", has_text="Command Palette").first.click()
    palette = page.locator(".lm-CommandPalette:visible")
    palette.locator("input").fill("MLBox")
    expect(palette).to_contain_text("Run Notebook in Container")
    expect(palette).to_contain_text("Export Notebook as Docker Image…")
    page.keyboard.press("Escape")

    runs = panel.locator(".jp-MlboxPanel-job", has_text="Run tiny.ipynb")
    before = runs.count()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^File$")).click()
    menu = page.locator(".lm-Menu").first
    expect(menu).to_contain_text("Export Notebook as Docker Image…")
    screenshot("06-file-menu")
    menu.locator(".lm-Menu-item", has_text="Run Notebook in Container").click()
    expect(runs).to_have_count(before + 1, timeout=15_000)
    wait_final(runs.first)


def test_cancel_a_run_from_the_panel(engine, lab, page, screenshot, no_leftover_containers):
    panel = open_notebook_with_panel(page, lab, "sleepy.ipynb")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("sleepy.ipynb")
    panel.get_by_role("button", name="Run in container").click()
    run = job_row(panel, "Run sleepy.ipynb")
    expect(run.locator(".jp-MlboxPanel-job-phase")).to_contain_text("running",
                                                                     timeout=BUILD_TIMEOUT)
    time.sleep(2)
    screenshot("07-running-job", panel)
    run.get_by_role("button", name="Cancel").click()
    wait_final(run, "cancelled", timeout=60_000)
    assert not engine.list_containers("io.jupyter-mlbox.notebook=sleepy.ipynb")


def test_docker_unreachable_is_said_clearly(lab_without_docker, page, screenshot):
    panel = open_notebook_with_panel(page, lab_without_docker, "tiny.ipynb")
    status = panel.locator(".jp-MlboxPanel-status")
    expect(status).to_contain_text("Docker is unreachable", timeout=30_000)
    expect(status).to_contain_text("no-docker-here.sock")
    # requirements still show (inference needs no Docker); images say why they are missing
    expect(panel.locator(".jp-MlboxPanel-requirements")).to_contain_text(re.compile(r"numpy==\d"))
    expect(panel.locator(".jp-MlboxPanel-image")).to_contain_text("Docker unreachable")
    expect(panel.locator(".jp-MlboxPanel-images")).to_contain_text("Docker is unreachable")
    screenshot("08-docker-unreachable", panel)


# --- the plan's report (issue 13 item 7, issue 8): before any build ---------------------------

#: A data file name that is HTML: the panel must show it as text, never run it.
HOSTILE_FILE = "<img src=x onerror=window.__mlboxInjected=1>.csv"


@pytest.fixture(scope="module")
def lab_offline_index(built_labextension, tmp_path_factory):
    """A lab whose package index is a closed port, so a guess stays unverified: a notebook
    with a guess (graphviz, which also implies the graphviz Debian package) and a data file
    whose name is HTML, and a notebook with a lock beside it."""
    from jupyter_mlbox.core.build import plan_notebook

    from ..conftest import write_notebook
    from .conftest import start_lab, stop_lab

    tmp = tmp_path_factory.mktemp("lab-offline-index")
    root = tmp / "notebooks"
    root.mkdir()
    (root / HOSTILE_FILE).write_text("a\n1\n")
    write_notebook(root / "unsure.ipynb", [
        f"import numpy as np\nimport graphviz\nrows = open({HOSTILE_FILE!r}).read()"])
    locked = write_notebook(root / "locked.ipynb", ["import numpy as np"])
    requirements = plan_notebook(locked)[1].spec.requirements  # this kernel = the server's
    (root / "locked.mlbox.lock").write_text("".join(f"{r}\n" for r in requirements))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
        patch.setenv("PIP_EXTRA_INDEX_URL", " ")
        process, server = start_lab(tmp, root)
    yield server
    stop_lab(process)


def test_report_shows_unverified_guess_system_package_and_lock(lab_offline_index, page,
                                                              screenshot):
    panel = open_notebook_with_panel(page, lab_offline_index, "unsure.ipynb")
    report = panel.locator(".jp-MlboxPanel-report")
    expect(report).to_contain_text("Before the build:", timeout=60_000)
    expect(report).to_contain_text("1 unverified")
    expect(panel.locator(".jp-MlboxPanel-requirements li.jp-mod-unverified")) \
        .to_contain_text("graphviz")
    expect(panel.locator(".jp-MlboxPanel-requirements li.jp-mod-unverified")) \
        .to_contain_text("unverified guess")
    unverified = report.locator(".jp-MlboxPanel-report-line.jp-mod-unverified")
    expect(unverified).to_have_count(1)
    expect(unverified).to_contain_text("graphviz (a guess for `import graphviz`")
    expect(report.locator(".jp-MlboxPanel-report-line.jp-mod-system")) \
        .to_contain_text("graphviz (import graphviz)")
    expect(report.locator(".jp-MlboxPanel-lock")).to_have_text(re.compile("^no lock"))
    # a file name that is HTML is shown as its text, never parsed
    files = report.locator(".jp-MlboxPanel-report-line.jp-mod-files")
    expect(files).to_contain_text(HOSTILE_FILE)
    assert panel.locator("img").count() == 0
    assert page.evaluate("window.__mlboxInjected") is None
    screenshot("09-panel-report-unverified", panel)

    panel = open_notebook_with_panel(page, lab_offline_index, "locked.ipynb")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("locked.ipynb")
    lock = panel.locator(".jp-MlboxPanel-lock")
    expect(lock).to_have_text(re.compile(r"^lock: locked\.mlbox\.lock \(\d+ pinned, with "
                                         r"hashes\)$"), timeout=60_000)
    expect(panel.locator(".jp-MlboxPanel-report")).not_to_contain_text("unverified")


def test_allow_errors_checkbox_runs_every_cell_and_the_job_says_so(engine, lab, page,
                                                                  screenshot):
    from jupyter_mlbox.core.images import list_mlbox_images

    from ..conftest import write_notebook

    write_notebook(lab.root / "oops.ipynb", [
        "import numpy as np\nraise ValueError('first failure')",
        "raise KeyError('second failure')",
        "print('last cell ran', int(np.arange(4).sum()))",
    ])
    try:
        panel = open_notebook_with_panel(page, lab, "oops.ipynb")
        expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("oops.ipynb")
        expect(panel.locator(".jp-MlboxPanel-report")).to_contain_text("Before the build:")
        checkbox = panel.get_by_role("checkbox", name="Run every cell, even after an error")
        expect(checkbox).not_to_be_checked()
        checkbox.check()
        panel.get_by_role("button", name="Run in container").click()
        run = job_row(panel, "Run oops.ipynb")
        wait_final(run, "failed")
        expect(run.locator(".jp-MlboxPanel-job-error")).to_contain_text(
            "2 cells raised (the run went on to the end)")
        expect(run.locator(".jp-MlboxPanel-job-error")).to_contain_text("ValueError")
        expect(run.locator(".jp-MlboxPanel-job-error")).to_contain_text("KeyError")
        # the job kept the plan's report, said before its build
        plan = run.locator(".jp-MlboxPanel-job-report")
        expect(plan.locator("summary")).to_contain_text("plan: 1 requirement · no lock")
        plan.locator("summary").click()
        expect(plan.locator("pre")).to_contain_text("imports: numpy")
        screenshot("10-panel-allow-errors", panel)
        import nbformat

        executed = nbformat.read(lab.root / "oops.mlbox.ipynb", as_version=4)
        last = executed.cells[2].outputs
        assert any("last cell ran 6" in o.get("text", "") for o in last), last
        # the checkbox stays as the user left it across re-renders
        expect(checkbox).to_be_checked()
    finally:
        for image in list_mlbox_images(engine):
            if image.notebook == "oops.ipynb":
                engine.remove_image(image.tag, force=True)


def test_the_docker_host_picked_in_the_panel_is_where_the_run_goes(lab, page,
                                                                  no_leftover_containers):
    import nbformat

    from ..conftest import write_notebook
    from .conftest import OTHER_HOST

    # a notebook of its own: the module's other tests run tiny.ipynb, and an earlier job row
    # (and output file) of theirs must not stand for this run
    write_notebook(lab.root / "hosted.ipynb", ["print('where am I')"])
    panel = open_notebook_with_panel(page, lab, "hosted.ipynb")
    expect(panel.locator(".jp-MlboxPanel-path")).to_have_text("hosted.ipynb")
    select = panel.locator("select.jp-MlboxPanel-host")
    expect(select.locator("option")).to_have_text(["the server's Docker daemon", OTHER_HOST])
    select.select_option(OTHER_HOST)
    panel.get_by_role("button", name="Run in container").click()
    wait_final(job_row(panel, "Run hosted.ipynb"), "done")
    executed = nbformat.read(lab.root / "hosted.mlbox.ipynb", as_version=4)
    assert executed.metadata["mlbox"]["host"] == OTHER_HOST
    expect(select).to_have_value(OTHER_HOST)  # kept across re-renders


def test_a_session_is_listed_in_the_panel_and_stopped_there(engine, lab, page, screenshot,
                                                            session_image,
                                                            no_leftover_containers):
    """A kernel's session (started here through the core, on the lab's daemon) shows with its
    name, image, notebook, GPU and memory; Restart asks first; Stop removes its container."""
    import uuid

    from jupyter_mlbox.core.session import Session, list_sessions

    session = Session.start(engine, session_image, name=f"ui-{uuid.uuid4().hex[:8]}",
                            notebook="session-test.ipynb")
    try:
        key = next(s.key for s in list_sessions(engine) if s.container.id == session.container.id)
        panel = open_notebook_with_panel(page, lab, "tiny.ipynb")
        row = panel.locator(".jp-MlboxPanel-sessionRow", has_text=session.name)
        expect(row).to_be_visible(timeout=15_000)  # the first refresh, or the poll's next
        assert row.get_attribute("data-key") == key
        expect(row.locator(".jp-MlboxPanel-tag")).to_have_text(session_image)
        expect(row.locator(".jp-MlboxPanel-meta")).to_contain_text("session-test.ipynb")
        expect(row.locator(".jp-MlboxPanel-meta")).to_contain_text("CPU")
        # what its container uses now (docker stats): a kernel is tens of MB
        expect(row.locator(".jp-MlboxPanel-meta")).to_contain_text(
            re.compile(r"\d+ MB memory"))
        screenshot("10-panel-session", panel)
        row.get_by_role("button", name="Restart").click()  # asked first; cancelled here
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text(f"Restart session {session.name}")
        expect(dialog).to_contain_text("starts it fresh")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        expect(row).to_be_visible()
        row.get_by_role("button", name="Stop").click()
        expect(dialog).to_contain_text(f"Stop session {session.name}")
        dialog.get_by_role("button", name="Stop").click()
        expect(row).to_have_count(0, timeout=15_000)
        assert session.container.id not in {
            c.id for c in engine.list_containers("io.jupyter-mlbox.managed=true")}
    finally:
        session.stop()

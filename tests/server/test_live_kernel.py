"""The server asks the notebook's open kernel what it loaded and read (issue 8, item 1; issue 13,
item 4): a real jupyter_server, a real session kernel, the real Docker daemon."""
from __future__ import annotations

import importlib.metadata as metadata

import nbformat
import pytest

from ..conftest import write_notebook

pytestmark = pytest.mark.docker


async def open_kernel(jp_fetch, jp_serverapp, path: str, *cells: str):
    """Open ``path`` as a notebook session (as JupyterLab does) and run ``cells`` in its
    kernel; return the kernel's manager."""
    import json

    response = await jp_fetch("api", "sessions", method="POST", body=json.dumps(
        {"path": path, "type": "notebook", "name": path.rsplit("/", 1)[-1],
         "kernel": {"name": "python3"}}))
    kernel_id = json.loads(response.body)["kernel"]["id"]
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        for code in cells:
            reply = await client.execute_interactive(code, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return km


async def test_modules_the_open_kernel_loaded_count(jp_root_dir, jp_fetch, jp_serverapp, api):
    write_notebook(jp_root_dir / "work" / "implicit.ipynb", ["print('no imports here')"])
    code, before = await api.get("requirements", path="work/implicit.ipynb")
    assert code == 200, before
    assert not any(r["requirement"].startswith("pandas==") for r in before["requirements"])

    await open_kernel(jp_fetch, jp_serverapp, "work/implicit.ipynb",
                      "exec('import ' + 'pandas')")  # no import statement shows it
    code, body = await api.get("requirements", path="work/implicit.ipynb")
    assert code == 200, body
    traced = {r["requirement"]: r["origin"] for r in body["requirements"]}
    assert traced.get(f"pandas=={metadata.version('pandas')}") == "traced", traced
    assert "docker" not in " ".join(traced)  # jupyter_mlbox's own modules are the baseline


async def test_files_the_open_kernel_read_travel_with_a_run(jp_root_dir, jp_fetch,
                                                           jp_serverapp, api,
                                                           no_leftover_containers):
    reads = "import glob\nprint(open(glob.glob('da' + '*/*.txt')[0]).read())"
    write_notebook(jp_root_dir / "work" / "globbed.ipynb", [reads])
    (jp_root_dir / "work" / "data").mkdir()
    (jp_root_dir / "work" / "data" / "found.txt").write_text("read by the kernel\n")

    await open_kernel(jp_fetch, jp_serverapp, "work/globbed.ipynb",
                      "%load_ext jupyter_mlbox", reads)

    code, job = await api.post("runs", body={"path": "work/globbed.ipynb",
                                             "options": {"trace": False}})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "failed", job  # without the kernel's reading: no file, IndexError

    code, job = await api.post("runs", body={"path": "work/globbed.ipynb"})
    assert code == 202, job
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    executed = nbformat.read(jp_root_dir / "work" / "globbed.mlbox.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "read by the kernel"


async def test_a_busy_kernel_is_not_waited_for_and_the_job_says_so(jp_root_dir, jp_fetch,
                                                                  jp_serverapp, api):
    import asyncio

    write_notebook(jp_root_dir / "work" / "busy.ipynb", ["print(1)"])
    km = await open_kernel(jp_fetch, jp_serverapp, "work/busy.ipynb")
    client = km.client()
    client.start_channels()
    try:
        client.execute("import time; time.sleep(30)")
        for _ in range(100):
            if km.execution_state == "busy":
                break
            await asyncio.sleep(0.1)
        code, job = await api.post("builds", body={"path": "work/busy.ipynb"})
        assert code == 202, job
        job = await api.wait_job(job["id"])
        assert job["status"] == "done", job
        said = [*job.get("warnings", []), *job["log"]]
        assert any("kernel is busy" in line for line in said), said
    finally:
        await km.interrupt_kernel()
        client.stop_channels()


async def test_the_job_is_listed_while_the_kernel_is_asked(jp_root_dir, jp_fetch, jp_serverapp,
                                                           api):
    """Asking the kernel is the job's first step, not the request's: a kernel that takes its
    time (here: stopped with SIGSTOP, so it looks idle and cannot answer) does not hold the
    POST, and the panel lists the job at once (the UI test clicked Build and saw nothing for
    seconds while a first answer computed its baseline)."""
    import asyncio
    import os
    import signal

    write_notebook(jp_root_dir / "work" / "slowkernel.ipynb", ["print(1)"])
    km = await open_kernel(jp_fetch, jp_serverapp, "work/slowkernel.ipynb",
                           "%load_ext jupyter_mlbox")
    pid = km.provisioner.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # before: the POST waited for the kernel's answer (up to 60 s)
        code, job = await asyncio.wait_for(api.post("builds",
                                                    body={"path": "work/slowkernel.ipynb"}), 20)
        assert code == 202, job
        code, listed = await api.get("jobs")
        assert job["id"] in [j["id"] for j in listed["jobs"]]
        code, now = await api.get("jobs", job["id"])
        assert now["status"] in {"queued", "running"}, now  # still waiting for the answer
    finally:
        os.kill(pid, signal.SIGCONT)
    job = await api.wait_job(job["id"])
    assert job["status"] == "done", job
    said = [*job.get("warnings", []), *job["log"]]
    assert not any("did not answer" in line for line in said), said

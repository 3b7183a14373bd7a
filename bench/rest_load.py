"""20 runs of one new notebook through the REST API at once: one build, a bounded queue, a
server that keeps answering.

    python bench/rest_load.py [N]

Starts a real ``jupyter server`` with the extension (token auth, a temp root), first runs
the notebook once alone (build + run: the baseline), then submits N more run jobs at once
plus one beyond the queue bound (N = c.JobManager.max_pending, default 20, so that one is
refused with 429), polls until every job ended, and prints: jobs accepted/refused, how many
built an image, the wall time against N × the lone run, and the slowest ``GET /jobs``
answer while the queue was full (the event loop is never blocked by Docker work).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat

TOKEN = uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/mlbox/api/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_all(port: int, ids: list[str]) -> tuple[list[dict], float]:
    """Poll until every job ended; the slowest GET /jobs meanwhile (seconds)."""
    slowest = 0.0
    while True:
        started = time.monotonic()
        _, listed = call(port, "GET", "jobs")
        slowest = max(slowest, time.monotonic() - started)
        jobs = {job["id"]: job for job in listed["jobs"]}
        if all(jobs.get(i, {}).get("status") in {"done", "failed", "cancelled"} for i in ids):
            return [call(port, "GET", f"jobs/{i}")[1] for i in ids], slowest
        time.sleep(0.5)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = Path(tempfile.mkdtemp(prefix="mlbox-rest-load-"))
    name = f"load-{uuid.uuid4().hex[:8]}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import json\nprint(json.dumps({{'id': {name!r}}}))")]), root / name)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--ServerApp.open_browser=False", "--allow-root", f"--JobManager.max_pending={count}",
         "--ServerApp.jpserver_extensions={'jupyter_mlbox': True}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                call(port, "GET", "jobs")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        else:
            raise SystemExit("the server did not start")
        body = {"path": name, "options": {"trace": False}}
        started = time.monotonic()
        code, lone = call(port, "POST", "runs", body)
        [lone], _ = wait_all(port, [lone["id"]])
        lone_seconds = time.monotonic() - started
        _, again = call(port, "POST", "runs", body)
        started = time.monotonic()
        [again], _ = wait_all(port, [again["id"]])
        reuse_seconds = time.monotonic() - started
        codes, ids = [], []
        started = time.monotonic()
        for _ in range(count + 1):
            code, job = call(port, "POST", "runs", body)
            codes.append(code)
            if code == 202:
                ids.append(job["id"])
        jobs, slowest = wait_all(port, ids)
        wall = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    built = sum(any(line.startswith("built ") or "Successfully built" in line
                    for line in job.get("log", [])) for job in [lone, *jobs])
    done = sum(job["status"] == "done" for job in jobs)
    print(f"first run alone (build + run): {lone_seconds:.1f} s; a second run alone "
          f"(image reused): {reuse_seconds:.1f} s")
    print(f"{count + 1} POSTs at once: {codes.count(202)} accepted, {codes.count(429)} refused "
          f"with 429; {done}/{len(jobs)} done; builds over all {len(jobs) + 2} runs: {built}")
    print(f"{len(jobs)} queued runs: {wall:.1f} s wall = {wall / reuse_seconds:.1f}× one lone "
          f"reused run ({wall / len(jobs):.2f} s per run, 2 workers); slowest GET /jobs "
          f"while they ran: {slowest * 1000:.0f} ms")
    subprocess.run(["docker", "rmi", lone["result"]["tag"]] if lone.get("result") else ["true"],
                   capture_output=True)


if __name__ == "__main__":
    main()

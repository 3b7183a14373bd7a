"""A one-shot ``%%mlbox`` cell shows its outputs as the container makes them (issue 10), once.

The cell prints, then waits for a file that this test puts into its container only after the
print has reached the local kernel's iopub: with outputs shown at the end only, the print never
comes while the cell runs, and the test fails (the cell would wait for ever; its timeout ends
it)."""
from __future__ import annotations

import subprocess

import pytest

from jupyter_mlbox.core.dockerfile import MANAGED_LABEL

from .helpers import LiveKernel, error_of, text_of

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

CELL = ("%%mlbox -q --timeout 120\n"
        "import os, time\n"
        "print('waiting for the host', flush=True)\n"
        "while not os.path.exists('/tmp/go'):\n"
        "    time.sleep(0.1)\n"
        "print('released')\n"
        "'the result'")


def _release(engine) -> None:
    """Put /tmp/go into the running container of the cell (docker exec)."""
    [container] = [c for c in engine.list_containers(f"{MANAGED_LABEL}=true")
                   if "-cell-" in c.labels.get("io.jupyter-mlbox.notebook", "")]
    subprocess.run(["docker", "exec", container.id, "touch", "/tmp/go"], check=True,
                   capture_output=True)


def test_a_cells_prints_show_while_it_runs_and_only_once(tmp_path, engine):
    kernel = LiveKernel(tmp_path)
    try:
        assert error_of(kernel.run("%load_ext jupyter_mlbox")) is None
        msg_id = kernel.submit(CELL)
        seen, released = [], False
        for message in kernel.messages(msg_id, 300):
            seen.append(message)
            if (not released and message["msg_type"] == "stream"
                    and "waiting for the host" in message["content"]["text"]):
                _release(engine)  # only a live print gets here while the cell runs
                released = True
        assert released, [m["msg_type"] for m in seen]
        assert error_of(seen) is None, error_of(seen)
        text = text_of(seen)
        assert text.count("waiting for the host\n") == 1 and text.count("released\n") == 1, text
        results = [m["content"]["data"]["text/plain"] for m in seen
                   if m["msg_type"] == "execute_result"]
        assert results == ["'the result'"]
    finally:
        kernel.close()

"""Real kernels for the magics tests: nbclient for whole notebooks, jupyter_client for
interrupts."""
from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from ..conftest import notebook_node

#: Every test notebook imports the same packages, so every %%mlbox cell infers the same
#: requirements and the tests share one image (built once, then reused).
COMMON_IMPORTS = ("import pandas as pd\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
                  "from sklearn.linear_model import LogisticRegression")


def kernel_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in {"JPY_SESSION_NAME", "MLBOX_PROGRESS"}}
    env.update(extra)
    return env


def execute_notebook(cells: list[str], cwd: Path, *, timeout: int = 600,
                     **env: str) -> nbformat.NotebookNode:
    """Execute ``cells`` in a fresh real kernel (cwd ``cwd``) and return the executed notebook.
    Errors do not stop the execution: each cell's outputs are there to inspect."""
    nb = notebook_node(cells)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env=kernel_env(**env))
    try:
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                                kernel_name="python3")
        client.execute()
    finally:
        if km.is_alive():
            km.shutdown_kernel(now=True)
    return nb


def streams(cell, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == name)


def own_stderr(cell) -> str:
    """The cell's stderr without jupyter_mlbox's warning lines (machine-wide pip settings)."""
    return "".join(line for line in streams(cell, "stderr").splitlines(keepends=True)
                   if not (line.startswith("[%%mlbox") and "] warning: " in line))


def of_type(cell, output_type: str) -> list:
    return [o for o in cell.outputs if o.output_type == output_type]


class LiveKernel:
    """A real kernel driven message by message, so a test can interrupt it mid-cell."""

    def __init__(self, cwd: Path, **env: str) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=kernel_env(**env))
        self.client = self.km.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def close(self) -> None:
        self.client.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=True)

    def submit(self, code: str) -> str:
        return self.client.execute(code)

    def messages(self, msg_id: str, timeout: float):
        """Yield iopub messages of ``msg_id`` until it is idle (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            yield msg
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return
        raise TimeoutError(f"no idle status for {msg_id} within {timeout} s")

    def run(self, code: str, timeout: float = 600) -> list[dict]:
        msg_id = self.submit(code)
        return list(self.messages(msg_id, timeout))

    def interrupt(self) -> None:
        self.km.interrupt_kernel()


def text_of(messages: list[dict], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in messages
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def error_of(messages: list[dict]) -> dict | None:
    return next((m["content"] for m in messages if m["msg_type"] == "error"), None)

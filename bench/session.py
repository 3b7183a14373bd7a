"""Per-cell overhead of ``%%mlbox --session``: the same trivial cell locally, on a warm session
and as a one-shot ``%%mlbox`` cell, in one real kernel, side by side.

    python bench/session.py [--cells 30] [--one-shot 3]

Each figure is the wall time from sending the cell to the kernel until the kernel is idle again
(its outputs shown), the median of the runs; the session's first cell (build, start) is not
counted. Overhead = session − local (the same code in the kernel itself). Needs a Docker daemon.
"""
from __future__ import annotations

import argparse
import queue
import statistics
import tempfile
import time

from jupyter_client.manager import KernelManager


def run(client, code: str) -> float:
    """Seconds from execute to idle; fails on an error in the cell."""
    started = time.perf_counter()
    msg_id = client.execute(code)
    error = None
    while True:
        try:
            msg = client.get_iopub_msg(timeout=600)
        except queue.Empty:
            raise TimeoutError(code) from None
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = msg["content"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            elapsed = time.perf_counter() - started
            if error:
                raise RuntimeError(f"{code!r}: {error['ename']}: {error['evalue']}")
            return elapsed


def median_ms(client, code: str, count: int) -> float:
    return statistics.median(run(client, code) for _ in range(count)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=30, help="runs of the local/session cell")
    parser.add_argument("--one-shot", type=int, default=3, help="runs of the one-shot cell")
    args = parser.parse_args()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=tempfile.mkdtemp(prefix="mlbox-bench-"))
    client = km.blocking_client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    try:
        run(client, "%load_ext jupyter_mlbox\nx = 41")
        run(client, "%%mlbox --session -q\nx = 41")  # build or reuse, start: not counted
        run(client, "%%mlbox -q\nx = 41")  # the one-shot image, built or reused: not counted
        local = median_ms(client, "x", args.cells)
        session = median_ms(client, "%%mlbox --session\nx", args.cells)
        one_shot = median_ms(client, "%%mlbox -q\nx = 41\nx", args.one_shot)
        run(client, "%mlbox session stop")
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=False)
    print(f"trivial cell, median wall time from execute to idle ({args.cells} runs; one-shot "
          f"{args.one_shot})")
    print(f"  local kernel            {local:8.1f} ms")
    print(f"  %%mlbox --session (warm) {session:7.1f} ms   overhead {session - local:6.1f} ms"
          f"   ×{session / local:.1f} local")
    print(f"  %%mlbox (one-shot)       {one_shot:7.1f} ms   overhead {one_shot - local:6.1f} ms"
          f"   ×{one_shot / session:.0f} the session")


if __name__ == "__main__":
    main()

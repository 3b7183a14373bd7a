"""The long-lived runner of a session: one kernel in the container, driven cell by cell.

Put into the container at start (``put_archive``, so the image and its tag stay as they are)
beside the image's ``runner.py`` (container_runner.py), whose pieces it reuses. Like it, only
the standard library, nbformat, nbclient and jupyter_client.

    python session_runner.py --dir DIR --workdir WORKDIR [--idle SECONDS]

The host writes ``cell ID JSON`` (the cell notebook, on one line) to stdin; the executed
notebook comes back in the ``done`` line on stdout. That is the fast way: a put_archive and a
get_archive cost dockerd about 40 ms each (BENCHMARKS.md), the stream about 1 ms. The archive
way is kept for an engine that cannot write to stdin: the host puts ``DIR/in/ID.ipynb`` (a poll
finds it) and reads ``DIR/out/ID.ipynb``, which is written (atomically) for every cell anyway.
``interrupt ID`` (or a file ``DIR/in/ID.interrupt``) sends SIGINT to the kernel process; the
container and the kernel's state stay. Every output is also written as it comes, so the host
shows a loop's prints live. stdout lines for the host start with ``MARK`` and hold one
JSON object. A kernel that dies is replaced by a fresh one at once (the next cell is told its
state was lost). The runner exits when stdin closes (its owner is gone) or no cell came for
``--idle`` seconds, even if the host vanished.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time

try:  # on the host, as part of the package
    from .image_modules import importable_top_level
    from .container_runner import (STREAMED, owner_gone, stdin_is_held, _write_atomic,
                                   clear_outputs, say)
except ImportError:  # in the container, beside the image's runner.py
    from image_modules import importable_top_level  # type: ignore
    from runner import (STREAMED, owner_gone, stdin_is_held, _write_atomic,  # type: ignore
                        clear_outputs, say)

#: The runner exited because no cell came for --idle seconds.
EXIT_IDLE = 6
#: Seconds between two looks at the inbox for a cell whose line did not come.
POLL_SECONDS = 0.05


class SessionKernel:
    """One kernel, kept across cells; replaced when it dies."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.client = None
        self.lost_state = False  # the kernel died: the next cell is told
        self.current: str | None = None  # the id of the cell running now
        self.interrupted: set = set()  # interrupts that came before their cell started

    async def start(self) -> None:
        import nbformat
        from nbclient import NotebookClient

        class Client(NotebookClient):
            """Writes each output for the host as it arrives."""

            def output(self, outs, msg, display_id, cell_index):
                out = super().output(outs, msg, display_id, cell_index)
                if out is not None and out.get("output_type") in STREAMED:
                    self.streamed += 1
                    say("output", id=self.cell_id, cell=cell_index, output=out)
                return out

            def clear_output(self, outs, msg, cell_index):
                say("clear", id=self.cell_id, cell=cell_index,
                    wait=bool(msg["content"].get("wait")))
                return super().clear_output(outs, msg, cell_index)

        client = Client(nbformat.v4.new_notebook(), kernel_name="python3", timeout=None,
                        allow_errors=False, resources={"metadata": {"path": self.workdir}})
        client.cell_id, client.streamed = None, 0
        client.km = client.create_kernel_manager()
        await client.async_start_new_kernel(cwd=self.workdir)
        await client.async_start_new_kernel_client()
        self.client = client

    async def stop(self) -> None:
        if self.client is not None:
            try:
                self.client.kc.stop_channels()
                stopped = self.client.km.shutdown_kernel(now=True)
                if asyncio.iscoroutine(stopped):
                    await stopped
            except Exception:  # noqa: BLE001 - a dead kernel is shut down already
                pass
            self.client = None

    @property
    def pid(self) -> int | None:
        process = getattr(getattr(getattr(self.client, "km", None), "provisioner", None),
                          "process", None)
        return getattr(process, "pid", None)

    def interrupt(self, cell_id: str) -> None:
        """SIGINT to the kernel process (called from another thread), if that cell runs."""
        if self.current != cell_id:
            self.interrupted.add(cell_id)
        elif self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    async def execute(self, cell_id: str, nb) -> dict:
        """Run the code cells of ``nb`` in order until one fails; the outcome."""
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        fresh, self.lost_state = self.lost_state, False
        client = self.client
        client.nb, client.cell_id, client.streamed = clear_outputs(nb), cell_id, 0
        outcome = {"status": "ok", "fresh_kernel": fresh}
        if cell_id in self.interrupted:
            outcome.update(status="interrupted", ename="KeyboardInterrupt", evalue="",
                           traceback="", streamed=0)
            return outcome
        self.current = cell_id
        try:
            for index, cell in enumerate(nb.cells):
                if cell.get("cell_type") != "code":
                    continue
                outcome["failed_cell"] = index
                try:
                    await client.async_execute_cell(cell, index)
                except CellExecutionError as err:
                    status = "interrupted" if err.ename == "KeyboardInterrupt" else "error"
                    outcome.update(status=status, ename=err.ename, evalue=err.evalue,
                                   traceback=err.traceback)
                    break
                except DeadKernelError as err:
                    outcome.update(status="kernel-died", ename="DeadKernelError",
                                   evalue=str(err), traceback="")
                    break
            else:
                outcome.pop("failed_cell", None)
        finally:
            self.current = None
        outcome["streamed"] = client.streamed
        if outcome["status"] == "kernel-died":
            await self.stop()
            await self.start()
            self.lost_state = True
        return outcome


def _watch_stdin(loop, cells: asyncio.Queue, kernel: SessionKernel, sent: dict) -> None:
    """Lines from the host: ``cell ID JSON`` queues a cell (its notebook into ``sent``),
    ``run ID`` one put in the inbox, ``interrupt ID`` interrupts it; the end of stdin means
    the owner is gone."""
    if not stdin_is_held():
        return

    def watch() -> None:
        buffer = b""
        try:
            while True:
                chunk = os.read(0, 4096)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    command, _, rest = line.decode(errors="replace").strip().partition(" ")
                    cell_id, _, payload = rest.partition(" ")
                    if command == "cell":
                        try:
                            sent[cell_id] = json.loads(payload)
                        except ValueError:
                            continue
                        loop.call_soon_threadsafe(cells.put_nowait, cell_id)
                    elif command == "run":
                        loop.call_soon_threadsafe(cells.put_nowait, cell_id)
                    elif command == "interrupt":
                        kernel.interrupt(cell_id)
        except OSError:
            pass
        owner_gone("mlbox-session", "session")

    threading.Thread(target=watch, name="mlbox-owner", daemon=True).start()


def _poll_inbox(loop, cells: asyncio.Queue, kernel: SessionKernel, inbox: str,
                seen: set) -> None:
    """The same as the stdin lines, for an engine that cannot write to stdin: a cell file with
    no line yet, and ``ID.interrupt`` files."""
    def poll() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            try:
                names = os.listdir(inbox)
            except OSError:
                continue
            for name in names:
                stem, _, ext = name.partition(".")
                if ext == "interrupt":
                    os.unlink(os.path.join(inbox, name))
                    kernel.interrupt(stem)
                elif ext == "ipynb" and stem not in seen:
                    loop.call_soon_threadsafe(cells.put_nowait, stem)

    threading.Thread(target=poll, name="mlbox-inbox", daemon=True).start()


def _read_cell(path: str):
    """The cell notebook, or None while it is still being copied in."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as handle:
            return nbformat.read(handle, as_version=4)
    except (OSError, ValueError):
        return None


async def serve(directory: str, workdir: str, idle: float | None) -> int:
    inbox, outbox = os.path.join(directory, "in"), os.path.join(directory, "out")
    os.makedirs(inbox, exist_ok=True)
    os.makedirs(outbox, exist_ok=True)
    kernel = SessionKernel(workdir)
    await kernel.start()
    loop = asyncio.get_running_loop()
    cells: asyncio.Queue = asyncio.Queue()
    seen: set = set()
    sent: dict = {}  # cell id → its notebook, for cells that came on stdin
    _watch_stdin(loop, cells, kernel, sent)
    _poll_inbox(loop, cells, kernel, inbox, seen)
    say("ready", pid=kernel.pid, modules=importable_top_level())
    while True:
        try:
            cell_id = await asyncio.wait_for(cells.get(), idle) if idle else await cells.get()
        except asyncio.TimeoutError:
            say("idle-exit", seconds=idle)
            print(f"mlbox-session: no cell for {idle:g} s; stopping", file=sys.stderr,
                  flush=True)
            await kernel.stop()
            return EXIT_IDLE
        if cell_id in seen:
            continue
        import nbformat

        streamed = cell_id in sent
        path = os.path.join(inbox, f"{cell_id}.ipynb")
        nb = nbformat.from_dict(sent.pop(cell_id)) if streamed else _read_cell(path)
        if nb is None:  # the poll saw it half-copied: its line (or the next poll) comes
            continue
        seen.add(cell_id)
        if not streamed:
            os.unlink(path)
        for old in os.listdir(outbox):  # the host has read every earlier cell by now
            os.unlink(os.path.join(outbox, old))
        outcome = await kernel.execute(cell_id, nb)
        nb.metadata["mlbox"] = outcome
        _write_atomic(nb, os.path.join(outbox, f"{cell_id}.ipynb"))
        say("done", id=cell_id, **{k: outcome[k] for k in ("status", "streamed")},
            **({"notebook": nb} if streamed else {}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mlbox-session", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where cells come in and go out")
    parser.add_argument("--workdir", required=True, help="the kernel's working directory")
    parser.add_argument("--idle", type=float, default=3600,
                        help="seconds without a cell before the runner stops (0: never)")
    args = parser.parse_args(argv)
    return asyncio.run(serve(args.dir, args.workdir, args.idle or None))


if __name__ == "__main__":
    sys.exit(main())

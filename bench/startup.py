"""A warm ``jupyter mlbox run`` of a trivial notebook against local nbclient, whole process
against whole process (issue 11 item 3): wall time and the host process's user CPU.

    python bench/startup.py [N]

The image is built first (not timed); then N runs of each, alternating, medians printed with
the ratio. ``jupyter execute`` is nbclient's own command.
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's user CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.monotonic() - started
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    folder = Path(tempfile.mkdtemp(prefix="mlbox-startup-"))
    path = folder / "trivial.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1 + 1)")]),
                   path)
    mlbox = [sys.executable, "-m", "jupyter_mlbox.cli", "run", str(path), "-q"]
    local = [str(Path(sys.executable).with_name("jupyter")), "execute", str(path),
             "--output", str(folder / "local.ipynb")]
    subprocess.run(mlbox, check=True, capture_output=True)  # build (or reuse) the image
    runs: dict[str, list[tuple[float, float]]] = {"mlbox": [], "nbclient": []}
    for _ in range(count):
        runs["mlbox"].append(timed(mlbox))
        runs["nbclient"].append(timed(local))
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    print(f"{count} runs each, medians: jupyter mlbox run {wall['mlbox']:.2f} s "
          f"({cpu['mlbox']:.2f} s user CPU on the host), jupyter execute (nbclient) "
          f"{wall['nbclient']:.2f} s ({cpu['nbclient']:.2f} s user CPU)")
    print(f"ratio mlbox / nbclient: {wall['mlbox'] / wall['nbclient']:.2f}× wall, "
          f"{cpu['mlbox'] / cpu['nbclient']:.2f}× host CPU")


if __name__ == "__main__":
    main()

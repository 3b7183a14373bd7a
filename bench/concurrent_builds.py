"""N concurrent `jupyter mlbox build --rebuild` of one new notebook: how many builds, how long.

    python bench/concurrent_builds.py [N] [SOURCE_DIR]

SOURCE_DIR (default: this checkout) is where the CLI runs from (first on sys.path), so an older jupyter_mlbox
(e.g. ``git archive HEAD~1 | tar -x -C /tmp/old``) runs side by side with this one. Removes
the image it made.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    source = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parents[1]).resolve()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"bench-{uuid.uuid4().hex[:8]}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import json")]), path)
        env = {**os.environ, "PYTHONPATH": str(source)}
        started = time.monotonic()
        processes = [subprocess.Popen([sys.executable, "-m", "jupyter_mlbox.cli", "build",
                                       str(path), "--rebuild"], env=env, cwd=source,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(count)]
        results = [process.communicate() for process in processes]
        seconds = time.monotonic() - started
    summaries = [err.strip().splitlines()[-1] if err.strip() else "?" for _, err in results]
    built = sum(s.startswith("built") for s in summaries)
    print(f"{source}: {count} concurrent builds of one notebook → {built} built, "
          f"{count - built} reused, {seconds:.1f} s wall")
    for tag in {out.strip().splitlines()[-1] for out, _ in results if out.strip()}:
        subprocess.run(["docker", "rmi", tag], capture_output=True)


if __name__ == "__main__":
    main()

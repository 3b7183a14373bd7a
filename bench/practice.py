"""Real notebooks nobody here wrote, through ``jupyter mlbox run``, as a user would run them.

For each notebook of the practice corpus (../shared/practice: fetch the repositories, then
materialize.sh TARGET MIRRORS), from the notebook's own folder and with the Python of a kernel
that has the notebooks' packages:
  1. local: execute it with nbclient in that kernel (does it run at all here?)
  2. mlbox: ``python -m jupyter_mlbox.cli run NB`` (does it run the same in a container?)
and print one row per notebook (ok / failed and the first line of why) and the totals: of the
notebooks that run locally, how many run in the container.

    python bench/practice.py --corpus /tmp/practice --python /tmp/practice-venv/bin/python \\
        [--ids pe-army,jdw-deap] [--offline-only] [--timeout 600]

Nothing is copied into the project; the executed notebooks go to a scratch folder. To measure
another version side by side, put its checkout first: ``PYTHONPATH=/path/to/old python …``.
"""
from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The harness talks to jupyter_mlbox only through its CLI, so it can measure any version of it
#: (PYTHONPATH=OTHER_CHECKOUT runs that one); hence no import of jupyter_mlbox here.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

SELECTED = Path(__file__).resolve().parents[2] / "shared" / "practice" / "selected.tsv"

LOCAL_RUN = r"""
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(nb, timeout=float(sys.argv[2]), kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
except Exception as err:
    print(f"{type(err).__name__}: " + (str(err).strip().splitlines() or [""])[-1][:200])
    sys.exit(1)
"""


def first_reason(text: str) -> str:
    """The line that says why: the error line (with the next one when it ends in ':'), else the
    last non-empty line; colour codes removed."""
    lines = [line.strip() for line in ANSI.sub("", text).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("error:"):
            if line.endswith(":") and index + 1 < len(lines):
                line = f"{line} {lines[index + 1]}"
            return line[:220]
    return (lines[-1] if lines else "")[:220]


def run(command: list[str], cwd: Path, timeout: float) -> tuple[bool, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout:.0f} s", time.monotonic() - started
    ok = done.returncode == 0
    return ok, "" if ok else first_reason(done.stdout.strip() or done.stderr), \
        time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="materialize.sh's TARGET")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python of the kernel the notebooks run in locally")
    parser.add_argument("--selected", type=Path, default=SELECTED)
    parser.add_argument("--ids", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--offline-only", action="store_true",
                        help="only notebooks selected.tsv marks as runnable offline")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args(argv)

    wanted = {i for i in args.ids.split(",") if i}
    with open(args.selected, newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t")
                if (not wanted or r["id"] in wanted)
                and (not args.offline_only or r["offline_guess"] == "yes")]
    scratch = Path(tempfile.mkdtemp(prefix="mlbox-practice-"))
    results = []
    print(f"{'id':16} {'local':7} {'mlbox':7} {'s':>6}  why")
    for row in rows:
        notebook = args.corpus / row["repo"].replace("/", "+") / row["path"]
        if not notebook.exists():
            print(f"{row['id']:16} missing {notebook}")
            continue
        local = (None, "", 0.0) if args.skip_local else run(
            [args.python, "-c", LOCAL_RUN, str(notebook), str(args.timeout),
             str(notebook.parent)], notebook.parent, args.timeout + 60)
        output = scratch / f"{row['id']}.mlbox.ipynb"
        mlbox = run([args.python, "-m", "jupyter_mlbox.cli", "run", notebook.name, "-o",
                     str(output), "--timeout", str(args.timeout), "-q"], notebook.parent,
                    args.timeout * 2 + 600)
        results.append((row["id"], local[0], mlbox[0]))
        state = {None: "-", True: "ok", False: "FAILED"}
        why = mlbox[1] or (f"(locally: {local[1]})" if local[0] is False else "")
        if local[0] is False and mlbox[1]:
            why = f"{mlbox[1]}  (locally: {local[1]})"
        print(f"{row['id']:16} {state[local[0]]:7} {state[mlbox[0]]:7} {mlbox[2]:6.0f}  {why}",
              flush=True)
    runs_locally = [r for r in results if r[1] is not False]
    reproduced = [r for r in runs_locally if r[2]]
    print(f"\n{len(results)} notebooks; {len(runs_locally)} run locally; "
          f"{len(reproduced)} of those run in the container "
          f"({len(reproduced)}/{len(runs_locally) or 1}); executed copies in {scratch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

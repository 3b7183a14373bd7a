"""Side-by-side measurements on one daemon, in one run (these machines are noisy).

1. Image size and cold build time: the jupyter_mlbox image vs the naive single-stage Dockerfile
   (FROM the same base, pip install the same pinned numpy/pandas/scikit-learn/matplotlib).
2. Warm ``run`` of an unchanged notebook: how many builds it makes (must be 0).
3. Round trip of a trivial notebook (fresh container, copy in, nbclient inside, copy out) vs
   executing it locally with nbclient.

Cold builds use ``nocache`` so neither side profits from the other's layers, and the package
cache (volume, venv images) is emptied first (make_cache_cold). Prints ratios.
Usage: .venv/bin/python bench/bench_images.py [--repeat N]
"""
from __future__ import annotations

import argparse
import io
import statistics
import tarfile
import time

from nbclient import NotebookClient

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.dockerfile import default_base_image
from jupyter_mlbox.core.engine import connect
from jupyter_mlbox.core.notebook import new_notebook_from_cells
from jupyter_mlbox.core.options import BuildOptions
from jupyter_mlbox.core.pip_settings import host_pip_settings
from jupyter_mlbox.core.run import run_notebook

CELLS = ["import numpy, pandas, sklearn, matplotlib"]


def naive_context(requirements: list[str], base: str, ca: bytes | None) -> bytes:
    """The Dockerfile people write first: one stage, pip install, CA copied in to get through."""
    lines = [f"FROM {base}", "RUN python3 -m venv /opt/venv"]
    files = {}
    if ca:
        files["ca.pem"] = ca
        lines += ["COPY ca.pem /etc/pip-ca.pem", "ENV PIP_CERT=/etc/pip-ca.pem"]
    lines.append("RUN /opt/venv/bin/pip install " + " ".join(requirements))
    files["Dockerfile"] = ("\n".join(lines) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_cache_cold(engine) -> None:
    """No package cache volume, no tools, stage or venv image: the next build starts from the
    base image alone, as on a fresh daemon."""
    from jupyter_mlbox.core.dockerfile import BUILD_STEP_LABEL
    from jupyter_mlbox.core.package_cache import CACHE_VOLUME

    for attrs in engine.list_images(BUILD_STEP_LABEL):
        if (attrs.get("Config") or {}).get("Labels", {}).get(BUILD_STEP_LABEL):
            for tag in attrs.get("RepoTags") or []:
                engine.remove_image(tag, force=True)
    engine.remove_volume(CACHE_VOLUME)


def largest(tag: str, count: int = 12) -> list[tuple[str, float]]:
    """The biggest entries of the image's site-packages, and the base system, in MB."""
    import subprocess

    script = ("cd /opt/venv/lib/python3*/site-packages && du -sk * | sort -rn | head -n "
              f"{count}; echo; du -skx / --exclude=/opt/venv 2>/dev/null | tail -1")
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh",
                          tag, "-c", script], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        if line.strip():
            size, name = line.split(None, 1)
            rows.append(("(base system, outside the venv)" if name == "/" else name,
                         int(size) / 1024))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5, help="round-trip repetitions")
    args = parser.parse_args()
    engine = connect()
    pip = host_pip_settings()
    plan = plan_image(CELLS, notebook_name="bench.ipynb", search_dir=None, pip=pip)
    requirements = list(plan.spec.requirements)
    print(f"base {default_base_image()}; requirements: {' '.join(requirements)}")

    make_cache_cold(engine)
    started = time.monotonic()
    ours = build_image(engine, plan, rebuild=True)
    ours_seconds = time.monotonic() - started

    naive_tag = "mlbox-bench/naive:latest"
    started = time.monotonic()
    engine.build(naive_context(requirements, default_base_image(),
                               pip.cert_file.read_bytes() if pip.cert_file else None),
                 naive_tag, on_line=lambda line: None, on_step=lambda i, n, t: None,
                 nocache=True)
    naive_seconds = time.monotonic() - started
    naive_size = engine.image_attrs(naive_tag)["Size"]
    print(f"image size : mlbox {ours.size / 1e6:7.0f} MB | naive {naive_size / 1e6:7.0f} MB "
          f"| ratio {ours.size / naive_size:.2f}")
    print(f"cold build : mlbox {ours_seconds:7.1f} s  | naive {naive_seconds:7.1f} s  "
          f"| ratio {ours_seconds / naive_seconds:.2f}")
    kept = build_image(engine, plan_image(CELLS, notebook_name="bench.ipynb", search_dir=None,
                                          pip=pip, options=BuildOptions(keep_tests=True)))
    print(f"with --keep-tests: {kept.size / 1e6:7.0f} MB | ratio to naive "
          f"{kept.size / naive_size:.2f} (the test suites pruning leaves out: "
          f"{(kept.size - ours.size) / 1e6:.0f} MB)")
    print("where the bytes are (MB):")
    for name, size in largest(ours.tag):
        print(f"  {size:7.1f}  {name}")

    builds = []
    warm = build_image(engine, plan_image(CELLS, notebook_name="bench.ipynb", search_dir=None,
                                          pip=pip),
                       on_event=lambda e: builds.append(e) if e.kind == "step" else None)
    print(f"warm rebuild of an unchanged notebook: built={warm.built}, build steps run: "
          f"{len(builds)}")

    trivial = ["x = 1 + 1\nprint(x)"]
    tiny = plan_image(trivial, notebook_name="trivial.ipynb", search_dir=None, pip=pip)
    build_image(engine, tiny)
    local, remote = [], []
    for _ in range(args.repeat):  # interleaved, so drift hits both sides alike
        nb = new_notebook_from_cells(trivial)
        started = time.monotonic()
        NotebookClient(nb, kernel_name="python3").execute()
        local.append(time.monotonic() - started)
        started = time.monotonic()
        run_notebook(engine, tiny.tag, new_notebook_from_cells(trivial))
        remote.append(time.monotonic() - started)
    lm, rm = statistics.median(local), statistics.median(remote)
    print(f"trivial notebook (median of {args.repeat}): local nbclient {lm:.2f} s | "
          f"container round trip {rm:.2f} s | ratio {rm / lm:.2f}")
    engine.remove_image(naive_tag, force=True)


if __name__ == "__main__":
    main()

"""The package cache (issue 11 item 1), side by side with the naive build, in one run.

1. Cold: the cache volume, the tools, stage and venv images removed; notebook A (numpy, pandas,
   scikit-learn, matplotlib and the runtime) built by jupyter_mlbox, then the naive
   single-stage Dockerfile of the same pins (bench_images.naive_context), both ``nocache``.
2. Warm: notebook B imports what A does plus tqdm and requests (its requirements overlap A's by
   more than 80 %); built by jupyter_mlbox after A (its venv grows from A's, the cache volume
   has A's downloads), then the naive build of B's pins, ``nocache``.
3. Disk: what B's image adds to A's (it shares A's venv layers), where two naive images share
   nothing but the base.

Prints both ratios against the naive build of the same requirements.
Usage: .venv/bin/python bench/package_cache.py
"""
from __future__ import annotations

import time

from bench_images import CELLS, make_cache_cold, naive_context

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.dockerfile import default_base_image
from jupyter_mlbox.core.engine import connect
from jupyter_mlbox.core.package_cache import CACHE_VOLUME
from jupyter_mlbox.core.pip_settings import host_pip_settings

WARM_CELLS = [CELLS[0] + ", tqdm, requests"]


def naive_seconds(engine, requirements, pip) -> float:
    tag = "mlbox-bench/naive-cache:latest"
    started = time.monotonic()
    engine.build(naive_context(requirements, default_base_image(),
                               pip.cert_file.read_bytes() if pip.cert_file else None),
                 tag, on_line=lambda line: None, on_step=lambda i, n, t: None, nocache=True)
    seconds = time.monotonic() - started
    engine.remove_image(tag, force=True)
    return seconds


def main() -> None:
    engine = connect()
    pip = host_pip_settings()
    cold = plan_image(CELLS, notebook_name="bench-cache-a.ipynb", search_dir=None, pip=pip)
    warm = plan_image(WARM_CELLS, notebook_name="bench-cache-b.ipynb", search_dir=None, pip=pip)
    a, b = set(cold.spec.requirements), set(warm.spec.requirements)
    print(f"A: {len(a)} pins; B: {len(b)} pins, {len(a & b) / len(b):.0%} of them in A")

    make_cache_cold(engine)
    for tag in (cold.tag, warm.tag):
        if engine.image_exists(tag):
            engine.remove_image(tag, force=True)

    started = time.monotonic()
    build_image(engine, cold, rebuild=True)
    ours_cold = time.monotonic() - started
    naive_cold = naive_seconds(engine, list(cold.spec.requirements), pip)
    print(f"cold cache : mlbox {ours_cold:6.1f} s | naive {naive_cold:6.1f} s "
          f"| ratio {ours_cold / naive_cold:.2f} (target <= 1.0)")

    started = time.monotonic()
    build_image(engine, warm)
    ours_warm = time.monotonic() - started
    naive_warm = naive_seconds(engine, list(warm.spec.requirements), pip)
    print(f"warm cache : mlbox {ours_warm:6.1f} s | naive {naive_warm:6.1f} s "
          f"| ratio {ours_warm / naive_warm:.2f} (target <= 0.3)")
    print(f"cache volume: {(engine.volume_size(CACHE_VOLUME) or 0) / 1e6:.0f} MB")
    size_a = engine.image_attrs(cold.tag)["Size"]
    size_b = engine.image_attrs(warm.tag)["Size"]
    shared = set(engine.image_attrs(cold.tag)["RootFS"]["Layers"])
    grown = [layer for layer in engine.image_attrs(warm.tag)["RootFS"]["Layers"]
             if layer not in shared]
    print(f"disk: A {size_a / 1e6:.0f} MB, B {size_b / 1e6:.0f} MB; B shares all but "
          f"{len(grown)} of its layers with A and adds about {(size_b - size_a) / 1e6:.0f} MB "
          f"to the disk (two naive images share only the base)")


if __name__ == "__main__":
    main()

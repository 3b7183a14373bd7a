"""Issue 14 §3 on the real daemon: notebooks with the same requirements share every layer,
concurrent requests for one tag make one build, and cancelling one build never touches a
concurrent one's containers."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.venv_recipe import venv_recipe
from jupyter_mlbox.core.events import CancelToken
from jupyter_mlbox.errors import UserCancelledError

from ..conftest import write_notebook

pytestmark = pytest.mark.docker


def _plan(name: str, tmp_path, pip=()):
    from jupyter_mlbox.core.options import BuildOptions

    return plan_image(["import json"], notebook_name=name, search_dir=tmp_path,
                      options=BuildOptions(pip=tuple(pip)))


def _remove(engine, *tags):
    for tag in tags:
        try:
            engine.remove_image(tag)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_notebooks_with_the_same_requirements_share_every_layer(tmp_path, engine):
    """Two notebooks, different names, the same imports: the second build runs nothing (it
    reuses the venv image the first made, and every final-stage step is a layer-cache hit) and
    both images have exactly the same layers."""
    unique = uuid.uuid4().hex[:8]
    first, second = (_plan(f"share-{unique}-{side}.ipynb", tmp_path) for side in "ab")
    assert first.tag != second.tag  # the tag still names the notebook
    logs: dict[str, list[str]] = {"a": [], "b": []}
    try:
        for side, plan in (("a", first), ("b", second)):
            build_image(engine, plan, on_event=lambda e, side=side: logs[side].append(
                f"{e.kind}: {e.message}"))
        assert any(f"the venv {venv_recipe(first.spec, first.context).tag} is there already" in line
                   for line in logs["b"]), logs["b"]
        assert not [line for line in logs["b"] if "installing the requirements" in line]
        named = [i for i, line in enumerate(logs["b"]) if "io.jupyter-mlbox.notebook=" in line]
        assert named, logs["b"]  # the final stage's LABEL: the first step that differs
        assert not [line for line in logs["b"][:named[0]] if "Running in" in line], logs["b"]
        layers = [engine.image_attrs(plan.tag)["RootFS"]["Layers"] for plan in (first, second)]
        assert layers[0] == layers[1]
    finally:
        _remove(engine, first.tag, second.tag)


def test_concurrent_cli_builds_of_one_new_notebook_make_one_build(tmp_path, engine):
    """Three `jupyter mlbox build --rebuild` of the same notebook at once: one builds, the two
    others wait for it and reuse its image."""
    path = write_notebook(tmp_path / f"conc-{uuid.uuid4().hex[:8]}.ipynb", ["import json"])
    processes = [subprocess.Popen([sys.executable, "-m", "jupyter_mlbox.cli", "build",
                                   str(path), "--rebuild"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    results = [process.communicate(timeout=600) for process in processes]
    tags = {out.strip().splitlines()[-1] for out, _ in results}
    try:
        assert all(process.returncode == 0 for process in processes), results
        summaries = [err.strip().splitlines()[-1] for _, err in results]
        assert sorted(s.split()[0] for s in summaries) == ["built", "reused", "reused"], \
            summaries
        assert sum("waiting for a concurrent build" in err for _, err in results) == 2, results
        assert len(tags) == 1
    finally:
        _remove(engine, *tags)


def test_cancelling_one_build_leaves_a_concurrent_build_of_the_same_notebook_alone(
        tmp_path, engine):
    """Two builds of one context at once (below the build lock: as two daemons' clients, or
    two hosts, would); the first is cancelled in its dependency step, the second completes."""
    from jupyter_mlbox.core.docker_engine import DockerEngine

    plan = _plan(f"cancel-one-{uuid.uuid4().hex[:8]}.ipynb", tmp_path)
    context = plan.context.tar_bytes()
    cancel = CancelToken()
    outcome: dict = {}
    second_engine = DockerEngine.connect()
    second_tag = plan.tag + "b"

    def on_step(number, total, text, who):
        if who == "a" and "uv pip install" in text:
            threading.Timer(3, cancel.cancel).start()  # both steps are running by then

    def build(who, tag, token):
        try:
            outcome[who] = (engine if who == "a" else second_engine).build(
                context, tag, on_line=lambda line: None,
                on_step=lambda n, t, text: on_step(n, t, text, who),
                cancel=token, nocache=True, step_label=plan.context.step_label)
        except BaseException as err:  # noqa: BLE001 - inspected below
            outcome[who] = err

    threads = [threading.Thread(target=build, args=("a", plan.tag, cancel)),
               threading.Thread(target=build, args=("b", second_tag, None))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert isinstance(outcome["a"], UserCancelledError), outcome
        assert isinstance(outcome["b"], str) and outcome["b"].startswith("sha256:"), outcome
        assert engine.image_exists(second_tag) and not engine.image_exists(plan.tag)
    finally:
        _remove(engine, plan.tag, second_tag)


def test_a_cancelled_waiter_stops_waiting_and_the_build_it_waited_for_goes_on(tmp_path,
                                                                             engine):
    plan = _plan(f"waiter-{uuid.uuid4().hex[:8]}.ipynb", tmp_path)
    events: list[str] = []
    builder_done: dict = {}
    waiter_cancel = CancelToken()

    def builder():
        builder_done["result"] = build_image(engine, plan, rebuild=True)

    thread = threading.Thread(target=builder)
    thread.start()
    try:
        time.sleep(2)  # the builder holds the lock
        def on_event(event):
            events.append(event.message)
            if "waiting for a concurrent build" in event.message:
                waiter_cancel.cancel()
        with pytest.raises(UserCancelledError, match="waiting"):
            build_image(engine, plan, rebuild=True, on_event=on_event, cancel=waiter_cancel)
        thread.join(timeout=600)
        assert builder_done["result"].built and engine.image_exists(plan.tag)
    finally:
        thread.join(timeout=600)
        _remove(engine, plan.tag)

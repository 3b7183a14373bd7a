"""core.run and core.build on the in-memory engine: how a container's end becomes a result or
an error, the --gpus auto fallback, image reuse. No daemon; tests/integration does the same
against a real one."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.dockerfile import MANAGED_LABEL, NOTEBOOK_LABEL, WORKDIR
from jupyter_mlbox.core.events import CancelToken, EventKind
from jupyter_mlbox.core.options import GpuRequest, RunOptions
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.run import OUTPUT_DIR, RunResult, run_notebook
from jupyter_mlbox.core.task import CANCELLED, Task
from jupyter_mlbox.errors import (BuildError, CellExecutionError, ContainerExitError,
                                  GPUUnavailableError, ImageNotFoundError, KernelDiedError,
                                  RunTimeoutError, UserCancelledError)

from ..conftest import notebook_node
from .memory_engine import Behaviour, MemoryEngine

IMAGE = "mlbox/t:1"


@pytest.fixture
def memory_engine():
    return MemoryEngine(images=(IMAGE,))


@pytest.fixture
def nb():
    return notebook_node([("x = 1", ["parameters"]), "print(x)", "raise ValueError('boom')"])


def nothing_left(engine: MemoryEngine) -> None:
    assert engine.containers == {}, "a container was left behind"
    assert engine.removed() == [c.handle.id for c in engine.created()]


def run(engine, nb, **options):
    events = []
    try:
        return run_notebook(engine, IMAGE, nb, name="n.ipynb", options=RunOptions(**options),
                            on_event=events.append), events
    finally:
        nothing_left(engine)


# --- how a container's end maps to the result or the error -----------------------------------------

def test_success_returns_the_executed_notebook_and_sends_it_in_with_its_options(memory_engine, nb):
    result, events = run(memory_engine, nb, timeout=30, parameters={"x": 5}, env={"A": "b"},
                         memory="1g")
    assert isinstance(result, RunResult)
    ran = result.notebook.metadata["mlbox"]  # the runner's outcome, then where it ran
    assert ran["status"] == "ok" and ran["host"] == "memory://" and ran["image"] == "mlbox/t:1"
    assert ran["image_id"].startswith("sha256:") and ran["gpu"] is False
    assert [c.source for c in result.notebook.cells] == [c.source for c in nb.cells]
    assert result.gpu is False and result.seconds >= 0
    [container] = memory_engine.created()
    assert container.image == IMAGE
    assert container.command[2:4] == ["n.ipynb", f"{OUTPUT_DIR}/n.ipynb"]
    assert container.command[container.command.index("--cell-timeout") + 1] == "30"
    assert json.loads(container.command[container.command.index("--params-json") + 1]) \
        == {"x": 5}
    assert container.environment == {"A": "b"} and container.options["memory"] == "1g"
    labels = dict(container.handle.labels)
    assert {MANAGED_LABEL: "true", NOTEBOOK_LABEL: "n.ipynb"}.items() <= labels.items()
    assert labels["io.jupyter-mlbox.owner-pid"] == str(__import__("os").getpid())  # orphans.py
    assert nbformat.reads(container.files[f"{WORKDIR}/n.ipynb"].decode(), as_version=4) == nb
    assert [(e.phase, e.kind) for e in events if e.kind == EventKind.PHASE] == [
        ("starting", "phase"), ("running", "phase"), ("collecting", "phase"), ("done", "phase")]


def test_files_go_in_and_collected_files_come_back(memory_engine, nb):
    memory_engine.next_run = Behaviour(files={"model.pkl": b"weights"})
    result = run_notebook(memory_engine, IMAGE, nb, name="n.ipynb",
                          files={"data/x.csv": b"a\n1\n"},
                          collect=["model.pkl", "not-written.txt"])
    [container] = memory_engine.created()
    assert container.files[f"{WORKDIR}/data/x.csv"] == b"a\n1\n"
    assert result.files == {"model.pkl": b"weights"}
    nothing_left(memory_engine)


def test_cell_error_is_a_cell_execution_error_with_the_failed_cell_and_image(memory_engine, nb):
    memory_engine.next_run = Behaviour.cell_error(
        2, "ValueError", "boom", "\x1b[31mTraceback\x1b[0m\nValueError: boom")
    with pytest.raises(CellExecutionError) as caught:
        run(memory_engine, nb)
    err = caught.value
    assert type(err) is CellExecutionError
    assert err.failed_cell == 2 and err.image == IMAGE
    assert (err.ename, err.evalue) == ("ValueError", "boom")
    assert str(err).startswith("cell 3 raised ValueError: boom")  # counted from 1 for users
    assert "\x1b" not in str(err) and "\x1b" not in err.traceback
    assert err.notebook.metadata["mlbox"]["status"] == "error"


def test_kernel_death_is_a_kernel_died_error(memory_engine, nb):
    memory_engine.next_run = Behaviour.kernel_died(1, "Kernel died unexpectedly")
    with pytest.raises(KernelDiedError, match="kernel died while executing cell 2") as caught:
        run(memory_engine, nb)
    assert caught.value.failed_cell == 1 and caught.value.image == IMAGE
    assert caught.value.notebook is not None


def test_out_of_memory_is_a_kernel_died_error_that_names_the_limit(memory_engine, nb):
    memory_engine.next_run = Behaviour.kernel_died(1, oom_killed=True)
    with pytest.raises(KernelDiedError, match="out of memory") as caught:
        run(memory_engine, nb, memory="96m")
    assert "limit 96m" in str(caught.value) and "--memory" in str(caught.value)


def test_a_container_that_outlives_its_timeout_is_a_run_timeout_error(memory_engine, nb):
    memory_engine.next_run = Behaviour(hangs=True)
    with pytest.raises(RunTimeoutError, match="timeout of 5 s"):
        run(memory_engine, nb, timeout=5)
    assert memory_engine.created()[0].outcome.timed_out


def test_a_cell_timeout_in_the_runner_is_a_run_timeout_error(memory_engine, nb):
    memory_engine.next_run = Behaviour.cell_timeout(1)
    with pytest.raises(RunTimeoutError, match="container was removed"):
        run(memory_engine, nb, timeout=5)


def test_exit_137_without_a_notebook_is_a_container_exit_error_saying_killed(memory_engine, nb):
    memory_engine.next_run = Behaviour.killed(output="step one\nKilled\n")
    with pytest.raises(ContainerExitError, match=r"status 137 \(killed\)") as caught:
        run(memory_engine, nb)
    assert caught.value.exit_code == 137
    assert "Killed" in caught.value.logs and "Killed" in str(caught.value)


def test_a_runner_that_cannot_start_is_a_container_exit_error_with_its_output(memory_engine, nb):
    memory_engine.next_run = Behaviour(4, None, output="mlbox-runner: cannot read n.ipynb")
    with pytest.raises(ContainerExitError, match="status 4;") as caught:
        run(memory_engine, nb)
    assert "killed" not in str(caught.value)
    assert "cannot read n.ipynb" in str(caught.value)


def test_exit_0_without_the_executed_notebook_is_not_a_success(memory_engine, nb):
    memory_engine.next_run = Behaviour(0, None)
    with pytest.raises(ContainerExitError, match="status 0"):
        run(memory_engine, nb)


def test_cancel_while_running_stops_the_task_and_removes_the_container(memory_engine, nb):
    memory_engine.next_run = Behaviour(hangs=True)
    task = Task(lambda emit, cancel: run_notebook(memory_engine, IMAGE, nb, on_event=emit,
                                                  cancel=cancel), follow=False).start()
    for _ in range(200):
        if task.progress.phase == "running":
            break
        task.wait(0.01)
    assert task.progress.phase == "running" and memory_engine.containers
    task.cancel()
    assert task.wait(10)
    assert task.status == CANCELLED and isinstance(task.error, UserCancelledError)
    nothing_left(memory_engine)


def test_a_missing_image_fails_before_any_container_exists(nb):
    engine = MemoryEngine()
    with pytest.raises(ImageNotFoundError):
        run_notebook(engine, IMAGE, nb, cancel=CancelToken())
    assert engine.calls == []


# --- GPUs ---------------------------------------------------------------------------------------

def test_gpus_auto_without_support_falls_back_to_the_cpu_and_says_so(memory_engine, nb):
    result, events = run(memory_engine, nb, gpus="auto")
    assert result.gpu is False
    first, second = memory_engine.created()
    assert first.gpus == GpuRequest("auto") and second.gpus == GpuRequest()
    infos = [e.message for e in events if e.kind == EventKind.INFO]
    assert "no GPU support on this Docker daemon: running on CPU" in infos
    assert events[-1].message.endswith("on CPU")


def test_gpus_all_without_support_raises_and_removes_the_container(memory_engine, nb):
    with pytest.raises(GPUUnavailableError, match="NVIDIA Container Toolkit"):
        run(memory_engine, nb, gpus="all")
    assert len(memory_engine.created()) == 1


@pytest.mark.parametrize("gpus", ["auto", "all", "device=0"])
def test_gpus_with_support_run_on_the_gpu(nb, gpus):
    engine = MemoryEngine(gpu=True, images=(IMAGE,))
    result, events = run(engine, nb, gpus=gpus)
    assert result.gpu is True
    [container] = engine.created()
    assert container.gpus == GpuRequest.parse(gpus)
    assert events[-1].message.endswith("on GPU")
    assert ("GPU support found: running with GPUs" in [e.message for e in events]) \
        == (gpus == "auto")


# --- building -------------------------------------------------------------------------------------

@pytest.fixture
def plan(tmp_path: Path):
    return plan_image(["import json"], notebook_name="n.ipynb", search_dir=tmp_path,
                      pip=PipSettings())


def test_build_builds_once_then_reuses_the_tag(plan):
    engine = MemoryEngine(images=(plan.spec.base_image,))
    events = []
    first = build_image(engine, plan, on_event=events.append)
    assert first.built is True and first.tag == plan.tag and engine.image_exists(plan.tag)
    assert engine.builds == [{"tag": plan.tag, "context": plan.context.tar_bytes(),
                              "nocache": False}]
    steps = [e for e in events if e.kind == EventKind.STEP]
    assert steps and steps[0].step == 1 and steps[-1].step == steps[-1].total
    labels = engine.image_attrs(plan.tag)["Config"]["Labels"]
    assert labels[NOTEBOOK_LABEL] == "n.ipynb"

    events.clear()
    second = build_image(engine, plan, on_event=events.append)
    assert second.built is False and second.tag == first.tag
    assert second.size == engine.image_attrs(plan.tag)["Size"]
    assert len(engine.builds) == 1
    assert [e.message for e in events] == [f"image {plan.tag} is up to date; nothing to build"]
    assert second.summary().startswith(f"reused {plan.tag}")


def test_rebuild_builds_again_without_the_cache(plan):
    engine = MemoryEngine(images=(plan.spec.base_image,))
    build_image(engine, plan)
    again = build_image(engine, plan, rebuild=True)
    assert again.built is True
    assert [b["nocache"] for b in engine.builds] == [False, True]


def test_a_missing_base_image_is_pulled_first(plan):
    engine = MemoryEngine()
    engine.registry[plan.spec.base_image] = {"Id": "sha256:base", "Size": 1, "RepoTags": [],
                                             "Config": {"Labels": {}}}
    events = []
    assert build_image(engine, plan, on_event=events.append).built
    assert f"pulling base image {plan.spec.base_image}" in [e.message for e in events]


def test_an_unpullable_base_image_builds_nothing(plan):
    engine = MemoryEngine()
    with pytest.raises(ImageNotFoundError, match="cannot be pulled"):
        build_image(engine, plan)
    assert engine.builds == [] and not engine.image_exists(plan.tag)


def test_a_failed_build_leaves_no_tag_and_carries_its_step(plan):
    engine = MemoryEngine(images=(plan.spec.base_image,))
    engine.build_error = "pip exploded"
    with pytest.raises(BuildError, match="pip exploded") as caught:
        build_image(engine, plan)
    assert caught.value.step.startswith("FROM ")
    assert not engine.image_exists(plan.tag)


def test_gpus_seen_reads_nvidia_smi_only_when_a_gpu_was_asked_for(monkeypatch):
    import subprocess

    from jupyter_mlbox.core.container_runner import gpus_seen

    def smi(stdout, returncode=0):
        return lambda *a, **k: subprocess.CompletedProcess(a, returncode, stdout, "no driver")

    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    assert gpus_seen(smi("x")) is None
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "all")
    assert gpus_seen(smi("NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n"
                         "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n")) == [
        {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB"}] * 2
    assert gpus_seen(smi("", returncode=9)) == {"error": "nvidia-smi failed: no driver"}

    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "nvidia-smi")
    assert "could not run" in gpus_seen(missing)["error"]


def test_container_lines_become_output_events_and_log_lines():
    from jupyter_mlbox.core.container_runner import MARK
    from jupyter_mlbox.core.run import container_line

    events = []
    on_line = container_line(events.append)
    on_line("plain runner chatter")
    on_line(MARK + json.dumps({"event": "output", "cell": 2, "output": {
        "output_type": "stream", "name": "stdout", "text": "epoch 1\n"}}))
    on_line(MARK + json.dumps({"event": "clear", "cell": 2, "wait": True}))
    on_line(MARK + "{not json")
    assert [(e.kind.value, e.message, e.step) for e in events] == [
        ("log", "plain runner chatter", None), ("output", "epoch 1", 2), ("output", "", 2)]
    assert events[2].output == {"output_type": "clear_output", "wait": True}


def test_live_outputs_leave_the_result_for_the_end_or_everything_when_one_was_lost():
    from jupyter_mlbox.core.events import ProgressEvent
    from jupyter_mlbox.kernel.display import LiveOutputs

    printed = {"output_type": "stream", "name": "stdout", "text": "x\n"}
    result = {"output_type": "execute_result", "data": {"text/plain": "1"}, "metadata": {},
              "execution_count": 1}
    nb = nbformat.v4.new_notebook(metadata={"mlbox": {"streamed": {"1": 1}}})
    live = LiveOutputs(1)
    assert live.handle(ProgressEvent("running", "output", step=0, output=printed))  # setup cell
    assert live.shown == 0
    assert not live.handle(ProgressEvent("running", "log", "chatter"))
    assert live.rest(nb, [printed, result]) == [printed, result]  # the cell's line was lost
    live.shown = 1
    assert live.rest(nb, [printed, result]) == [result]

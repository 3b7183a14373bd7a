"""``%%mlbox --session`` in a real kernel against the real daemon."""
from __future__ import annotations

import time

import pytest

from jupyter_mlbox.core.session import list_sessions

from .helpers import LiveKernel, error_of, text_of

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]


def results(messages):
    return [m["content"]["data"]["text/plain"] for m in messages
            if m["msg_type"] == "execute_result"]


@pytest.fixture
def kernel(tmp_path):
    kernel = LiveKernel(tmp_path)
    assert error_of(kernel.run("%load_ext jupyter_mlbox")) is None
    yield kernel
    if kernel.km.is_alive():  # as a user's kernel ends: its atexit stops its sessions
        kernel.km.shutdown_kernel(now=False)
    kernel.close()


def test_state_streams_and_out_across_session_cells(kernel):
    first = kernel.run("%%mlbox --session -q\nx = 41\nprint('in the container')")
    assert error_of(first) is None, error_of(first)
    assert "in the container\n" in text_of(first)
    assert results(kernel.run("%%mlbox --session\nx + 1")) == ["42"]
    assert error_of(kernel.run("%%mlbox --session --out y\ny = x * 2")) is None
    assert results(kernel.run("y")) == ["82"]  # --out brought it back here
    kernel.run("z = 100")
    assert results(kernel.run("%%mlbox --session --in z\nz + x")) == ["141"]  # --in sent it
    assert "kernel\t" in text_of(kernel.run("%mlbox session list"))


def test_interrupt_keeps_the_session_and_its_state(kernel):
    kernel.run("%%mlbox --session -q\nx = 7")
    msg_id = kernel.submit("%%mlbox --session\nimport time\nfor i in range(600):\n"
                           "    print(i, flush=True)\n    time.sleep(0.1)")
    seen = []
    for message in kernel.messages(msg_id, 120):
        seen.append(message)
        if message["msg_type"] == "stream" and "2\n" in message["content"]["text"]:
            kernel.interrupt()  # live output arrived before the cell ended
    assert "KeyboardInterrupt" in "".join(error_of(seen)["traceback"])
    assert "599" not in text_of(seen)
    assert results(kernel.run("%%mlbox --session\nx")) == ["7"]


def test_dead_kernel_is_said_and_the_next_cell_is_told_state_was_lost(kernel):
    kernel.run("%%mlbox --session -q\nx = 7")
    died = error_of(kernel.run("%%mlbox --session\nimport os\nos._exit(1)"))
    assert died["ename"] == "KernelDiedError" and "fresh kernel" in died["evalue"]
    after = kernel.run("%%mlbox --session\n'x' in dir()")
    assert results(after) == ["False"]
    assert "state of earlier cells is lost" in text_of(after, "stderr")


def test_stop_and_kernel_shutdown_remove_the_session_containers(engine, kernel):
    kernel.run("%%mlbox --session one -q\n1")
    kernel.run("%%mlbox --session two -q\n2")
    pid = str(kernel.km.provisioner.process.pid)
    mine = lambda: {s.name for s in list_sessions(engine) if s.owner_pid == pid}  # noqa: E731
    assert mine() == {"one", "two"}
    assert "stopped session 'one'" in text_of(kernel.run("%mlbox session stop one"))
    assert mine() == {"two"}
    kernel.km.shutdown_kernel(now=False)  # a clean shutdown: atexit stops what is left
    deadline = time.monotonic() + 60
    while mine() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mine() == set()


def test_a_killed_kernel_leaves_no_session_behind(engine, kernel):
    """SIGKILL: no atexit; the runner sees its stdin close and the container removes itself."""
    kernel.run("%%mlbox --session -q\n1")
    pid = str(kernel.km.provisioner.process.pid)
    assert [s.name for s in list_sessions(engine) if s.owner_pid == pid] == ["kernel"]
    kernel.km.shutdown_kernel(now=True)
    deadline = time.monotonic() + 60
    while any(s.owner_pid == pid for s in list_sessions(engine)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(s.owner_pid == pid for s in list_sessions(engine))


def test_a_cell_needing_a_package_the_image_lacks_is_told_before_it_runs(kernel):
    """numpy is in this kernel's environment, not in the image of a session started with a
    stdlib cell: the cell is refused with the package and the fix, and after the restart the
    next session cell rebuilds with it."""
    kernel.run("%%mlbox --session -q\nx = 7")
    cell = "%%mlbox --session -q\nimport numpy as np\nint(np.arange(3).sum())"
    refused = error_of(kernel.run(cell))
    assert refused["ename"] == "RequirementError", refused
    assert "imports numpy, which the session 'kernel' image lacks" in refused["evalue"]
    assert "%mlbox session restart" in refused["evalue"]
    assert "ModuleNotFoundError" not in "".join(refused["traceback"])
    assert "restarting session 'kernel'" in text_of(kernel.run("%mlbox session restart"))
    rebuilt = kernel.run(cell)
    assert error_of(rebuilt) is None, error_of(rebuilt)
    assert results(rebuilt) == ["3"]


def test_a_session_stopped_from_outside_is_said_when_the_next_cell_starts_afresh(engine,
                                                                                 kernel):
    from jupyter_mlbox.core.session import stop_sessions

    kernel.run("%%mlbox --session outside -q\nx = 7")
    pid = str(kernel.km.provisioner.process.pid)
    [mine] = [s for s in list_sessions(engine) if s.owner_pid == pid]
    stop_sessions(engine, mine.key)  # as `jupyter mlbox sessions stop KEY` or the panel does
    after = kernel.run("%%mlbox --session outside -q\n'x' in dir()")
    assert results(after) == ["False"]
    said = text_of(after, "stderr")
    assert "session 'outside' had ended" in said and "earlier cells is lost" in said, said


def test_idle_sets_how_long_a_session_waits_and_its_end_is_said(engine, kernel):
    kernel.run("%%mlbox --session idler --idle 0.03 -q\nx = 7")  # 1.8 s without a cell
    pid = str(kernel.km.provisioner.process.pid)
    [mine] = [s for s in list_sessions(engine) if s.owner_pid == pid]
    assert mine.describe()["idle_timeout_s"] == 1.8
    deadline = time.monotonic() + 60
    while any(s.owner_pid == pid for s in list_sessions(engine)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(s.owner_pid == pid for s in list_sessions(engine))
    after = kernel.run("%%mlbox --session idler -q\n'x' in dir()")
    assert results(after) == ["False"]
    assert "session 'idler' had ended (it was idle for 1.8 s)" in text_of(after, "stderr")

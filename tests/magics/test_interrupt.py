"""Interrupting the kernel (■ / Ctrl-C) during a %%mlbox build or run: the work is cancelled,
no container is left, and the kernel stays usable."""
from __future__ import annotations

import time

import nbformat
import pytest

from .helpers import COMMON_IMPORTS, LiveKernel, error_of, text_of

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]


@pytest.fixture
def kernel(tmp_path):
    live = LiveKernel(tmp_path)
    try:
        assert error_of(live.run("%load_ext jupyter_mlbox")) is None
        assert error_of(live.run(COMMON_IMPORTS)) is None
        yield live
    finally:
        live.close()


def _interrupt_when(kernel: LiveKernel, code: str, marker: str, delay: float) -> tuple[list, float]:
    """Run ``code``; once ``marker`` shows in its stderr wait ``delay`` s and interrupt.
    Returns every message of the cell and how long the cell took to end after the interrupt."""
    msg_id = kernel.submit(code)
    messages, interrupted_at = [], None
    for msg in kernel.messages(msg_id, timeout=600):
        messages.append(msg)
        if interrupted_at is None and marker in text_of(messages, "stderr"):
            time.sleep(delay)
            kernel.interrupt()
            interrupted_at = time.monotonic()
    assert interrupted_at is not None, text_of(messages, "stderr")
    return messages, time.monotonic() - interrupted_at


def _assert_kernel_usable(kernel: LiveKernel) -> None:
    messages = kernel.run("print(40 + 2)", timeout=60)
    assert error_of(messages) is None and text_of(messages) == "42\n"


def test_interrupt_during_build_stops_it(kernel, engine, shared_image):
    # --rebuild with an extra requirement: a real build; interrupted in its install container
    # (a few seconds with the package cache: at once)
    code = "%%mlbox --rebuild --pip 'six>=1.16'\nprint('never runs')"
    messages, took = _interrupt_when(kernel, code, "installing the requirements", delay=0.2)
    error = error_of(messages)
    assert error is not None and error["ename"] == "KeyboardInterrupt"
    assert "never runs" not in text_of(messages)
    assert took < 60, f"the build took {took:.0f} s to stop"
    assert "interrupted" in text_of(messages, "stderr")
    _assert_kernel_usable(kernel)


def test_interrupt_during_run_removes_the_container(kernel, engine, shared_image):
    code = ("%%mlbox\nimport time\nprint('started', flush=True)\ntime.sleep(120)\n"
            "print('not reached')")
    messages, took = _interrupt_when(kernel, code, "running: executing", delay=2.0)
    error = error_of(messages)
    assert error is not None and error["ename"] == "KeyboardInterrupt"
    assert took < 30, f"the run took {took:.0f} s to stop"
    assert "not reached" not in text_of(messages)
    _assert_kernel_usable(kernel)
    # the next %%mlbox cell works as usual
    messages = kernel.run("%%mlbox --quiet\nprint('after', 1 + 1)")
    assert error_of(messages) is None and text_of(messages) == "after 2\n"


def test_stop_button_stops_the_run_while_the_cell_is_running(tmp_path, engine, shared_image):
    """The Stop button, clicked the way a front end does it (a comm message to the button's
    model on the shell channel) while the cell runs: the kernel handles it mid-cell, the
    container is removed and the cell ends with a short 'cancelled' error."""
    session = tmp_path / "magics-stop.ipynb"
    saved = nbformat.v4.new_notebook()
    saved.cells = [nbformat.v4.new_code_cell(COMMON_IMPORTS)]
    nbformat.write(saved, session)
    live = LiveKernel(tmp_path, JPY_SESSION_NAME=str(session))
    try:
        assert error_of(live.run("%load_ext jupyter_mlbox")) is None
        msg_id = live.submit("%%mlbox\nimport time\ntime.sleep(120)\nprint('not reached')")
        messages, buttons, clicked_at = [], {}, None
        for msg in live.messages(msg_id, timeout=600):
            messages.append(msg)
            if msg["msg_type"] == "comm_open":
                state = msg["content"]["data"].get("state", {})
                if state.get("_model_name") == "ButtonModel":
                    buttons[state.get("description")] = msg["content"]["comm_id"]
            if msg["msg_type"] == "comm_msg" and clicked_at is None:
                state = msg["content"]["data"].get("state", {})
                if "running" in str(state.get("value", "")) and "Stop" in buttons:
                    time.sleep(1.5)
                    click = live.client.session.msg("comm_msg", {
                        "comm_id": buttons["Stop"],
                        "data": {"method": "custom", "content": {"event": "click"}}})
                    live.client.shell_channel.send(click)
                    clicked_at = time.monotonic()
        assert clicked_at is not None, "the view never showed the running phase"
        took = time.monotonic() - clicked_at
        error = error_of(messages)
        assert error is not None and error["ename"] == "UserCancelledError", error
        assert took < 30, f"the run took {took:.0f} s to stop"
        assert "not reached" not in text_of(messages)
        assert error_of(live.run("x = 1")) is None  # still usable
    finally:
        live.close()


def test_interrupt_during_line_magic_build(kernel, engine, shared_image):
    messages, took = _interrupt_when(kernel, "%mlbox build --rebuild --pip 'six>=1.16'",
                                     "installing the requirements", delay=0.2)
    error = error_of(messages)
    assert error is not None and error["ename"] == "KeyboardInterrupt"
    assert took < 60, f"the build took {took:.0f} s to stop"
    assert "mlbox/" not in text_of(messages)  # no tag printed: nothing was built
    _assert_kernel_usable(kernel)

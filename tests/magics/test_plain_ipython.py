"""%%mlbox in plain (terminal-style) IPython: no kernel, no widgets; the magic runs blocking and
Ctrl-C (SIGINT) cancels it. A real InteractiveShell and the real daemon."""
from __future__ import annotations

import signal
import threading
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from .helpers import COMMON_IMPORTS

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_cell_containers")]


@pytest.fixture
def ip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("MLBOX_PROGRESS", raising=False)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_mlbox")
    shell.run_cell(COMMON_IMPORTS, store_history=True)
    shell.user_ns.pop("__session__", None)
    return shell


def test_cell_runs_blocking_with_text_progress(ip, capsys, shared_image):
    ip.user_ns["numbers"] = [1, 2, 3]
    result = ip.run_cell_magic("mlbox", "--in numbers --out total",
                               "total = sum(numbers)\nprint('summed', total)\ntotal * 10")
    captured = capsys.readouterr()
    assert captured.out == "summed 6\n"
    assert "[%%mlbox" in captured.err and "ran in" in captured.err  # text progress
    assert ip.user_ns["total"] == 6
    assert repr(result) == "60" and result.data["text/plain"] == "60"


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt during the test, as in a terminal, even when the suite was
    started in the background (``cmd &``, nohup), where Python leaves an inherited SIG_IGN alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_sigint_cancels_the_run_and_removes_the_container(ip, capsys, shared_image):
    main = threading.get_ident()

    def interrupt_later():
        time.sleep(6)  # the image exists: by now the container is running
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_later, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ip.run_cell_magic("mlbox", "", "import time\ntime.sleep(120)")
    assert time.monotonic() - started < 40
    assert "interrupted" in capsys.readouterr().err
    assert ip.run_cell("x = 1 + 1").success and ip.user_ns["x"] == 2

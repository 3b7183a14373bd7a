"""Issue 14 in a notebook: ``%%mlbox`` refuses bad values before the build (a UsageError that
names the fix), with the one options model; an interrupt names the phase it stopped."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_mlbox.core.events import ProgressEvent, ProgressState


@pytest.mark.parametrize("line, message", [
    ("--memory 12", "below Docker's minimum of 6m"),
    ("--memory abc", "expected a size like 512m"),
    ("--network 'a b'", "expected none, bridge, host"),
    ("--inactivity -1", "0 (off) or more"),
    ("--base 'python:3.11-slim;RUN'", "is not an image reference"),
])
def test_bad_values_are_a_usage_error_before_the_build(ip, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ip.find_cell_magic("mlbox").__self__.prepare_cell(line, "x = 1")


def test_network_and_inactivity_reach_the_cells_run_options(ip):
    request = ip.find_cell_magic("mlbox").__self__.prepare_cell(
        "--network none --inactivity 0 --timeout 2.5", "x = 1")
    run = request.run_options
    assert (run.network_mode, run.inactivity, run.timeout) == ("none", 0, 2.5)


class View:
    """What ended_badly needs of a view: its progress state and where the end is said."""

    def __init__(self):
        self.state, self.said = ProgressState(), []

    def stopped(self, message):
        self.said.append(message)


def test_an_interrupt_while_the_cell_runs_does_not_say_the_build_was_stopped():
    from jupyter_mlbox.kernel.cell import STOPPED
    from jupyter_mlbox.kernel.job import ended_badly

    view = View()
    view.state.apply(ProgressEvent("running", "phase", "executing"))
    ended_badly(view, KeyboardInterrupt(), STOPPED)
    assert view.said == ["interrupted: the run was stopped while the notebook executed; the "
                         "container was removed and nothing was written"]

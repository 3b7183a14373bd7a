"""Every error jupyter_mlbox raises on purpose, each with a message a user can act on.

Front ends catch ``MlboxError`` and show ``str(err)``; anything else is a bug.
"""
from __future__ import annotations


class MlboxError(Exception):
    """Root of jupyter_mlbox's errors."""


class NotebookError(MlboxError):
    """A notebook could not be read, parsed or written."""


class RequirementError(MlboxError):
    """A requirement is not a valid PEP 508 requirement (or could not be resolved)."""


class DaemonUnavailableError(MlboxError):
    """No Docker daemon answers where we looked."""


class GPUUnavailableError(MlboxError):
    """GPUs were requested but the daemon has no NVIDIA support."""


class ImageNotFoundError(MlboxError):
    """An image that was asked for does not exist."""


class BuildError(MlboxError):
    """A docker build failed; carries the failing step and the tail of the build log."""

    def __init__(self, message: str, *, step: str | None = None, log: str = "") -> None:
        self.step = step
        self.log = log
        detail = f"\nfailing step: {step}" if step else ""
        tail = "\n".join(log.rstrip().splitlines()[-25:])
        super().__init__(f"{message}{detail}" + (f"\n--- build log (tail) ---\n{tail}" if tail else ""))


class CellExecutionError(MlboxError):
    """A cell raised inside the container. The executed notebook (up to the failure) is kept."""

    def __init__(self, message: str, *, notebook=None, ename: str = "", evalue: str = "",
                 traceback: str = "") -> None:
        self.notebook = notebook
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        super().__init__(message)


class KernelDiedError(CellExecutionError):
    """The kernel inside the container died (os._exit, segfault, out of memory)."""


class RunTimeoutError(MlboxError):
    """The run took longer than its timeout; the container was removed."""


class CancelledError(MlboxError):
    """The user stopped the build or run (Stop button, Ctrl-C, DELETE job)."""


class SerializationError(MlboxError):
    """A variable could not be sent into or brought back from the container."""

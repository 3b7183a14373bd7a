"""Every error jupyter_mlbox raises on purpose, each with a message a user can act on.

Front ends catch ``MlboxError`` and show ``str(err)`` (one sentence, sometimes a few lines);
what a front end may want to show beside it (a build log, the failed cell, where the executed
notebook was written) is a field, never baked into the message.
"""
from __future__ import annotations


class MlboxError(Exception):
    """Root of jupyter_mlbox's errors."""


class OptionError(MlboxError, ValueError):
    """An option has a value it cannot take (``--gpus lots``, ``options.memory: 12 parsecs``).

    The CLI exits 2 with it, the magics raise a UsageError, the server answers 400."""


class NotebookError(MlboxError):
    """A notebook could not be read, parsed or written."""


class RequirementError(MlboxError):
    """A requirement is not a valid PEP 508 requirement (or could not be resolved)."""


class UnverifiedGuessError(RequirementError):
    """Imports the kernel lacks whose distribution the package index could not confirm.

    ``problems`` holds one ``(import, cell, reason)`` per import: the module as written, the
    1-based number of the code cell that imports it (None when unknown) and why no distribution
    was verified. The message names the fixes (``--pip``, a local module, ``--exclude``)."""

    def __init__(self, message: str, *,
                 problems: tuple[tuple[str, int | None, str], ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)


# --- the engine -----------------------------------------------------------------------------------

class EngineError(MlboxError):
    """The container engine refused or failed an operation (the message says which)."""


class DaemonUnavailableError(EngineError):
    """No Docker daemon answers where we looked."""


class DaemonGoneError(DaemonUnavailableError):
    """The daemon answered, then its connection broke mid-operation (it stopped, crashed or
    restarted, or the ssh link dropped)."""


class GPUUnavailableError(EngineError):
    """GPUs were requested but the daemon has no NVIDIA support."""


class ImageNotFoundError(EngineError):
    """An image that was asked for does not exist."""


class ConflictError(EngineError):
    """The engine refused because something else holds the object (an image a container uses)."""


class FileTooLargeError(EngineError):
    """A file to copy out of a container is over the cap (``limit`` bytes) on what comes back."""

    def __init__(self, message: str, *, limit: int) -> None:
        self.limit = limit
        super().__init__(message)


class PushError(EngineError):
    """Pushing an image to its registry failed."""


class BuildError(EngineError):
    """A docker build failed. ``step`` is the failing Dockerfile step, ``log`` the whole build
    log (``log_tail()`` for the end of it)."""

    def __init__(self, message: str, *, step: str | None = None, log: str = "") -> None:
        self.step = step
        self.log = log
        super().__init__(message + (f" (at {step})" if step else ""))

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log.rstrip().splitlines()[-lines:])


class MissingLibraryError(BuildError):
    """A binary in the image needs a system library that neither the base image nor a known
    Debian package provides (the in-image check stopped the build). The message is the one
    sentence that names the library, the file that needs it and the fix; ``log`` the build log."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message, log=log)


# --- running ----------------------------------------------------------------------------------------

class CellExecutionError(MlboxError):
    """A cell raised inside the container.

    ``notebook`` is the executed notebook up to the failure, ``failed_cell`` the 0-based index
    of the failing cell in it (None when the runner could not tell), ``image`` the tag it ran
    in and ``output_path`` where the executed notebook was written (None when nowhere).
    """

    def __init__(self, message: str, *, notebook=None, ename: str = "", evalue: str = "",
                 traceback: str = "", failed_cell: int | None = None,
                 image: str | None = None, output_path=None) -> None:
        self.notebook = notebook
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.failed_cell = failed_cell
        self.image = image
        self.output_path = output_path
        super().__init__(message)


class KernelDiedError(CellExecutionError):
    """The kernel inside the container died (os._exit, segfault, out of memory)."""


class ContainerExitError(MlboxError):
    """The container ended without running the notebook (it exited early or was killed);
    ``exit_code`` and the tail of its output (``logs``) say how."""

    def __init__(self, message: str, *, exit_code: int | None = None, logs: str = "") -> None:
        self.exit_code = exit_code
        self.logs = logs
        super().__init__(message)


class RunTimeoutError(MlboxError):
    """The run took longer than its timeout, or a cell stalled; the container was removed.
    ``notebook`` holds what the cells made until then (None when the runner could not write
    it), ``output_path`` where it was written."""

    def __init__(self, message: str, *, notebook=None, failed_cell: int | None = None,
                 output_path=None) -> None:
        self.notebook = notebook
        self.failed_cell = failed_cell
        self.output_path = output_path
        super().__init__(message)


class UserCancelledError(MlboxError):
    """The user stopped the build or run (Stop button, Ctrl-C, DELETE job).

    Not named CancelledError, so it never shadows ``asyncio.CancelledError`` where both are
    handled."""


class SerializationError(MlboxError):
    """A variable could not be sent into or brought back from the container."""

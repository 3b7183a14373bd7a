"""One build per image tag at a time: concurrent requests for the same tag wait, then reuse.

Two layers, because the same tag is asked for from threads of one process (the server's jobs,
a kernel's cells) and from separate processes on one host (several ``jupyter mlbox run``, CI
shells, kernels): a lock per tag in this process, then an ``fcntl`` lock on a file per tag
under the user's runtime (or cache) directory. Waiting stays cancellable (Stop, DELETE, Ctrl-C).
The lock files are empty and kept (one per tag): removing a lock file while another process
waits on it would let a third take a new one and build twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UserCancelledError
from .events import CancelToken

try:
    import fcntl
except ImportError:  # not POSIX: the in-process lock only
    fcntl = None  # type: ignore[assignment]

_POLL = 0.2
_guard = threading.Lock()
_in_process: dict[str, threading.Lock] = {}


def lock_dir() -> Path:
    """``$XDG_RUNTIME_DIR/jupyter_mlbox/locks``, else ``~/.cache/jupyter_mlbox/locks``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(runtime) if runtime and os.path.isdir(runtime) else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "jupyter_mlbox" / "locks"


def lock_path(key: str) -> Path:
    return lock_dir() / f"build-{hashlib.sha256(key.encode()).hexdigest()[:24]}.lock"


def _pause(cancel: CancelToken | None, what: str) -> None:
    if cancel is not None:
        if cancel.wait(_POLL):
            raise UserCancelledError(f"cancelled while waiting for {what}")
    else:
        time.sleep(_POLL)  # Ctrl-C lands here as KeyboardInterrupt


def _open_lock_file(key: str):
    try:
        path = lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+b")
    except OSError:
        return None  # an unwritable home: threads of this process are still serialised


@contextlib.contextmanager
def build_lock(key: str, *, cancel: CancelToken | None = None,
               on_wait: Callable[[], None] | None = None,
               what: str = "a concurrent build") -> Iterator[bool]:
    """Hold the build lock of ``key`` (the daemon and the tag); yield whether it had to wait
    (then another build of the same tag may have just made the image: look again)."""
    waited = False

    def waiting() -> None:
        nonlocal waited
        if not waited:
            waited = True
            if on_wait is not None:
                on_wait()

    with _guard:
        lock = _in_process.setdefault(key, threading.Lock())
    while not lock.acquire(timeout=_POLL):
        waiting()
        if cancel is not None and cancel.cancelled:
            raise UserCancelledError(f"cancelled while waiting for {what}")
    try:
        handle = _open_lock_file(key) if fcntl is not None else None
        try:
            while handle is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waiting()
                    _pause(cancel, what)
            yield waited
        finally:
            if handle is not None:
                handle.close()  # closing the file releases the flock
    finally:
        lock.release()

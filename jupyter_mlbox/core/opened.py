"""The files a kernel reads, recorded with an audit hook (PEP 578, ``sys.addaudithook``).

Static analysis sees ``pd.read_csv('data/x.csv')``; it cannot see a helper's
``download(url)`` that reads the local copy, an ``os.chdir`` into another folder, or data
found by globbing. A kernel that ran the notebook saw every ``open``: with ``--trace`` those
files (under the project root, within its ignore rules and size cap) travel too. Installed in
the kernel at ``%load_ext jupyter_mlbox`` and in the local kernel of ``--trace``; it only adds
a path to a bounded set, since a hook runs on every open.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

#: A kernel that opens more files than this records the first ones only.
LIMIT = 20000
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
_opened: set[str] = set()
_installed = False
_paused = threading.local()


def _hook(event: str, args: tuple) -> None:
    if event != "open" or len(_opened) >= LIMIT or not args \
            or getattr(_paused, "depth", 0):
        return
    path, mode, flags = (tuple(args) + (None, None))[:3]
    if path is None or isinstance(path, int):
        return
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return  # written, not read: the notebook makes it
    if mode is None and isinstance(flags, int) and flags & _WRITING:
        return
    try:
        _opened.add(os.path.abspath(os.fsdecode(path)))
    except Exception:  # noqa: BLE001 - an audit hook must never raise
        pass


def record_opened() -> None:
    """Start recording (once per process; audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


@contextmanager
def not_recorded():
    """What jupyter_mlbox itself reads in this thread (the notebook file, apt.txt, local
    modules' sources) is not the notebook's reading."""
    _paused.depth = getattr(_paused, "depth", 0) + 1
    try:
        yield
    finally:
        _paused.depth -= 1


def opened_files(below: str | os.PathLike) -> list[str]:
    """Existing files read so far under the folder ``below`` (environments excluded)."""
    root = os.path.abspath(below)
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix)}
    found = []
    for path in sorted(_opened):
        if (path == root or path.startswith(root + os.sep)) and os.path.isfile(path) \
                and "site-packages" not in path and "__pycache__" not in path \
                and not any(path.startswith(p + os.sep) for p in prefixes):
            found.append(path)
    return found

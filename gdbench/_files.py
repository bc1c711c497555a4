"""File locks and whole-file writes, shared by the study layer and the trackers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["file_lock", "written_whole"]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); the kernel frees it on death."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to, renamed over ``path`` at the end.

    A reader sees the old file or the new one, never half of one. The temporary name is
    ``.<writer>.<name>``: it keeps ``path``'s suffix (Matplotlib picks the format by it),
    has "partial" for "tfevents" (TensorBoard would read it), and its writer (no dot in
    it) is this host, process and thread. It is removed if the write fails.
    """
    writer = f"{socket.gethostname().replace('.', '-')}-{os.getpid()}-{threading.get_ident()}"
    partial = path.with_name(f".{writer}.{path.name.replace('tfevents', 'partial')}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)

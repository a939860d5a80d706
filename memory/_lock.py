"""One process per store: an exclusive, non-blocking ``flock`` on ``<store>/LOCK``.

The kernel drops the lock when the holder exits, also on SIGKILL, so a crashed process never leaves the
store locked. (POSIX only; Tide targets Linux.)
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from memory._errors import StoreLockedError

__all__ = ["StoreLock"]


class StoreLock:
    """Holds the store's process lock until :meth:`release`."""

    def __init__(self, directory: Path) -> None:
        path = directory / "LOCK"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or None
            finally:
                os.close(fd)
            raise StoreLockedError(str(directory), holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

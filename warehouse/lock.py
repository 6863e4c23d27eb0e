"""One writer per data folder: an advisory lock the kernel drops when the process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from warehouse.errors import WarehouseLocked


class FolderLock:
    """An exclusive flock on `<folder>/LOCK`, naming its holder's pid inside."""

    def __init__(self, folder: Path):
        self.path = folder / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise WarehouseLocked at once; never waits."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WarehouseLocked(
                f"{self.path.parent} is being written by another process (pid {holder}); "
                "one writer per data folder: open it with read_only=True to query alongside"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""Making what is on disk survive a power cut: fsync of files and of the folders naming them."""

from __future__ import annotations

import os


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Fsync a file or a folder by path (a folder's fsync makes new names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

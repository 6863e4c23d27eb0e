"""Where each imported file stopped: `<data>/import/<tenant>/<source>.json`, replaced atomically.

Per file: its inode, size and mtime when read, the byte offset just past the last line
consumed (and its line number), a hash of the bytes just before that offset (to notice a
file rewritten in place), and the parser's small resume context. It is written after the
events it covers are durably appended, so a crash in between re-imports a tail whose
events are already stored: their deterministic ids make that a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
TAIL_BYTES = 256


@dataclass
class FileState:
    """How far one file was imported."""

    inode: int
    size: int
    mtime_ns: int
    offset: int = 0
    line: int = 0
    open_line: bool = False  # the last line consumed had no newline yet
    tail: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Start:
    """Where to read a file from this time."""

    offset: int
    line: int
    context: dict[str, Any] | None
    open_line: bool = False
    restarted: bool = False  # the file shrank or was replaced: read again from the start


class StateStore:
    """The state file of one (tenant, source)."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, FileState] = {}
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("version") == VERSION:
                self.files = {name: FileState(**entry) for name, entry in data["files"].items()}

    def plan(self, path: Path, stat: os.stat_result, whole_document: bool) -> Start | None:
        """Where to start reading `path`, or None when it has not changed since the last import."""
        previous = self.files.get(str(path))
        if previous is None:
            return Start(0, 0, None)
        if (previous.inode, previous.size, previous.mtime_ns) == (
            stat.st_ino,
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return None
        if whole_document:  # rewritten whole each time: parse it all, with what was already emitted
            return Start(0, 0, previous.context)
        same_file = previous.inode == stat.st_ino and stat.st_size >= previous.offset
        if same_file and tail_hash(path, previous.offset) == previous.tail:
            return Start(previous.offset, previous.line, previous.context, previous.open_line)
        return Start(0, 0, None, restarted=True)

    def save(self) -> None:
        """Replace the state file atomically (write, fsync, rename, fsync the folder)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        payload = {"version": VERSION, "files": {name: asdict(s) for name, s in self.files.items()}}
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def tail_hash(path: Path, offset: int) -> str:
    """A hash of the bytes just before `offset`: changes if the imported part was rewritten."""
    start = max(0, offset - TAIL_BYTES)
    with open(path, "rb") as f:
        f.seek(start)
        return hashlib.blake2b(f.read(offset - start), digest_size=12).hexdigest()

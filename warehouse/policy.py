"""When the tail is flushed into the table and a day compacted: the flush policy."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FlushPolicy:
    """Flush the tail when it holds this many rows or bytes, or its oldest batch is this old."""

    rows: int = 500_000
    bytes: int = 256 << 20
    age_s: float = 60.0
    compact_files: int = 64  # compact a day once a flush leaves it with this many files
    refresh_s: float = 1.0  # follow other writers' commits to the table this often

    @classmethod
    def from_env(cls) -> FlushPolicy:
        """CERVER_FLUSH_ROWS, _FLUSH_BYTES, _FLUSH_AGE_S, _COMPACT_FILES, _REFRESH_S, else the defaults."""
        env, d = os.environ.get, cls()
        return cls(
            rows=int(env("CERVER_FLUSH_ROWS", d.rows)),
            bytes=int(env("CERVER_FLUSH_BYTES", d.bytes)),
            age_s=float(env("CERVER_FLUSH_AGE_S", d.age_s)),
            compact_files=int(env("CERVER_COMPACT_FILES", d.compact_files)),
            refresh_s=float(env("CERVER_REFRESH_S", d.refresh_s)),
        )

"""Events as blocks of arrays: each kind added as one block, then all sorted into session order.

Columns hold small integers: indexes into the string pools (`pools`), the turn (for
run_id), or a reference the attrs are built from once ids exist. `gap_us` is the time
since the session's previous event; the timeline turns gaps into timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.demo.pools import type_code

INTS = (
    "turn",  # the run's turn, for run_id; -1 none
    "role",
    "content",
    "harness",
    "model",
    "compute",
    "status",
    "error",
    "attrs",  # an index into pools.ATTRS; -1 none
    "built",  # attrs built later from `ref`: one of BUILT; -1 none
    "ref",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
)
FLOATS = ("cost_usd", "latency_ms", "ttft_ms")
BUILT = ("tool.call", "tool.result", "attempts", "session.spawned", "session.selected")


def order(number: np.ndarray | int, step: np.ndarray | int, sub: np.ndarray | int = 0) -> np.ndarray:
    """An event's place within its session: turn, then step within the turn, then sub-step."""
    return (np.asarray(number, np.int64) << 14) | (np.asarray(step, np.int64) << 2) | sub


@dataclass
class Events:
    """A batch's events in session order: `session`, `type`, `gap_us` and the INTS and FLOATS columns."""

    session: np.ndarray
    type: np.ndarray
    gap_us: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.session)


class Layout:
    """Blocks of events, added kind by kind."""

    def __init__(self) -> None:
        self._blocks: list[dict[str, np.ndarray]] = []

    def add(
        self, kind: str, session: np.ndarray, where: np.ndarray, gap_ms: np.ndarray, **columns: object
    ) -> None:
        n = len(session)
        block = {"session": session, "order": np.broadcast_to(where, n), "gap_ms": np.broadcast_to(gap_ms, n)}
        block["type"] = np.full(n, type_code(kind))
        for name, values in columns.items():
            block[name] = np.broadcast_to(values, n)
        self._blocks.append(block)

    def events(self) -> Events:
        """Every block's events, sorted by session and place; missing columns are null."""
        merged = {}
        names = ("session", "order", "gap_ms", "type", *INTS, *FLOATS)
        for name in names:
            fill = np.nan if name in FLOATS or name == "gap_ms" else -1
            merged[name] = np.concatenate(
                [b.get(name, np.full(len(b["session"]), fill)) for b in self._blocks]
            )
        perm = np.argsort((merged["session"] << 20) | merged["order"], kind="stable")
        merged = {name: values[perm] for name, values in merged.items()}
        gap_us = np.maximum(1, np.rint(merged.pop("gap_ms") * 1000)).astype(np.int64)
        return Events(merged.pop("session"), merged.pop("type"), gap_us, merged)

"""The unflushed tail as a table DuckDB scans quickly: small batches packed into few chunks.

A server appends a few events at a time, so its tail is thousands of tiny batches, and DuckDB
scans a table of thousands of chunks slowly: a point lookup took ~150 ms over 2,500 of them,
~6 ms once packed. Every PACK_EVERY new small batches are copied into one chunk, and the
packed part into one when it has PACK_EVERY chunks itself: each event is copied a few times
at most, and a query scans about 2 x PACK_EVERY chunks. Large batches are chunks DuckDB scans
well already: they stay as they are, so a big tail is never held twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

PACK_EVERY = 64  # batches packed into one chunk at a time
SMALL_BATCH_ROWS = 256  # packed only while the batches average at most this many rows


class Entry(Protocol):
    """A batch of the tail: its log sequence number and its events."""

    seq: int
    table: pa.Table


@dataclass(frozen=True)
class Packed:
    """The tail's entries [0, count) (their first and last seq) as a table of few chunks."""

    first: int
    last: int
    count: int
    table: pa.Table


def concat(tables: list[pa.Table]) -> pa.Table:
    """Tables one after another, schemas unified (the tail may span a schema change)."""
    return pa.concat_tables(tables, promote_options="default")


def tail_table(entries: Sequence[Entry], packed: Packed | None) -> tuple[pa.Table, Packed | None]:
    """The entries as one table, and the packed prefix to pass next time (entries only grow at
    the end until a flush or a replay replaces them, which the prefix's seqs detect)."""
    if packed is not None and not (
        packed.count <= len(entries)
        and entries[0].seq == packed.first
        and entries[packed.count - 1].seq == packed.last
    ):
        packed = None
    done = packed.count if packed is not None else 0
    rest = entries[done:]
    if len(rest) >= PACK_EVERY and sum(e.table.num_rows for e in rest) <= PACK_EVERY * SMALL_BATCH_ROWS:
        fresh = concat([e.table for e in rest]).combine_chunks()
        table = fresh if packed is None else concat([packed.table, fresh])
        if table.column(0).num_chunks >= PACK_EVERY:
            table = table.combine_chunks()
        packed = Packed(entries[0].seq, entries[-1].seq, len(entries), table)
        done = len(entries)
    head = [packed.table] if packed is not None else []
    return concat(head + [e.table for e in entries[done:]]), packed

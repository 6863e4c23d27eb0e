"""Compacting one day: its Parquet parts read back in (tenant_id, session_id, ts) order and
written as few large files, which `PartStore.swap_files` then commits in place of the old ones.

The new files are written here and committed from the version whose files were read, so the
commit removes exactly those: it commutes with other writers' appends to the same day (a file
is never removed unread), while two compactions of the same files conflict and one gives way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction

from warehouse.parts import PARTITION, ROW_GROUP_ROWS, TARGET_FILE_BYTES, Part, PartStore, Snapshot
from warehouse.storage import Location

log = logging.getLogger("cerver.warehouse")


def compact_day(
    parts: PartStore, version: int, day: dt.date, files: list[Part], schema: pa.Schema
) -> Snapshot | None:
    """Rewrite `files` (all of one day's at `version`) sorted; the new snapshot, or None if another
    compaction removed one of them first (this one's new files are deleted, the day left as it is)."""
    started = time.monotonic()
    location = parts.location
    added = write_day(location, day, sorted_day(location, [f.uri for f in files], schema), schema)
    try:
        snap = parts.swap_files(version, day, added)
    except CommitFailedError as exc:
        fs = location.arrow_filesystem()
        for action in added:
            fs.delete_file(location.path_of(f"{location.table_uri}/{action.path}"))
        log.warning("compaction of %s gave way to a concurrent change: %s", day, exc)
        return None
    log.info(
        "compacted %s: %d files, %d events, in %.1fs",
        day,
        len(files),
        sum(f.rows for f in files),
        time.monotonic() - started,
    )
    return snap


# Columns whose min and max go into each file's Delta stats, so engines that skip files by
# them (Spark, Trino) can prune point lookups and time ranges on compacted files.
STATS_COLUMNS = ("tenant_id", "session_id", "user_id", "ts")
_MAX_STAT_CHARS = 64  # a longer string's bound is left out rather than truncated (a wrong max)


def sorted_day(location: Location, files: list[str], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The day's rows, sorted, as batches of `schema`; streamed, not loaded."""
    con = location.connect_duckdb(duckdb.connect())
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE files = ?", [files])
    rows = con.sql(
        "SELECT * FROM read_parquet(getvariable('files'), union_by_name = true, "
        "hive_partitioning = false) ORDER BY tenant_id, session_id, ts"
    ).to_arrow_reader(batch_size=ROW_GROUP_ROWS)
    try:
        for batch in rows:
            # A column added after these files were written reads as nulls.
            n = batch.num_rows
            columns = [
                batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(n, f.type)
                for f in schema
            ]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)
    finally:
        con.close()


def write_day(
    location: Location, day: dt.date, batches: Iterator[pa.RecordBatch], schema: pa.Schema
) -> list[AddAction]:
    """Write sorted batches as the day's new files (rolling at TARGET_FILE_BYTES); their add actions."""
    fs = location.arrow_filesystem()
    folder = f"{PARTITION}={day.isoformat()}"
    actions: list[AddAction] = []
    writer: _File | None = None
    for batch in batches:
        if writer is None:
            writer = _File(fs, location, folder, schema)
        writer.write(batch)
        if writer.bytes >= TARGET_FILE_BYTES:
            actions.append(writer.close(day))
            writer = None
    if writer is not None:
        actions.append(writer.close(day))
    return actions


class _File:
    """One new Parquet file in the table, written row group by row group."""

    def __init__(self, fs: Any, location: Location, folder: str, schema: pa.Schema):
        self.relative = f"{folder}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
        path = location.path_of(f"{location.table_uri}/{self.relative}")
        if not location.remote:  # object stores have no folders to make
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        self._sink = fs.open_output_stream(path)
        self._metadata: list[pq.FileMetaData] = []
        self._writer = pq.ParquetWriter(
            self._sink, schema, compression="zstd", metadata_collector=self._metadata
        )

    @property
    def bytes(self) -> int:
        return self._sink.tell()

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)

    def close(self, day: dt.date) -> AddAction:
        self._writer.close()
        size = self._sink.tell()
        self._sink.close()
        return AddAction(
            path=self.relative,
            size=size,
            partition_values={PARTITION: day.isoformat()},
            modification_time=int(time.time() * 1000),
            data_change=False,  # the same rows, rearranged: a compaction, as Delta's OPTIMIZE marks it
            stats=json.dumps(_stats(self._metadata[0])),
        )


def _stats(meta: pq.FileMetaData) -> dict[str, object]:
    """Delta's per-file stats from the footer: rows, null counts, and bounds of STATS_COLUMNS."""
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    nulls: dict[str, int] = dict.fromkeys(names, 0)
    lows: dict[str, object] = {}
    highs: dict[str, object] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i, name in enumerate(names):
            stats = group.column(i).statistics
            if stats is None or not stats.has_null_count:
                nulls.pop(name, None)
                continue
            if name in nulls:
                nulls[name] += stats.null_count
            if name in STATS_COLUMNS and stats.has_min_max:
                lows[name] = stats.min if name not in lows else min(lows[name], stats.min)
                highs[name] = stats.max if name not in highs else max(highs[name], stats.max)
    bounds_min, bounds_max = {}, {}
    for name in lows:
        low, high = _bound(lows[name], floor=True), _bound(highs[name], floor=False)
        if low is not None and high is not None:
            bounds_min[name], bounds_max[name] = low, high
    return {"numRecords": meta.num_rows, "minValues": bounds_min, "maxValues": bounds_max, "nullCount": nulls}


def _bound(value: object, *, floor: bool) -> object:
    """A bound as Delta writes it: timestamps to the millisecond (rounded outward), short strings whole."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        ms = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if not floor and ms != value:
            ms += dt.timedelta(milliseconds=1)
        return ms.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, str):
        return value if len(value) <= _MAX_STAT_CHARS else None
    return value

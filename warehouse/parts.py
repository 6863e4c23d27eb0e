"""The Parquet parts: a Delta Lake table partitioned by day, written and compacted here.

Every flush is one Delta commit that also records the writer's log high-water mark
as an application transaction (`txn`), so data and mark land atomically: a log
replayed after a crash skips exactly what the table already holds.

Several writers (one per API instance, each with its own log and `txn` name) may
append to one table at once: Delta's optimistic concurrency turns a lost race for
version N into a retry at N+1 (appends never conflict with each other), and on S3
the log entry is written with a conditional put, so no commit is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.transaction import AddAction

from warehouse.durable import fsync_path
from warehouse.schema import SCHEMA_VERSION
from warehouse.storage import Location

PARTITION = "date"
SORT_KEY = [("tenant_id", "ascending"), ("session_id", "ascending"), ("ts", "ascending")]
ROW_GROUP_ROWS = 131_072
TARGET_FILE_BYTES = 512 << 20
CHECKPOINT_EVERY = 100

_WRITER_PROPERTIES = WriterProperties(max_row_group_size=ROW_GROUP_ROWS, compression="ZSTD")


@dataclass(frozen=True)
class Snapshot:
    """One version of the table: its live files and the log mark it holds."""

    version: int
    files: tuple[str, ...]
    high_water: int


EMPTY = Snapshot(version=-1, files=(), high_water=0)


class Part(NamedTuple):
    """One live file: its URI, rows, path inside the table and size in bytes."""

    uri: str
    rows: int
    path: str
    size: int


class PartStore:
    """The Delta table at `location`, seen by one log writer named `app_id`."""

    def __init__(self, location: Location, app_id: str):
        self.location = location
        self.uri = location.table_uri
        self.app_id = app_id
        self._options = location.delta_options()
        self._table: DeltaTable | None = None

    def snapshot(self) -> Snapshot:
        """The newest committed version (reloaded only when the log has moved on)."""
        if self._table is None:
            if not DeltaTable.is_deltatable(self.uri, storage_options=self._options):
                return EMPTY
            self._table = DeltaTable(self.uri, storage_options=self._options)
        else:
            self._table.update_incremental()
        return self._snapshot_of(self._table)

    def _snapshot_of(self, table: DeltaTable) -> Snapshot:
        return Snapshot(
            version=table.version(),
            files=tuple(table.file_uris()),
            high_water=table.transaction_version(self.app_id) or 0,
        )

    def append(self, data: pa.Table, through_seq: int) -> Snapshot:
        """Commit `data` and the mark `through_seq` in one Delta transaction."""
        data = data.sort_by(SORT_KEY)
        data = data.append_column(PARTITION, pc.cast(data.column("ts"), pa.date32()))
        before = self.snapshot()
        write_deltalake(
            self._table if self._table is not None else self.uri,
            data,
            mode="append",
            storage_options=None if self._table is not None else self._options,
            partition_by=[PARTITION],
            schema_mode="merge",
            name="cerver_events",
            description=f"Cerver event table, schema v{SCHEMA_VERSION}",
            writer_properties=_WRITER_PROPERTIES,
            target_file_size=TARGET_FILE_BYTES,
            commit_properties=self._commit(through_seq, "flush"),
        )
        after = self.snapshot()
        self._make_durable(before, after)
        self._maybe_checkpoint(before, after)
        return after

    def _commit(self, through_seq: int | None, operation: str) -> CommitProperties:
        metadata = {"cerver.operation": operation, "cerver.schema_version": str(SCHEMA_VERSION)}
        txns = [] if through_seq is None else [Transaction(self.app_id, through_seq)]
        return CommitProperties(custom_metadata=metadata, app_transactions=txns)

    def partitions(self) -> tuple[int, dict[dt.date, list[Part]]]:
        """The newest version, and its live files by day."""
        snap = self.snapshot()
        if snap is EMPTY:
            return snap.version, {}
        assert self._table is not None
        actions = pa.table(self._table.get_add_actions(flatten=True))
        base = self._table.table_uri.rstrip("/") + "/"
        out: dict[dt.date, list[Part]] = {}
        for path, rows, size, day in zip(
            actions.column("path").to_pylist(),
            actions.column("num_records").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            actions.column(f"partition.{PARTITION}").to_pylist(),
        ):
            uri = path if "://" in path or path.startswith("/") else base + path
            out.setdefault(day, []).append(Part(uri, rows or 0, path, size))
        return snap.version, out

    def swap_files(self, read_version: int, day: dt.date, new: list[AddAction]) -> Snapshot:
        """Replace the day's files live at `read_version` by `new` in one commit.

        The commit is made from `read_version`, so it removes exactly the files that version
        held: files other writers added since are left alone (Delta finds no conflict with an
        append), while a file another commit removed since fails it (Delta's delete-read check).
        tests/test_shared_table.py holds both.
        """
        pinned = DeltaTable(self.uri, version=read_version, storage_options=self._options)
        before = self.snapshot()
        pinned.create_write_transaction(
            new,
            mode="overwrite",
            schema=pinned.schema(),
            partition_by=[PARTITION],
            partition_filters=[(PARTITION, "=", day.isoformat())],
            commit_properties=self._commit(None, "compact"),
        )
        after = self.snapshot()
        self._make_durable(before, after)
        self._maybe_checkpoint(before, after)
        return after

    def vacuum(self, grace_s: float) -> list[str]:
        """Delete files no version newer than `grace_s` ago still needs."""
        if self.snapshot() is EMPTY:
            return []
        assert self._table is not None
        return self._table.vacuum(
            retention_hours=math.ceil(grace_s / 3600),
            dry_run=False,
            enforce_retention_duration=False,
        )

    def schema(self) -> pa.Schema | None:
        """The table's current Arrow schema, without the partition column."""
        if self.snapshot() is EMPTY:
            return None
        assert self._table is not None
        schema = pa.schema(self._table.schema())
        return schema.remove(schema.get_field_index(PARTITION))

    def _maybe_checkpoint(self, before: Snapshot, after: Snapshot) -> None:
        # Other writers commit too: checkpoint whenever our commit crossed a multiple.
        crossed = before.version // CHECKPOINT_EVERY != after.version // CHECKPOINT_EVERY
        if after.version > 0 and crossed and self._table is not None:
            self._table.create_checkpoint()
            self._table.cleanup_metadata()  # log entries older than Delta's log retention

    def _make_durable(self, before: Snapshot, after: Snapshot) -> None:
        """Fsync what a commit wrote locally, so a power cut cannot undo it."""
        if self.location.remote:
            return  # object stores are durable once a PUT returns
        paths = [_local(uri) for uri in set(after.files) - set(before.files)]
        log = Path(_local(self.uri)) / "_delta_log" / f"{after.version:020d}.json"
        folders = set()
        for path in [*paths, str(log)]:
            if os.path.exists(path):
                fsync_path(path)
                folders.add(os.path.dirname(path))
        for folder in folders:
            fsync_path(folder)


def _local(uri: str) -> str:
    return uri.removeprefix("file://")

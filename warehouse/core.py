"""The Warehouse: a durable log in front of a Delta table, queried through DuckDB views.

Data flow: `append` validates a batch, drops ids already stored, writes it to the
log and returns once an fsync covers it; the batch then sits in the in-memory tail,
which every query reads beside the table's Parquet files. A background thread
flushes the tail into the table when it grows too big or too old.

Several writers (API instances), each with its own log, may share one table: a
writer follows the table's other commits at every flush and once a `refresh_s`,
so its queries see the table as of then plus its own unflushed tail.

Locks, always taken in this order: `_flush_lock` (one flush or compaction at a
time), `_write_lock` (dedup and log order), the log's own lock, `_tail_lock`
(the tail and the table snapshot, swapped together so a reader sees every event
exactly once).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs  # imported before our exit hook is registered, so that hook runs first
from deltalake.exceptions import CommitFailedError

from warehouse import dedup, wal
from warehouse.compaction import compact_day
from warehouse.errors import ClosedError, CorruptLogError, WarehouseError
from warehouse.lock import FolderLock
from warehouse.parts import EMPTY, PartStore, Snapshot
from warehouse.policy import FlushPolicy
from warehouse.query import Params, QueryEngine, ReadView, Tables
from warehouse.results import AppendResult, CompactResult
from warehouse.sandbox import Answer, Limits, run_confined
from warehouse.schema import SCHEMA, Events, to_table
from warehouse.storage import Location, locate
from warehouse.tail import Packed, tail_table

log = logging.getLogger("cerver.warehouse")
_NO_WRITER = "none"
COMMIT_ATTEMPTS = 5


@dataclass
class _TailEntry:
    seq: int
    table: pa.Table
    arrived: float


@dataclass
class PendingAppend:
    """A batch in the log, durable once `wait()` returns (see `Warehouse.write_minted`)."""

    _log: wal.WriteAheadLog
    _record: wal.Record | None  # None: the batch was empty
    rows: int

    @property
    def durable(self) -> bool:
        """Whether an fsync already covers the batch (and it is visible): `wait()` returns at once."""
        return self._record is None or self._record.durable

    def wait(self) -> AppendResult:
        """Block until the batch is fsynced and visible; raises StorageError if it never will be."""
        if self._record is not None:
            self._log.wait_durable(self._record)
        return AppendResult(self.rows, 0, np.ones(self.rows, dtype=bool))


class Warehouse:
    """The event table at a URL, written through a log in a local folder. Use `warehouse.open`.

    `root` is the local folder (LOCK, wal/, and the API's own files); `url` is where the
    table lives (`<url>/events`). `auto_compact=False` leaves compaction to another writer
    (or `cerver compact`), for all but one of several instances sharing a table.
    """

    def __init__(
        self,
        root: Path | Location,
        *,
        read_only: bool = False,
        policy: FlushPolicy | None = None,
        schema: pa.Schema = SCHEMA,
        vacuum_grace_s: float = 3600.0,
        segment_bytes: int = wal.SEGMENT_BYTES,
        wal_folder: str | os.PathLike[str] | None = None,
        auto_compact: bool = True,
    ):
        self.location = root if isinstance(root, Location) else locate(root, wal_folder)
        self.root = root = self.location.local
        self.url = self.location.url
        self.read_only = read_only
        self.policy = policy or FlushPolicy.from_env()
        self.auto_compact = auto_compact
        self._schema = schema
        self._vacuum_grace_s = vacuum_grace_s
        self._wal_dir = root / "wal"
        self._engine = QueryEngine(self.location)
        self._flush_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._tail_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._tail: list[_TailEntry] = []
        self._tail_rows = self._tail_bytes = 0
        self._tail_version = 0
        self._tail_cache: tuple[int, pa.Table] | None = None
        self._tail_packed: Packed | None = None
        self._snap: Snapshot = EMPTY
        self._closed = False
        self._lock: FolderLock | None = None
        self._wal: wal.WriteAheadLog | None = None
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._flush_wanted = threading.Event()
        self.last_flush_error: BaseException | None = None
        if read_only:
            if not self.location.remote and not Path(self.url).is_dir():
                raise WarehouseError(f"no warehouse at {self.url}")
            self._parts = PartStore(self.location, self._writer_id(create=False))
            self._refresh()
        else:
            root.mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(root)
            self._lock.acquire()
            try:
                self._parts = PartStore(self.location, self._writer_id(create=True))
                self._start_writer(segment_bytes)
            except BaseException:
                self._engine.close()
                self._lock.release()
                raise
        _open.add(self)

    # -- opening -------------------------------------------------------------

    def _writer_id(self, create: bool) -> str:
        """The log's name in the table's `txn` actions, kept beside the log."""
        path = self._wal_dir / "WRITER_ID"
        if path.exists():
            return path.read_text().strip()
        if not create:
            return _NO_WRITER
        self._wal_dir.mkdir(parents=True, exist_ok=True)
        writer_id = f"cerver-wal-{uuid.uuid4()}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(writer_id)
        tmp.replace(path)
        return writer_id

    def _read_state(self, known: dict[int, pa.Table]) -> tuple[Snapshot, list[_TailEntry], wal.LogContents]:
        """A table snapshot and the log records after its mark, with no gap between."""
        for _ in range(20):
            snap = self._parts.snapshot()
            after = max([snap.high_water, *known.keys()]) if known else snap.high_water
            contents = wal.read_log(self._wal_dir, after, checked_through=after)
            tables = {s: t for s, t in known.items() if s > snap.high_water}
            tables.update(contents.records)
            seqs = sorted(tables)
            if seqs == list(range(snap.high_water + 1, snap.high_water + 1 + len(seqs))):
                now = time.monotonic()
                tail = [_TailEntry(s, self._conform(tables[s]), now) for s in seqs]
                return snap, tail, contents
            if not self.read_only:
                raise CorruptLogError(f"{self._wal_dir}: records after {snap.high_water} are missing")
            known = {}  # a flush dropped segments under us: read again from the new mark
        raise WarehouseError(f"{self.root}: the log kept moving under a reader; try again")

    def _conform(self, table: pa.Table) -> pa.Table:
        return table if table.schema.names == self._schema.names else to_table(table, self._schema)

    def _refresh(self) -> None:
        """A reader catches up with the writer's table and log."""
        with self._refresh_lock:
            if self._parts.app_id == _NO_WRITER:  # opened before any writer named its log
                self._parts.app_id = self._writer_id(create=False)
            self._adopt_table_schema()
            with self._tail_lock:
                known = {entry.seq: entry.table for entry in self._tail}
            snap, tail, _ = self._read_state(known)
            with self._tail_lock:
                if [e.seq for e in tail] != [e.seq for e in self._tail] or snap != self._snap:
                    self._snap = snap
                    self._set_tail_locked(tail)

    def _adopt_table_schema(self) -> None:
        """Columns a newer writer added to the table become ours too (as nullable columns)."""
        table_schema = self._parts.schema()
        if table_schema is not None and not set(table_schema.names) <= set(self._schema.names):
            self._schema = pa.unify_schemas([self._schema, table_schema])

    def _set_tail(self, tail: list[_TailEntry]) -> None:
        with self._tail_lock:
            self._set_tail_locked(tail)

    def _set_tail_locked(self, tail: list[_TailEntry]) -> None:
        self._tail = tail
        self._tail_rows = sum(e.table.num_rows for e in tail)
        self._tail_bytes = sum(e.table.nbytes for e in tail)
        self._tail_version += 1

    def _start_writer(self, segment_bytes: int) -> None:
        started = time.monotonic()
        self._adopt_table_schema()
        self._snap, tail, contents = self._read_state({})
        self._set_tail(tail)
        if contents.torn_bytes:
            log.warning("dropping a torn tail of %d bytes", contents.torn_bytes)
        self._index = dedup.IdIndex()
        keys = self._engine.run(self._read_view(), "SELECT tenant_id, event_id FROM events")
        self._index.add(dedup.hash_keys(keys))
        self._wal = wal.WriteAheadLog(self._wal_dir, contents, self._publish, segment_bytes)
        self._flusher = threading.Thread(target=self._flush_loop, name="cerver-flush", daemon=True)
        self._flusher.start()
        log.info(
            "opened %s: %d events in the table, %d replayed from the log, in %.2fs",
            self.root,
            keys.num_rows - self._tail_rows,
            self._tail_rows,
            time.monotonic() - started,
        )

    # -- writing -------------------------------------------------------------

    def append(self, events: Events, *, minted: bool = False) -> AppendResult:
        """Store a batch (a list of dicts or a pyarrow Table); returns once it is fsynced.

        `minted`: every event id in the batch was just made by `new_event_id`, so none can be
        stored already: the duplicate check is skipped, and the ids join the index later, in bulk.
        """
        self._check_writer()
        table = to_table(events, self._schema)
        total = table.num_rows
        if total == 0:
            return AppendResult(0, 0, np.zeros(0, dtype=bool))
        if minted:
            return self._append_minted(table)
        hashes, first = dedup.hash_and_firsts(table)
        payload = wal.encode(table) if first.all() else None
        dup = ~first
        with self._write_lock:
            self._check_writer()
            seen = self._index.contains(hashes) & first
            if seen.any():
                stored = self._stored_keys(table.filter(pa.array(seen)).select(dedup.KEY))
                pairs = zip(table.column("tenant_id").to_pylist(), table.column("event_id").to_pylist())
                dup |= np.fromiter((key in stored for key in pairs), bool, count=total)
            if dup.any():
                table, hashes, payload = table.filter(pa.array(~dup)), hashes[~dup], None
            if table.num_rows == 0:
                return AppendResult(0, total, ~dup)
            record = self._wal.write(table, payload or wal.encode(table))
            self._index.add(hashes)
        self._wal.wait_durable(record)
        return AppendResult(table.num_rows, total - table.num_rows, ~dup)

    def _append_minted(self, table: pa.Table) -> AppendResult:
        return self._write_minted(table).wait()

    def write_minted(self, events: Events) -> PendingAppend:
        """`append(events, minted=True)` in two steps: this one validates, encodes and writes the
        batch to the log (not yet durable, not yet visible); `wait()` on what it returns blocks
        until an fsync covers the batch and it is visible, like `append` does before returning.

        The fsync can so be waited for on another thread while the writer goes on: the session
        API writes a turn's start this way, and calls the model while the disk syncs. Batches
        become durable in the order they were written, and no later write can be durable before
        an earlier one. Raises what `append` raises, with nothing written.
        """
        self._check_writer()
        return self._write_minted(to_table(events, self._schema))

    def _write_minted(self, table: pa.Table) -> PendingAppend:
        if table.num_rows == 0:
            return PendingAppend(self._wal, None, 0)
        payload = wal.encode(table)
        with self._write_lock:
            self._check_writer()
            record = self._wal.write(table, payload)
            self._index.defer(table.select(dedup.KEY))
        return PendingAppend(self._wal, record, table.num_rows)

    def _stored_keys(self, candidates: pa.Table) -> set[tuple[str, str]]:
        """Which candidate (tenant_id, event_id) keys are stored: in flight, in the tail or the table."""
        wanted = set(zip(candidates.column(0).to_pylist(), candidates.column(1).to_pylist()))
        ids = candidates.column("event_id")
        found: set[tuple[str, str]] = set()
        for table in self._wal.pending_tables():  # before the view: records only move onward
            hits = table.filter(pc.is_in(table.column("event_id"), value_set=ids)).select(dedup.KEY)
            found |= set(zip(hits.column(0).to_pylist(), hits.column(1).to_pylist())) & wanted
        stored = self._engine.run(
            self._read_view(),
            "SELECT tenant_id, event_id FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
            [ids.to_pylist()],
        )
        found |= set(zip(stored.column(0).to_pylist(), stored.column(1).to_pylist())) & wanted
        return found

    def _publish(self, records: list[wal.Record]) -> None:
        """Called by the log, in sequence order, once records are durable."""
        now = time.monotonic()
        with self._tail_lock:
            self._tail.extend(_TailEntry(r.seq, r.table, now) for r in records)
            self._tail_rows += sum(r.table.num_rows for r in records)
            self._tail_bytes += sum(r.nbytes for r in records)
            self._tail_version += 1
            due = self._flush_due_locked()
        if due:
            self._flush_wanted.set()

    # -- flushing and compaction --------------------------------------------

    @property
    def tail_rows(self) -> int:
        """Events not yet flushed to Parquet."""
        with self._tail_lock:
            return self._tail_rows

    def _flush_due_locked(self) -> bool:
        if not self._tail:
            return False
        age = time.monotonic() - self._tail[0].arrived
        p = self.policy
        return self._tail_rows >= p.rows or self._tail_bytes >= p.bytes or age >= p.age_s

    def _flush_loop(self) -> None:
        _background_priority()
        tick = max(0.05, min(1.0, self.policy.age_s / 4, self.policy.refresh_s))
        followed = time.monotonic()
        while not self._stopping.is_set():
            self._flush_wanted.wait(timeout=tick)
            self._flush_wanted.clear()
            if self._stopping.is_set():
                return
            with self._tail_lock:
                due = self._flush_due_locked()
            try:
                if due:
                    flushed = self._flush()
                    followed = time.monotonic()
                    crowded = flushed and self.auto_compact
                    if crowded and self._most_files_in_a_day() >= self.policy.compact_files:
                        self._compact()
                elif time.monotonic() - followed >= self.policy.refresh_s:
                    self._follow_table()
                    followed = time.monotonic()
                self.last_flush_error = None
            except Exception as exc:  # the log still holds it all; retry later
                log.exception("flush failed; the events stay in the log and will be retried")
                self.last_flush_error = exc
                self._stopping.wait(1.0)

    def _most_files_in_a_day(self) -> int:
        with self._flush_lock:
            return max((len(files) for files in self._parts.partitions()[1].values()), default=0)

    def _follow_table(self) -> None:
        """Adopt other writers' commits (their flushes and compactions) into what queries read."""
        with self._flush_lock:
            snap = self._parts.snapshot()
            if snap == self._snap:
                return
            self._adopt_locked(snap)
        self._engine.warm_sessions(self._read_view())

    def _adopt_locked(self, snap: Snapshot) -> None:
        """Read `snap` from now on, with the tail after its mark (under `_flush_lock`).

        The mark only moves by our own commits; if it is past the tail's start, a commit of
        ours landed although it reported a failure, and those records are in the table.
        """
        with self._tail_lock:
            self._snap = snap
            if self._tail and self._tail[0].seq <= snap.high_water:
                self._set_tail_locked([e for e in self._tail if e.seq > snap.high_water])
                landed = True
            else:
                landed = False
        if landed:
            self._wal.drop_through(snap.high_water)

    def flush(self) -> int:
        """Write the tail to the table now; returns the number of events flushed."""
        self._check_writer()
        return self._flush()

    def _flush(self) -> int:
        with self._flush_lock:
            for attempt in range(1, COMMIT_ATTEMPTS + 1):
                self._adopt_locked(self._parts.snapshot())  # a commit reported as failed may have landed
                with self._tail_lock:
                    batch = list(self._tail)
                if not batch:
                    return 0
                through = batch[-1].seq
                data = pa.concat_tables([e.table for e in batch], promote_options="default")
                try:
                    snap = self._parts.append(data, through)
                    break
                except CommitFailedError as exc:
                    # Appends never conflict with appends (Delta retries those itself); this is
                    # another writer creating the table or changing its schema first: re-read, retry.
                    if attempt == COMMIT_ATTEMPTS:
                        raise
                    log.info("flush lost a commit race (%s); retrying on the new version", exc)
            self._adopt_locked(snap)
        self._engine.warm_sessions(self._read_view())
        return data.num_rows

    def compact(self) -> CompactResult:
        """Merge each day's files into few large ones sorted by (tenant_id, session_id, ts)."""
        self._check_writer()
        return self._compact()

    def _compact(self) -> CompactResult:
        with self._flush_lock:
            version, days = self._parts.partitions()
            before = sum(len(files) for files in days.values())
            compacted = 0
            schema = self._parts.schema() or self._schema
            for day, files in sorted(days.items()):
                if len(files) < 2:
                    continue
                snap = compact_day(self._parts, version, day, files, schema)
                if snap is not None:
                    self._adopt_locked(snap)
                    compacted += 1
            vacuumed = self._parts.vacuum(self._vacuum_grace_s)
            after = sum(len(files) for files in self._parts.partitions()[1].values())
        if compacted:
            self._engine.warm_sessions(self._read_view())
        return CompactResult(compacted, before, after, len(vacuumed))

    # -- reading -------------------------------------------------------------

    def _read_view(self) -> ReadView:
        with self._tail_lock:
            version = self._tail_version
            if self._tail_cache is None or self._tail_cache[0] != version:
                self._tail_cache = (version, self._tail_table_locked())
            return ReadView(self._snap.files, self._tail_cache[1], version, self._schema, self.location)

    def _tail_table_locked(self) -> pa.Table:
        """The tail as one table of few chunks (see warehouse/tail.py)."""
        if not self._tail:
            return self._schema.empty_table()
        table, self._tail_packed = tail_table(self._tail, self._tail_packed)
        return table

    def sql(self, query: str, params: Params = None, *, tables: Tables = None) -> pa.Table:
        """Run one read-only statement over the views; sees every acknowledged event.

        `tables` maps plain names to Arrow tables this statement alone can read beside the views.
        """
        self._check_open()
        if self.read_only:
            self._refresh()
        return self._engine.run(self._read_view(), query, params, tables)

    def info(self) -> dict[str, object]:
        """Where things stand: table version, files, tail size."""
        with self._tail_lock:
            return {
                "root": str(self.root),
                "url": self.url,
                "writer": not self.read_only,
                "table_version": self._snap.version,
                "files": len(self._snap.files),
                "flushed_through": self._snap.high_water,
                "tail_events": self._tail_rows,
                "last_flush_error": repr(self.last_flush_error) if self.last_flush_error else None,
            }

    # -- closing -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"the warehouse at {self.root} is closed")

    def _check_writer(self) -> None:
        self._check_open()
        if self.read_only:
            raise WarehouseError("this warehouse was opened read-only")

    def close(self) -> None:
        """Flush the tail, stop the background thread and release the folder."""
        self._shut(flush=True)

    def _shut(self, *, flush: bool) -> None:
        if self._closed:
            return
        self._closed = True  # refuse new calls from here on
        _open.discard(self)
        if not self.read_only:
            self._stopping.set()
            self._flush_wanted.set()
            if self._flusher is not None:
                self._flusher.join()
            try:
                if flush:
                    self._flush()
            except Exception:  # the log keeps the tail for the next open
                log.exception("final flush failed; the log keeps the events for the next open")
            self._wal.close()
        self._engine.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def confined_sql(
        self,
        tenant_id: str,
        query: str,
        params: Params = None,
        *,
        tables: Tables = None,
        limits: Limits | None = None,
    ) -> Answer:
        """One SELECT over `tenant_id`'s events only, in a locked-down DuckDB (see warehouse/sandbox.py)."""
        self._check_open()
        if self.read_only:
            self._refresh()
        return run_confined(self._read_view(), tenant_id, query, params, tables=tables, limits=limits)


_open: weakref.WeakSet[Warehouse] = weakref.WeakSet()


@atexit.register
def _quiesce_at_exit() -> None:
    """At exit, stop what warehouses left open still run: their flusher and their DuckDB.

    Their events are safe in the log (replayed at the next open). What must not happen is a
    flusher still talking to object storage, or a DuckDB connection calling back into Python
    through a registered filesystem, while pyarrow's S3 layer and the interpreter are torn
    down: that crashes the process at exit. (atexit runs hooks last-registered first; pyarrow
    registers its S3 finalizer when `pyarrow.fs` is first imported, above.)
    """
    for wh in list(_open):
        with contextlib.suppress(Exception):
            wh._shut(flush=False)


def _background_priority() -> None:
    """Lower this thread's CPU priority (Linux: a thread has its own nice value).

    A flush sorts and encodes up to a few hundred thousand events; at full priority that takes
    a core from the threads answering appends and queries, whose latency is what users see.
    The threads the flush's libraries start from here inherit the lower priority.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: run as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)

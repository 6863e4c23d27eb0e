"""The write-ahead log: numbered, checksummed batches, fsynced with group commit.

A log is a folder of segment files named by the first sequence number they hold.
Each record is one appended batch, framed as

    magic "CVW1" | payload length u32 | seq u64 | crc32 u32 | payload (Arrow IPC stream)

with the checksum over seq and payload. A record whose frame is short or whose
checksum fails ends the log: that is a torn tail from a crash mid-write, and the
writer cuts it off when it takes the log over. Segments are fully synced before a
new one starts, so only the newest can have a torn tail.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from warehouse.durable import fsync_path
from warehouse.errors import CorruptLogError, StorageError
from warehouse.schema import SMALL_BATCH, per_schema

MAGIC = b"CVW1"
HEADER = struct.Struct("<4sIQI")
SUFFIX = ".wal"
SEGMENT_BYTES = 64 << 20
_IPC_COMPRESSED = pa.ipc.IpcWriteOptions(compression="lz4")
_COMPRESS_FROM = 64 << 10  # smaller batches gain little from LZ4 and pay its set-up per column


@dataclass
class Record:
    """One appended batch; `durable` is set once its bytes are fsynced and published."""

    seq: int
    table: pa.Table
    end: int = 0
    nbytes: int = 0  # about what the table takes in memory
    durable: bool = False
    error: BaseException | None = None


@dataclass
class LogContents:
    """What a read of the log found: records after a sequence number, and where it ends."""

    records: list[tuple[int, pa.Table]] = field(default_factory=list)
    last_seq: int = 0
    last_segment: Path | None = None
    valid_bytes: int = 0
    torn_bytes: int = 0


def segment_paths(folder: Path) -> list[Path]:
    """The log's segment files, oldest first."""
    return sorted(folder.glob("*" + SUFFIX))


def encode(table: pa.Table) -> bytes:
    """The IPC stream bytes of one batch."""
    if table.num_rows <= SMALL_BATCH or table.nbytes < _COMPRESS_FROM:
        # The same bytes a stream writer makes (schema, batches, end marker), put together
        # directly: a run's few events are encoded in a tenth of the time.
        batches = b"".join(batch.serialize().to_pybytes() for batch in table.to_batches())
        return _schema_bytes(table.schema) + batches + _END_OF_STREAM
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_COMPRESSED) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # continuation marker, then a zero length


@per_schema
def _schema_bytes(schema: pa.Schema) -> bytes:
    """The schema's IPC message."""
    return schema.serialize().to_pybytes()


def _frame(seq: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(seq.to_bytes(8, "little")))
    return HEADER.pack(MAGIC, len(payload), seq, crc) + payload


def _frames(data: bytes | memoryview, check_after: int = 0) -> Iterator[tuple[int, int, memoryview]]:
    """(seq, end offset, payload) per intact frame; stops at the first bad one.

    Checksums are verified for records above `check_after`: those below were read
    (and checked) before, and are only walked past.
    """
    view = memoryview(data)
    offset = 0
    while offset + HEADER.size <= len(view):
        magic, length, seq, crc = HEADER.unpack_from(view, offset)
        end = offset + HEADER.size + length
        if magic != MAGIC or end > len(view):
            return
        payload = view[offset + HEADER.size : end]
        if seq > check_after and zlib.crc32(payload, zlib.crc32(seq.to_bytes(8, "little"))) != crc:
            return
        yield seq, end, payload
        offset = end


def read_log(folder: Path, after_seq: int, checked_through: int = 0) -> LogContents:
    """Read every intact record with a sequence number above `after_seq`.

    `checked_through` names records this reader has already verified, to skip
    their checksums on a re-read.
    """
    contents = LogContents(last_seq=after_seq)
    paths = segment_paths(folder)
    for i, path in enumerate(paths):
        newest = i == len(paths) - 1
        if not newest and int(paths[i + 1].stem) <= after_seq + 1:
            continue  # every record in it is already in the table
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # dropped by the writer after a flush, between listing and reading
        expected, valid = int(path.stem), 0
        for seq, end, payload in _frames(data, checked_through):
            if seq != expected:
                raise CorruptLogError(f"{path}: expected record {expected}, found {seq}")
            if seq > after_seq:
                table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
                contents.records.append((seq, table))
            contents.last_seq = max(contents.last_seq, seq)
            expected, valid = seq + 1, end
        if valid != len(data) and not newest:
            raise CorruptLogError(f"{path}: damaged at byte {valid} of {len(data)}")
        contents.last_segment, contents.valid_bytes = path, valid
        contents.torn_bytes = len(data) - valid
    return contents


class WriteAheadLog:
    """The writer's end of the log. One per data folder, guarded by the folder lock.

    `write` appends a record (call it under the caller's ordering lock);
    `wait_durable` blocks until an fsync covers it. One waiter at a time is the
    leader and syncs for everyone written so far: that is the group commit. Durable
    records go to `publish` in sequence order before their writers are released.
    """

    def __init__(
        self,
        folder: Path,
        contents: LogContents,
        publish: Callable[[list[Record]], None],
        segment_bytes: int = SEGMENT_BYTES,
    ):
        self.folder = folder
        self._publish = publish
        self._segment_bytes = segment_bytes
        self._cond = threading.Condition()
        self._pending: deque[Record] = deque()
        self._syncing = False
        self._broken: BaseException | None = None
        self.next_seq = contents.last_seq + 1
        folder.mkdir(parents=True, exist_ok=True)
        if contents.last_segment is not None:
            self._open_segment(contents.last_segment, truncate_to=contents.valid_bytes)
        else:
            self._open_segment(self._segment_path(self.next_seq), truncate_to=0)

    def _segment_path(self, first_seq: int) -> Path:
        return self.folder / f"{first_seq:020d}{SUFFIX}"

    def _open_segment(self, path: Path, truncate_to: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, truncate_to)  # cut a torn tail off before writing after it
            os.lseek(fd, truncate_to, os.SEEK_SET)
            os.fsync(fd)
            fsync_path(self.folder)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot open the write-ahead log {path}: {exc}") from exc
        self._fd, self._path = fd, path
        self._written = self._synced = truncate_to

    def write(self, table: pa.Table, payload: bytes) -> Record:
        """Append one record's bytes (not yet durable). Raises StorageError, writing nothing."""
        with self._cond:
            if self._broken is not None:
                raise StorageError(f"the write-ahead log failed earlier: {self._broken}")
            if self._written >= self._segment_bytes:
                self._rotate_locked()
            size = len(payload) if table.num_rows <= SMALL_BATCH else table.nbytes  # IPC ~ memory
            record = Record(self.next_seq, table, nbytes=size)
            frame = _frame(record.seq, payload)
            try:
                view = memoryview(frame)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self._cut_back_locked(self._written)
                raise StorageError(f"write to {self._path} failed: {exc}") from exc
            self._written += len(frame)
            record.end = self._written
            self.next_seq += 1
            self._pending.append(record)
            return record

    def wait_durable(self, record: Record) -> None:
        """Return once `record` is fsynced and published; raise StorageError if it never will be."""
        while True:
            with self._cond:
                while not record.durable and record.error is None and self._syncing:
                    self._cond.wait()
                if record.error is not None:
                    raise StorageError(f"fsync of the write-ahead log failed: {record.error}")
                if record.durable:
                    return
                self._syncing = True  # this thread leads the next group commit
                fd, target = self._fd, self._written
            self._sync_and_publish(fd, target)

    def _sync_and_publish(self, fd: int, target: int) -> None:
        error: BaseException | None = None
        done: list[Record] = []
        try:
            os.fsync(fd)
            with self._cond:
                while self._pending and self._pending[0].end <= target:
                    done.append(self._pending.popleft())
                self._synced = target
            if done:
                self._publish(done)
        except BaseException as exc:  # every waiter must hear of it
            error = exc
        with self._cond:
            if error is None:
                for record in done:
                    record.durable = True
            else:
                # After a failed fsync the page cache cannot be trusted (the lesson of
                # PostgreSQL's fsyncgate): fail every waiter and refuse further writes
                # until the warehouse is reopened and the log replayed from disk.
                self._broken = error
                for record in [*done, *self._pending]:
                    record.error = error
                self._pending.clear()
            self._syncing = False
            self._cond.notify_all()

    def _cut_back_locked(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
        except OSError as exc:
            self._broken = exc

    def _rotate_locked(self) -> None:
        while self._syncing:
            self._cond.wait()
        os.fsync(self._fd)
        done = list(self._pending)
        self._pending.clear()
        if done:
            self._publish(done)
            for record in done:
                record.durable = True
            self._cond.notify_all()
        os.close(self._fd)
        self._open_segment(self._segment_path(self.next_seq), truncate_to=0)

    def pending_tables(self) -> list[pa.Table]:
        """Batches written but not yet durable."""
        with self._cond:
            return [record.table for record in self._pending]

    def drop_through(self, seq: int) -> int:
        """Delete segments whose every record is at or below `seq` (flushed). Returns the count."""
        with self._cond:
            if self._broken is None and self.next_seq - 1 <= seq and self._written > 0:
                self._rotate_locked()  # the current segment is all flushed: start afresh
            current = self._path
        dropped = 0
        paths = segment_paths(self.folder)
        for path, successor in itertools.pairwise(paths):
            if path != current and int(successor.stem) - 1 <= seq:
                path.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def close(self) -> None:
        """Sync and close the current segment."""
        with self._cond:
            while self._syncing:
                self._cond.wait()
            if self._fd >= 0:
                if self._broken is None:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
                self._broken = self._broken or RuntimeError("closed")

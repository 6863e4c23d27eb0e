"""The write-ahead log on disk: torn tails, damage, segments and group commit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import event
from warehouse import wal
from warehouse.schema import to_table


def count(wh: warehouse.Warehouse) -> int:
    return wh.sql("select count(*) from events").column(0)[0].as_py()


def _segments(data_dir: Path) -> list[Path]:
    return wal.segment_paths(data_dir / "wal")


def _kill(wh: warehouse.Warehouse) -> None:
    """Leave the folder as a killed writer would: nothing flushed, the lock dropped."""
    wh._stopping.set()
    wh._lock.release()


@pytest.mark.parametrize("cut", [1, 7, 20, 50])
def test_a_torn_tail_is_dropped_and_everything_before_kept(data_dir: Path, cut: int) -> None:
    wh = warehouse.open(data_dir, policy=MANUAL)
    for i in range(5):
        wh.append([event(session_id=f"s{i}") for _ in range(10)])
    _kill(wh)
    segment = _segments(data_dir)[-1]
    size = segment.stat().st_size
    with open(segment, "r+b") as f:  # a power cut in the middle of the last record
        f.truncate(size - cut)
    with warehouse.open(data_dir, policy=MANUAL) as again:
        assert count(again) == 40
        assert segment.stat().st_size < size - cut  # the torn bytes are gone
        again.append([event(session_id="after")])
        assert count(again) == 41
    with warehouse.open(data_dir, read_only=True) as reader:
        assert count(reader) == 41


def test_garbage_after_the_last_record_is_dropped(data_dir: Path) -> None:
    wh = warehouse.open(data_dir, policy=MANUAL)
    wh.append([event() for _ in range(3)])
    _kill(wh)
    with open(_segments(data_dir)[-1], "ab") as f:
        f.write(b"CVW1" + os.urandom(64))  # a header that promises more than is there
    with warehouse.open(data_dir, policy=MANUAL) as again:
        assert count(again) == 3


def test_a_flipped_bit_inside_a_record_fails_its_checksum(data_dir: Path) -> None:
    wh = warehouse.open(data_dir, policy=MANUAL)
    wh.append([event(session_id="first")])
    wh.append([event(session_id="second")])
    _kill(wh)
    segment = _segments(data_dir)[-1]
    data = bytearray(segment.read_bytes())
    data[-10] ^= 0xFF
    segment.write_bytes(bytes(data))
    with warehouse.open(data_dir, policy=MANUAL) as again:
        assert again.sql("select session_id from events").column(0).to_pylist() == ["first"]


def test_damage_in_an_older_segment_is_an_error_not_a_silent_loss(data_dir: Path) -> None:
    wh = warehouse.Warehouse(data_dir, policy=MANUAL, segment_bytes=1)  # one record per segment
    for i in range(3):
        wh.append([event(session_id=f"s{i}")])
    _kill(wh)
    first = _segments(data_dir)[0]
    first.write_bytes(first.read_bytes()[:-5])
    with pytest.raises(warehouse.CorruptLogError, match="damaged"):
        warehouse.open(data_dir, policy=MANUAL)


def test_segments_roll_over_and_flushed_ones_are_deleted(data_dir: Path) -> None:
    with warehouse.Warehouse(data_dir, policy=MANUAL, segment_bytes=1) as wh:
        for i in range(5):
            wh.append([event(session_id=f"s{i}")])
        assert len(_segments(data_dir)) == 5
        wh.flush()
        assert len(_segments(data_dir)) == 1  # a fresh, empty one to go on in
        assert _segments(data_dir)[0].stat().st_size == 0
        wh.append([event(session_id="s5")])
    with warehouse.open(data_dir, policy=MANUAL) as again:
        assert count(again) == 6


def test_group_commit_shares_fsyncs_between_writers(wh: warehouse.Warehouse, monkeypatch) -> None:
    """Counts real fsync calls (the call still happens) while 8 threads append together."""
    calls = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        real_fsync(fd)

    monkeypatch.setattr(wal.os, "fsync", counting_fsync)
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        start.wait()
        for i in range(25):
            wh.append([event(session_id=f"w{n}-{i}")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(wh) == 200
    assert 0 < calls < 200, f"{calls} fsyncs for 200 appends: no group commit"


@pytest.mark.parametrize("rows", [1, 3, 50_000])  # small (assembled by hand) and large (compressed)
def test_encoded_batches_read_back_as_written(rows: int) -> None:
    table = to_table([event(session_id=f"s{i % 7}", content="x" * (i % 50)) for i in range(rows)])
    payload = wal.encode(table)
    assert pa.ipc.open_stream(pa.py_buffer(payload)).read_all().equals(table, check_metadata=True)
    if rows < 100:  # the hand-assembled stream is byte for byte what a stream writer makes
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        assert payload == sink.getvalue().to_pybytes()

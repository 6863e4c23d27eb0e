"""Compaction: few large sorted files, readers never see an event twice or miss one."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation, event


def _fill(wh: warehouse.Warehouse, flushes: int) -> int:
    total = 0
    for i in range(flushes):
        batch = conversation(f"s{i % 7}-{i}", turns=3, tenant_id=f"t{i % 3}")
        wh.append(batch)
        total += len(batch)
        wh.flush()
    return total


def test_queries_during_compaction_are_never_wrong(wh: warehouse.Warehouse, data_dir: Path) -> None:
    base = _fill(wh, 30)
    other = warehouse.open(data_dir, read_only=True)  # a reader in its own instance, as a notebook
    stop = threading.Event()
    problems: list[str] = []
    observations = [0]

    def read_loop(source: warehouse.Warehouse) -> None:
        last = 0
        while not stop.is_set():
            n, distinct = (
                source.sql("select count(*), count(distinct event_id) from events").to_pylist()[0].values()
            )
            observations[0] += 1
            if n != distinct or n < base or n < last:
                problems.append(f"count {n}, distinct {distinct}, before {last}")
            last = n

    def append_loop() -> None:
        while not stop.is_set():
            wh.append([event(session_id="live")])

    threads = [threading.Thread(target=read_loop, args=(s,)) for s in (wh, other)]
    threads.append(threading.Thread(target=append_loop))
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            wh.compact()
            wh.flush()
    finally:
        stop.set()
        for t in threads:
            t.join()
        other.close()
    assert not problems, problems[:5]
    assert observations[0] > 20
    live = wh.sql("select count(*) from events where session_id = 'live'").column(0)[0].as_py()
    assert wh.sql("select count(*) from events").column(0)[0].as_py() == base + live


def test_compacted_files_are_few_large_and_sorted(wh: warehouse.Warehouse) -> None:
    _fill(wh, 20)
    wh.append([event(ts="2026-11-02T08:00:00Z", session_id="next-day")])
    wh.flush()
    before = wh.info()["files"]
    result = wh.compact()
    assert result.files_before == before == 21
    assert result.files_after == 2  # one per day
    assert result.partitions == 1  # the day with a single file was left alone
    for uri in wh._snap.files:
        table = pq.read_table(uri.removeprefix("file://"))
        keys = list(zip(*(table.column(c).to_pylist() for c in ("tenant_id", "session_id", "ts"))))
        assert keys == sorted(keys)


def test_old_files_outlive_compaction_until_the_grace_period(data_dir: Path) -> None:
    with warehouse.open(data_dir, policy=MANUAL) as wh:  # default grace: an hour
        _fill(wh, 3)
        before = set((data_dir / "events").rglob("*.parquet"))
        wh.compact()
        after = set((data_dir / "events").rglob("*.parquet"))
        assert before <= after  # a reader holding the old list can still read them
    with warehouse.open(data_dir, policy=MANUAL, vacuum_grace_s=0) as wh:
        result = wh.compact()
        assert result.vacuumed == len(before)
        assert len(list((data_dir / "events").rglob("*.parquet"))) == 1
        assert wh.sql("select count(*) from events").column(0)[0].as_py() == 3 * 13


def test_the_writer_compacts_on_its_own_when_files_pile_up(data_dir: Path) -> None:
    policy = warehouse.FlushPolicy(rows=5, bytes=1 << 40, age_s=1e9, compact_files=4)
    with warehouse.open(data_dir, policy=policy) as wh:
        for i in range(6):
            wh.append(conversation(f"s{i}", turns=1))  # 5 events: a flush each
            wait_for(lambda: wh.info()["tail_events"] == 0)
        wait_for(lambda: wh.info()["files"] < 4)
        assert wh.sql("select count(*) from events").column(0)[0].as_py() == 30


def wait_for(condition, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the background flusher")
        time.sleep(0.02)

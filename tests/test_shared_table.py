"""Several writers, each with its own local log, sharing one Delta table (a folder, or S3 on moto).

Real deltalake commits race for real: two writers that flush at once both aim at the next
version, and the loser re-reads the log and commits after the winner.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation, event
from tests.moto_server import new_bucket
from warehouse.compaction import compact_day
from warehouse.routing import Ring


@pytest.fixture(params=["local", "s3"])
def table_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared table's URL: a local folder, then an S3 bucket on the moto server."""
    if request.param == "local":
        return str(tmp_path / "shared")
    return new_bucket(monkeypatch)


def ids_in(wh: warehouse.Warehouse) -> list[str]:
    return wh.sql("select event_id from events").column(0).to_pylist()


def test_writers_flushing_at_once_lose_and_double_nothing(table_url: str, tmp_path: Path) -> None:
    writers = [warehouse.open(table_url, wal=tmp_path / f"w{n}", policy=MANUAL) for n in range(3)]
    sent: list[list[str]] = [[] for _ in writers]
    start = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(6):
                batch = conversation(f"w{n}-s{i}", turns=1)
                writers[n].append(batch + batch[:2])  # a retried tail inside the batch: stored once
                sent[n] += [e["event_id"] for e in batch]
                writers[n].flush()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    marks = [w._parts.app_id for w in writers]
    for w in writers:
        w.close()
    everything = sorted(i for ids in sent for i in ids)
    with warehouse.open(table_url, read_only=True) as reader:
        assert sorted(ids_in(reader)) == everything  # none lost, none twice
    table = DeltaTable(f"{table_url}/events", storage_options=warehouse.locate(table_url).delta_options())
    assert table.version() == 3 * 6 - 1, "every flush is exactly one commit, none failed or repeated"
    assert [table.transaction_version(m) for m in marks] == [6, 6, 6]  # each log's own mark


def test_a_commit_that_reported_failure_but_landed_is_not_written_twice(tmp_path: Path) -> None:
    """The failure is injected after a real commit (as when S3 answers a PUT that succeeded with
    an error): the next flush must find the commit in the table and not write it again."""
    with warehouse.open(tmp_path / "shared", policy=MANUAL) as wh:
        real_append = wh._parts.append

        def lands_then_fails(data, through):  # type: ignore[no-untyped-def]
            real_append(data, through)
            raise OSError("connection reset after the commit was stored")

        batch = conversation("s")
        wh.append(batch)
        wh._parts.append = lands_then_fails
        with pytest.raises(OSError):
            wh.flush()
        wh._parts.append = real_append
        assert wh.flush() == 0  # the table already holds it: nothing left to write
        assert wh.info()["tail_events"] == 0
        assert sorted(ids_in(wh)) == sorted(e["event_id"] for e in batch)


def test_compaction_keeps_what_another_writer_appended_meanwhile(table_url: str, tmp_path: Path) -> None:
    leader = warehouse.open(table_url, wal=tmp_path / "leader", policy=MANUAL)
    other = warehouse.open(table_url, wal=tmp_path / "other", policy=MANUAL)
    try:
        for i in range(3):
            leader.append(conversation(f"s{i}"))
            leader.flush()
        version, days = leader._parts.partitions()
        ((day, files),) = days.items()
        late = event(session_id="late")  # lands in the day being compacted, after it was read
        other.append([late])
        other.flush()
        schema = leader._parts.schema()
        assert compact_day(leader._parts, version, day, files, schema) is not None
        # A second compaction of the same (now removed) files loses the race and leaves no trace.
        parquet_before = _parquet_count(leader)
        assert compact_day(leader._parts, version, day, files, schema) is None
        assert _parquet_count(leader) == parquet_before
        leader._follow_table()
        ids = ids_in(leader)
        assert len(ids) == len(set(ids)) == 3 * 9 + 1 and late["event_id"] in ids
        assert len(leader._snap.files) == 2  # the compacted file and the late one
    finally:
        leader.close()
        other.close()


def _parquet_count(wh: warehouse.Warehouse) -> int:
    fs, location = wh.location.arrow_filesystem(), wh.location
    found = fs.get_file_info(pafs.FileSelector(location.path_of(location.table_uri), recursive=True))
    return sum(f.path.endswith(".parquet") for f in found)


def test_a_writer_sees_the_others_flushed_events_and_its_own_tail(tmp_path: Path) -> None:
    url = str(tmp_path / "shared")
    policy = warehouse.FlushPolicy(rows=10**9, bytes=1 << 40, age_s=1e9, compact_files=10**9, refresh_s=0.1)
    with (
        warehouse.open(url, wal=tmp_path / "a", policy=policy) as a,
        warehouse.open(url, wal=tmp_path / "b", policy=policy) as b,
    ):
        a.append([event(session_id="a-flushed")])
        a.flush()
        a.append([event(session_id="a-tail")])
        b.append([event(session_id="b-tail")])
        deadline = time.monotonic() + 10
        while b.sql("select count(*) from events where session_id = 'a-flushed'").column(0)[0].as_py() == 0:
            assert time.monotonic() < deadline, "b never followed a's commit"
            time.sleep(0.05)
        seen = sorted(b.sql("select session_id from events").column(0).to_pylist())
        assert seen == ["a-flushed", "b-tail"]  # a's unflushed tail lives in a's log only


def test_only_the_compacting_writer_compacts(tmp_path: Path) -> None:
    url = str(tmp_path / "shared")
    policy = warehouse.FlushPolicy(rows=5, bytes=1 << 40, age_s=1e9, compact_files=3)
    with warehouse.open(url, wal=tmp_path / "w", policy=policy, auto_compact=False) as writer:
        for i in range(5):
            writer.append(conversation(f"s{i}", turns=1))  # 5 events: a flush each
            _wait(lambda: writer.info()["tail_events"] == 0)
        assert writer.info()["files"] == 5
    with warehouse.open(url, wal=tmp_path / "leader", policy=policy) as leader:
        leader.append(conversation("x", turns=1))
        _wait(lambda: leader.info()["files"] < 3)
        assert leader.sql("select count(*) from events").column(0)[0].as_py() == 30


def _wait(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background flusher"
        time.sleep(0.02)


def test_another_instance_drops_an_id_that_was_in_the_table_when_it_started(tmp_path: Path) -> None:
    """The promise for a re-post to a non-owner (docs/scale-out.md): dropped if already in the table."""
    url = str(tmp_path / "shared")
    batch = conversation("s")
    with warehouse.open(url, wal=tmp_path / "owner", policy=MANUAL) as owner:
        owner.append(batch)
        owner.flush()
    with warehouse.open(url, wal=tmp_path / "other", policy=MANUAL) as other:
        assert other.append(batch).duplicates == len(batch)
        assert sorted(ids_in(other)) == sorted(e["event_id"] for e in batch)


def test_the_ring_is_stable_and_moves_few_sessions_when_an_instance_joins() -> None:
    sessions = [f"sess-{n}" for n in range(3000)]
    two = Ring(["a", "b"])
    assert [two.owner(s) for s in sessions] == [Ring(["b", "a"]).owner(s) for s in sessions]
    share = collections.Counter(two.owner(s) for s in sessions)
    assert min(share.values()) > 0.4 * len(sessions)
    three = Ring(["a", "b", "c"])
    moved = [s for s in sessions if two.owner(s) != three.owner(s)]
    assert all(three.owner(s) == "c" for s in moved)  # sessions only move to the newcomer
    assert 0.2 < len(moved) / len(sessions) < 0.45  # about a third

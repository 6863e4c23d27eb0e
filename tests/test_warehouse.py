"""The warehouse's promises on a real folder: read your writes, exactly once, one writer."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation, event
from warehouse import dedup
from warehouse.tail import PACK_EVERY


def count(wh: warehouse.Warehouse, sql: str = "select count(*) from events") -> int:
    return wh.sql(sql).column(0)[0].as_py()


def test_read_your_writes_across_flush_and_compaction(wh: warehouse.Warehouse) -> None:
    seen = 0
    for step in range(4):
        batch = conversation(f"s{step}")
        wh.append(batch)
        seen += len(batch)
        assert count(wh) == seen  # in the tail
        wh.flush()
        assert count(wh) == seen  # in Parquet
        assert wh.info()["tail_events"] == 0
    wh.append(conversation("late"))  # a tail beside the parts while compacting
    seen += 9
    result = wh.compact()
    assert result.files_before >= 4 and result.files_after == 1
    assert count(wh) == seen
    assert count(wh, "select count(distinct event_id) from events") == seen


def test_duplicate_ids_are_no_ops_everywhere(wh: warehouse.Warehouse) -> None:
    batch = conversation("s1")
    assert wh.append(batch) == warehouse.AppendResult(accepted=9, duplicates=0)
    assert wh.append(batch) == warehouse.AppendResult(accepted=0, duplicates=9)  # against the tail
    wh.flush()
    assert wh.append(batch[:3]).duplicates == 3  # against the parts
    fresh = event(session_id="s1")
    result = wh.append([fresh, fresh, batch[0]])  # within one batch, and mixed
    assert result == warehouse.AppendResult(accepted=1, duplicates=2)
    assert count(wh) == 10


def test_minted_ids_skip_the_check_and_are_still_found_by_later_ones(wh: warehouse.Warehouse) -> None:
    """Minted batches are not checked for duplicates; their ids still stop a later copy."""
    few = [event(session_id="m")]
    many = [event(session_id="m") for _ in range(dedup._DEFER_ROWS + 10)]  # past the bulk hashing
    last = [event(session_id="m")]
    for batch in (few, many, last):
        assert wh.append(batch, minted=True) == warehouse.AppendResult(accepted=len(batch), duplicates=0)
    for batch in (few, many[:5] + many[-5:], last):
        assert wh.append(batch).duplicates == len(batch)
    assert count(wh) == len(few) + len(many) + len(last)


def test_a_write_waited_for_elsewhere_is_visible_and_durable_once_waited_for(wh: warehouse.Warehouse) -> None:
    """write_minted writes now and syncs on `wait()`, which another thread may make."""
    first = wh.write_minted([event(session_id="w"), event(session_id="w")])
    assert count(wh) == 0, "written, not yet synced: not visible"
    second = wh.write_minted([event(session_id="w")])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(second.wait).result(10) == warehouse.AppendResult(accepted=1, duplicates=0)
    assert count(wh) == 3, "one fsync covered the earlier write too"
    assert first.wait().accepted == 2
    assert wh.write_minted([]).wait().accepted == 0
    with pytest.raises(warehouse.ValidationError):
        wh.write_minted([{**event(session_id="w"), "type": "no.such.type"}])
    assert count(wh) == 3, "a bad batch writes nothing"


def test_reopen_keeps_everything_exactly_once(data_dir: Path) -> None:
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        wh.append(conversation("a"))
        wh.flush()
        wh.append(conversation("b"))
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        assert count(wh) == 18
        assert wh.append([event(session_id="c")]).accepted == 1
        assert count(wh) == 19


def test_log_is_replayed_when_the_writer_never_closed(data_dir: Path) -> None:
    wh = warehouse.open(data_dir, policy=MANUAL)
    batch = conversation("s")
    wh.append(batch)
    wh._lock.release()  # as if the process died: no flush, no close
    again = warehouse.open(data_dir, policy=MANUAL)
    try:
        assert count(again) == 9
        assert again.info()["tail_events"] == 9
        assert again.append(batch[:1]).duplicates == 1
    finally:
        again.close()
        wh._shut(flush=False)  # the dead writer's threads, which a real crash takes with it


def test_a_warehouse_left_open_at_exit_stops_quietly_and_keeps_its_events(data_dir: Path) -> None:
    """A process that never closes its warehouse exits cleanly (flusher and DuckDB stopped first)."""
    script = (
        "import sys, warehouse\n"
        "from tests.factory import conversation\n"
        "wh = warehouse.open(sys.argv[1])\n"
        "wh.append(conversation('s'))\n"
        "wh.sql('select count(*) from sessions')\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script, str(data_dir)], cwd=root, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    again = warehouse.open(data_dir, policy=MANUAL)
    try:
        assert count(again) == 9
    finally:
        again.close()


def test_a_tail_of_many_small_batches_is_packed_and_read_exactly_once(data_dir: Path) -> None:
    """A server's tail is thousands of two-event appends: queries see them all, through few chunks."""
    wh = warehouse.open(data_dir, policy=MANUAL)
    try:
        sent = []
        for i in range(700):
            batch = conversation(f"s{i}", turns=1)[:2]
            sent += batch
            wh.append(batch)
            if i == 400:
                assert count(wh) == len(sent)  # packed part plus the batches after it
                wh.flush()  # the tail is replaced: the packed part must not outlive it
        tail = wh._read_view().tail
        assert tail.num_rows == 2 * 299 and tail.column(0).num_chunks <= 2 * PACK_EVERY
        ids = wh.sql("select event_id from events").column(0).to_pylist()
        assert sorted(ids) == sorted(e["event_id"] for e in sent)
    finally:
        wh.close()


def test_one_writer_per_folder(wh: warehouse.Warehouse, data_dir: Path) -> None:
    with pytest.raises(warehouse.WarehouseLocked, match=f"pid {os.getpid()}"):
        warehouse.open(data_dir)
    reader = warehouse.open(data_dir, read_only=True)
    with pytest.raises(warehouse.WarehouseError, match="read-only"):
        reader.append([event()])
    reader.close()


def test_a_reader_sees_acknowledged_events_flushed_or_not(wh: warehouse.Warehouse, data_dir: Path) -> None:
    reader = warehouse.open(data_dir, read_only=True)
    try:
        assert count(reader) == 0
        wh.append(conversation("a"))
        assert count(reader) == 9  # only in the writer's log
        wh.flush()
        wh.append(conversation("b"))
        assert count(reader) == 18  # parts and log together, nothing twice
        wh.compact()
        assert count(reader) == 18
        sessions = reader.sql("select session_id, messages, runs from sessions order by 1").to_pylist()
        assert sessions == [
            {"session_id": "a", "messages": 4, "runs": 2},
            {"session_id": "b", "messages": 4, "runs": 2},
        ]
    finally:
        reader.close()


def test_sql_is_read_only(wh: warehouse.Warehouse, tmp_path: Path) -> None:
    wh.append([event()])
    target = tmp_path / "out.csv"
    for statement in [
        "insert into events select * from events",
        "delete from events",
        "create table x as select 1",
        f"copy (select 1) to '{target}'",
        "attach ':memory:' as other",
        "set threads = 1",
        "pragma version",
        "drop view events",
    ]:
        with pytest.raises(warehouse.ReadOnlyError, match="refused"):
            wh.sql(statement)
    assert not target.exists()
    with pytest.raises(warehouse.QueryError, match="one SQL statement"):
        wh.sql("select 1; select 2")
    assert count(wh) == 1


def test_sql_errors_are_clear_and_change_nothing(wh: warehouse.Warehouse) -> None:
    wh.append([event()])
    with pytest.raises(warehouse.QueryError, match="syntax error"):
        wh.sql("selec * from events")
    with pytest.raises(warehouse.QueryError, match="no_such_table"):
        wh.sql("select * from no_such_table")
    assert count(wh) == 1


def test_parameters_are_bound_not_formatted(wh: warehouse.Warehouse) -> None:
    wh.append([event(user_id="u1"), event(user_id="o'brien", session_id="s2")])
    rows = wh.sql("select session_id from sessions where user_id = ?", ["o'brien"]).to_pylist()
    assert rows == [{"session_id": "s2"}]
    named = wh.sql("select count(*) from events where user_id = $u", {"u": "u1"})
    assert named.column(0)[0].as_py() == 1


def test_views_summarise_sessions_and_runs(wh: warehouse.Warehouse) -> None:
    wh.append(conversation("s1", turns=3))
    wh.append([event("session.updated", session_id="s1", model="anthropic/claude-opus-4-1")])
    wh.flush()
    wh.append([event("run.started", session_id="s1", run_id="open")])
    wh.append(conversation("s2", turns=1, user_id="u2"))
    wh.append([event("session.closed", session_id="s2", user_id="u2")])
    s = {r["session_id"]: r for r in wh.sql("select * from sessions").to_pylist()}
    assert s["s1"]["model"] == "anthropic/claude-opus-4-1"  # the latest one
    assert s["s1"]["status"] == "running"
    assert (s["s1"]["runs"], s["s1"]["messages"], s["s1"]["tokens"]) == (3, 6, 360)
    assert s["s1"]["cost_usd"] == pytest.approx(0.03)
    assert s["s2"]["status"] == "closed" and s["s2"]["closed_at"] is not None
    assert s["s2"]["user_id"] == "u2"
    runs = wh.sql("select * from runs where session_id = 's1' order by started_at").to_pylist()
    assert [r["status"] for r in runs] == ["ok", "ok", "ok", "running"]
    assert runs[0]["latency_ms"] == 500.0 and runs[0]["ttft_ms"] == 120.0
    assert runs[0]["input_tokens"] == 100 and runs[0]["output_tokens"] == 20
    transcript = wh.sql("select role, content from messages where session_id = 's1' order by ts")
    assert transcript.column("content").to_pylist() == ["q0", "a0", "q1", "a1", "q2", "a2"]


def test_events_come_back_in_utc(wh: warehouse.Warehouse) -> None:
    wh.append([event(ts="2026-11-28T23:30:00-02:00")])
    wh.flush()
    ts = wh.sql("select ts from events").column(0)
    assert ts.type == pa.timestamp("us", tz="UTC")
    assert ts[0].as_py() == dt.datetime(2026, 11, 29, 1, 30, tzinfo=dt.UTC)
    files = wh.info()["files"]
    assert files == 1
    assert any("date=2026-11-29" in str(p) for p in (wh.root / "events").rglob("*.parquet"))


def test_closed_warehouse_refuses_calls(data_dir: Path) -> None:
    wh = warehouse.open(data_dir)
    wh.close()
    wh.close()  # twice is fine
    with pytest.raises(warehouse.ClosedError):
        wh.sql("select 1")
    with pytest.raises(warehouse.ClosedError):
        wh.append([event()])


def test_storage_the_version_cannot_reach_is_refused_clearly() -> None:
    """s3:// works (tests/test_s3.py); other schemes, or an s3 URL without a bucket, fail at once."""
    with pytest.raises(warehouse.WarehouseError, match="ftp:// is not a storage this version supports"):
        warehouse.open("ftp://host/prefix")
    with pytest.raises(warehouse.WarehouseError, match="expected s3://bucket"):
        warehouse.open("s3:///prefix")


def test_reader_of_a_missing_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(warehouse.WarehouseError, match="no warehouse at"):
        warehouse.open(tmp_path / "nowhere", read_only=True)


def test_default_folder_is_cerver_data_env(data_dir: Path) -> None:
    with warehouse.open() as wh:
        assert wh.root == data_dir


def test_a_reader_opened_before_the_first_writer_follows_it(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    reader = warehouse.open(data_dir, read_only=True)
    try:
        assert count(reader) == 0
        with warehouse.Warehouse(data_dir, policy=MANUAL, segment_bytes=1) as wh:
            for i in range(3):
                wh.append([event(session_id=f"s{i}")])
            wh.flush()  # drops the flushed segments the reader has never seen
            wh.append([event(session_id="tail")])
            assert count(reader) == 4
    finally:
        reader.close()


def test_ids_are_unique_within_a_tenant_not_across(wh: warehouse.Warehouse) -> None:
    shared = "same-id"
    assert wh.append([event(event_id=shared, tenant_id="a")]).accepted == 1
    assert wh.append([event(event_id=shared, tenant_id="b")]).accepted == 1  # b's own event
    wh.flush()
    assert wh.append([event(event_id=shared, tenant_id="a"), event(event_id=shared, tenant_id="c")]) == (
        warehouse.AppendResult(accepted=1, duplicates=1)
    )
    both = wh.append([event(event_id="pair", tenant_id="a"), event(event_id="pair", tenant_id="b")])
    assert both.accepted == 2
    assert count(wh) == 5

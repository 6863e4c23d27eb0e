"""The warehouse with its table in object storage: a real S3 API (moto's server) on loopback.

Nothing is mocked: deltalake, pyarrow and DuckDB talk HTTP to the moto server exactly as
they would to S3, configured by the standard AWS variables; the log stays on local disk.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation, event
from tests.moto_server import keys, new_bucket
from warehouse.sandbox import Refused


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server, the AWS variables pointing at it."""
    return new_bucket(monkeypatch)


def count(wh: warehouse.Warehouse) -> int:
    return wh.sql("select count(*) from events").column(0)[0].as_py()


def test_append_read_flush_compact_and_reopen_on_s3(s3_url: str, tmp_path: Path) -> None:
    wal = tmp_path / "local"
    with warehouse.open(s3_url, wal=wal, policy=MANUAL, vacuum_grace_s=0) as wh:
        assert wh.root == wal and wh.url == s3_url
        for i in range(4):
            wh.append(conversation(f"s{i}", turns=2, tenant_id=f"t{i % 2}"))
            assert count(wh) == 9 * (i + 1)  # read your writes, before any flush
            wh.flush()
        assert wh.info()["tail_events"] == 0 and wh.info()["files"] == 4
        assert all(f.startswith(s3_url + "/events/date=") for f in wh._snap.files)
        assert any(k.endswith(".parquet") for k in keys(s3_url)) and not list(wal.rglob("*.parquet"))
        sessions = wh.sql("select session_id, messages from sessions order by 1").to_pylist()
        assert sessions == [{"session_id": f"s{i}", "messages": 4} for i in range(4)]

        result = wh.compact()
        assert (result.files_before, result.files_after, result.vacuumed) == (4, 1, 4)
        assert sum(k.endswith(".parquet") for k in keys(s3_url)) == 1  # the old ones vacuumed
        assert count(wh) == 36
        (live,) = wh._snap.files
        with pq.ParquetFile(wh.location.arrow_filesystem().open_input_file(wh.location.path_of(live))) as f:
            rows = f.read(columns=["tenant_id", "session_id", "ts"]).to_pylist()
        assert rows == sorted(rows, key=lambda r: (r["tenant_id"], r["session_id"], r["ts"]))
        wh.append([event(session_id="tail")])  # left in the log at close? no: close flushes it
    with warehouse.open(s3_url, wal=wal, policy=MANUAL) as again:
        assert count(again) == 37 and again.info()["tail_events"] == 0


def test_a_writer_that_died_replays_its_local_log_into_the_s3_table(s3_url: str, tmp_path: Path) -> None:
    wal = tmp_path / "local"
    wh = warehouse.open(s3_url, wal=wal, policy=MANUAL)
    flushed, logged = conversation("flushed"), conversation("logged")
    wh.append(flushed)
    wh.flush()
    wh.append(logged)
    wh._lock.release()  # as if the process died: no flush, no close
    again = warehouse.open(s3_url, wal=wal, policy=MANUAL)
    try:
        assert again.info()["tail_events"] == 9  # replayed from the local log, not the table
        assert again.append(flushed + logged).duplicates == 18
        again.flush()
        ids = again.sql("select event_id from events").column(0).to_pylist()
        assert sorted(ids) == sorted(e["event_id"] for e in flushed + logged)
    finally:
        again.close()
        wh._shut(flush=False)  # the dead writer's threads, which a real crash takes with it
    with warehouse.open(s3_url, read_only=True) as reader:  # another machine: the table alone
        assert count(reader) == 18


def test_duckdb_reads_s3_files_through_the_registered_filesystem_not_an_extension(
    s3_url: str, tmp_path: Path
) -> None:
    with warehouse.open(s3_url, wal=tmp_path / "local", policy=MANUAL) as wh:
        wh.append(conversation("s"))
        wh.flush()
        assert wh.info()["tail_events"] == 0
        got = wh.sql("select count(*) as n, count(distinct session_id) as s from events").to_pylist()
        assert got == [{"n": 9, "s": 1}]
        loaded = wh.sql(
            "select extension_name from duckdb_extensions() where loaded and extension_name = 'httpfs'"
        )
        assert loaded.num_rows == 0, "DuckDB used its httpfs extension instead of the registered filesystem"


def test_confined_queries_read_s3_but_a_tenant_cannot_reach_the_bucket(s3_url: str, tmp_path: Path) -> None:
    with warehouse.open(s3_url, wal=tmp_path / "local", policy=MANUAL) as wh:
        wh.append(conversation("mine", tenant_id="acme") + conversation("theirs", tenant_id="globex"))
        wh.flush()
        wh.append([event(session_id="fresh", tenant_id="acme")])
        answer = wh.confined_sql("acme", "select session_id, count(*) as n from events group by 1 order by 1")
        assert answer.table.to_pylist() == [{"session_id": "fresh", "n": 1}, {"session_id": "mine", "n": 9}]
        (file,) = wh._snap.files
        for sql in (
            f"select * from read_parquet('{file}')",
            f"select * from '{file}'",
            f"select * from read_parquet('{s3_url}/events/*/*.parquet')",
            f"select * from glob('{s3_url}/**')",
        ):
            with pytest.raises(Refused):
                wh.confined_sql("acme", sql)

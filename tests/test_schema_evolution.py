"""Adding a nullable column later rewrites nothing: Delta schema evolution."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import warehouse
from tests.conftest import MANUAL
from tests.factory import event

V2 = warehouse.SCHEMA.append(pa.field("region", pa.string()))


def _parquet_files(data_dir: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (data_dir / "events").rglob("*.parquet")}


def test_a_new_nullable_column_leaves_existing_files_untouched(data_dir: Path) -> None:
    with warehouse.open(data_dir, policy=MANUAL) as v1:
        v1.append([event(session_id="old") for _ in range(3)])
        v1.flush()
        v1.append([event(session_id="old-tail")])  # still in the log when v2 opens
    before = _parquet_files(data_dir)

    with warehouse.open(data_dir, policy=MANUAL, schema=V2) as v2:
        v2.append([event(session_id="new", region="eu-west")])
        rows = v2.sql("select session_id, region from events order by ts").to_pylist()
        assert [r["region"] for r in rows] == [None, None, None, None, "eu-west"]
        v2.flush()
    after = _parquet_files(data_dir)
    assert {p: after[p] for p in before} == before  # same files, same bytes, same times
    assert len(after) > len(before)

    with warehouse.open(data_dir, read_only=True) as reader:  # code that only knows v1
        assert "region" in reader.sql("select * from events").column_names
        got = reader.sql("select count(*) from events where region = 'eu-west'").column(0)[0].as_py()
        assert got == 1
    with warehouse.open(data_dir, policy=MANUAL) as v1_again:  # a v1 writer keeps the column
        v1_again.append([event(session_id="v1-again")])
        v1_again.compact()
        rows = v1_again.sql("select session_id, region from events order by ts").to_pylist()
        assert [r["region"] for r in rows] == [None, None, None, None, "eu-west", None]


def test_compacting_a_day_written_before_the_new_column(data_dir: Path) -> None:
    with warehouse.open(data_dir, policy=MANUAL) as v1:
        for _ in range(2):
            v1.append([event(ts="2026-10-01T10:00:00Z", session_id="old-day")])
            v1.flush()
    with warehouse.open(data_dir, policy=MANUAL, schema=V2) as v2:
        v2.append([event(session_id="new-day", region="eu")])
        v2.flush()
        result = v2.compact()
        assert result.partitions == 1 and result.files_after == 2
        rows = v2.sql("select session_id, region from events order by ts").to_pylist()
        assert rows == [
            {"session_id": "old-day", "region": None},
            {"session_id": "old-day", "region": None},
            {"session_id": "new-day", "region": "eu"},
        ]

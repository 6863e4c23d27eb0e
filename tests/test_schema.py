"""Validation: a bad batch names the event and field at fault, and writes nothing."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pytest

import warehouse
from tests.factory import event
from warehouse.schema import SCHEMA, to_table


def test_schema_is_v1_as_designed() -> None:
    assert SCHEMA.metadata[b"cerver.schema_version"] == b"1"
    assert SCHEMA.names == [
        "event_id",
        "ts",
        "tenant_id",
        "user_id",
        "session_id",
        "parent_session_id",
        "run_id",
        "type",
        "role",
        "content",
        "harness",
        "model",
        "compute",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "latency_ms",
        "ttft_ms",
        "status",
        "error",
        "attrs",
    ]
    assert SCHEMA.field("ts").type == pa.timestamp("us", tz="UTC")
    assert SCHEMA.field("input_tokens").type == pa.int64()
    assert SCHEMA.field("cost_usd").type == pa.float64()


@pytest.mark.parametrize(
    ("bad", "field", "needle"),
    [
        ({"event_id": None}, "event_id", "required"),
        ({"event_id": ""}, "event_id", "must not be empty"),
        ({"tenant_id": None}, "tenant_id", "required"),
        ({"session_id": None}, "session_id", "required"),
        ({"ts": None}, "ts", "required"),
        ({"type": "bogus"}, "type", "'bogus' is not one of"),
        ({"role": "robot"}, "role", "'robot' is not one of"),
        ({"input_tokens": "12"}, "input_tokens", "expected an integer"),
        ({"input_tokens": 1.5}, "input_tokens", "expected an integer"),
        ({"input_tokens": True}, "input_tokens", "expected an integer"),
        ({"cost_usd": "cheap"}, "cost_usd", "expected a number"),
        ({"model": 7}, "model", "expected a string"),
        ({"ts": "yesterday"}, "ts", "not an ISO 8601 timestamp"),
        ({"ts": 1700000000}, "ts", "expected an ISO 8601 string or datetime"),
        ({"surprise": 1}, "surprise", "unknown field"),
    ],
)
def test_bad_event_is_named_by_index_and_field(bad: dict, field: str, needle: str) -> None:
    batch = [event(), event(), event() | bad, event()]
    with pytest.raises(warehouse.ValidationError) as info:
        to_table(batch)
    assert info.value.index == 2
    assert info.value.field == field
    assert needle in str(info.value)
    assert str(info.value).startswith(f"event 2, field {field!r}")


def test_a_bad_batch_writes_nothing(wh: warehouse.Warehouse) -> None:
    wh.append([event(session_id="kept")])
    with pytest.raises(warehouse.ValidationError):
        wh.append([event(session_id="lost"), event(session_id="lost", type="nope")])
    assert wh.sql("select session_id from events").column(0).to_pylist() == ["kept"]
    wh.flush()
    assert wh.sql("select count(*) from events").column(0)[0].as_py() == 1


def test_not_a_list_is_refused() -> None:
    with pytest.raises(warehouse.ValidationError, match="expected a list"):
        to_table({"event_id": "x"})  # type: ignore[arg-type]
    with pytest.raises(warehouse.ValidationError, match="event 1: expected an object"):
        to_table([event(), "nope"])  # type: ignore[list-item]


def test_timestamps_are_normalised_to_utc_microseconds() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    table = to_table(
        [
            event(ts="2026-11-28T10:00:00.123456Z"),
            event(ts="2026-11-28T12:00:00+02:00"),
            event(ts=dt.datetime(2026, 11, 28, 12, 0, tzinfo=plus2)),
            event(ts=dt.datetime(2026, 11, 28, 10, 0)),  # naive means UTC
        ]
    )
    got = table.column("ts").to_pylist()
    assert got[0] == dt.datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert got[1] == got[2] == got[3] == dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)


def test_structured_content_and_attrs_are_kept_as_json_text() -> None:
    table = to_table([event(content=[{"type": "text", "text": "hé"}], attrs={"k": [1, 2]})])
    assert table.column("content")[0].as_py() == '[{"type":"text","text":"hé"}]'
    assert table.column("attrs")[0].as_py() == '{"k":[1,2]}'


@pytest.mark.parametrize("size", [1, 100])  # the small-batch path, and the columnar one
def test_structured_values_are_converted_without_touching_the_callers_dicts(size: int) -> None:
    batch = [event(attrs={"i": i}) if i % 2 else event(attrs="{}") for i in range(size)]
    before = [dict(e) for e in batch]
    table = to_table(batch)
    assert table.column("attrs").to_pylist() == [f'{{"i":{i}}}' if i % 2 else "{}" for i in range(size)]
    assert batch == before


def test_arrow_tables_are_cast_and_checked() -> None:
    good = pa.table(
        {
            "event_id": ["a"],
            "ts": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
            "tenant_id": ["t"],
            "session_id": ["s"],
            "type": ["message"],
            "input_tokens": pa.array([5], pa.int32()),
        }
    )
    table = to_table(good)
    assert table.schema == SCHEMA
    assert table.column("input_tokens").type == pa.int64()
    bad = good.set_column(5, "input_tokens", pa.array(["five"]))
    with pytest.raises(warehouse.ValidationError, match="event 0, field 'input_tokens'"):
        to_table(bad)
    with pytest.raises(warehouse.ValidationError, match="field 'type'"):
        to_table(good.set_column(4, "type", pa.array(["nope"])))


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [warehouse.new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i[14] == "7" for i in ids)  # UUID version 7


def test_a_forked_child_draws_other_ids() -> None:
    """The id generator's random state is reseeded in a forked child: no two processes share ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its ids, then leave without running the parent's cleanup
        os.write(write, "\n".join(warehouse.new_event_id() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    mine = {warehouse.new_event_id() for _ in range(200)}
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(theirs) == 200 and not mine & theirs
    assert {i[-12:] for i in mine}.isdisjoint(i[-12:] for i in theirs)  # the random tails differ too


def test_small_batches_read_iso_timestamps_and_structures_as_the_general_path_does() -> None:
    """REST events arrive a few at a time with text timestamps and JSON attrs: same table either way."""
    from warehouse import schema

    batch = [
        event(ts="2026-11-28T10:00:00Z", attrs={"k": 1}),
        event(ts="2026-11-28T12:00:00+02:00", content=[{"type": "text", "text": "hé"}]),
        event(ts="2026-11-28T10:00:00.123456"),
    ]
    before = [dict(e) for e in batch]
    small = schema._small_table(batch, SCHEMA)
    assert small is not None
    general = schema._table_from_rows(batch, SCHEMA)
    assert small.equals(general)
    assert small.column("ts").to_pylist()[:2] == [dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)] * 2
    assert batch == before
    assert schema._small_table([event(ts="yesterday")], SCHEMA) is None  # left to the general path

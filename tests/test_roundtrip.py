"""Any valid batch comes back identical through `events`, from the tail and from Parquet."""

from __future__ import annotations

import datetime as dt
import tempfile

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warehouse
from tests.conftest import MANUAL
from warehouse import dedup, schema
from warehouse.schema import EVENT_TYPES, ROLES, SCHEMA, to_table

text = st.text(max_size=40)
maybe_text = st.none() | text
ids = st.text(min_size=1, max_size=30)
tokens = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.none() | st.floats(allow_nan=False, width=64)
timestamps = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)

events = st.fixed_dictionaries(
    {
        "ts": timestamps,
        "tenant_id": ids,
        "session_id": ids,
        "type": st.sampled_from(sorted(EVENT_TYPES)),
    },
    optional={
        "user_id": maybe_text,
        "parent_session_id": maybe_text,
        "run_id": maybe_text,
        "role": st.none() | st.sampled_from(sorted(ROLES)),
        "content": maybe_text,
        "harness": maybe_text,
        "model": maybe_text,
        "compute": maybe_text,
        "input_tokens": tokens,
        "output_tokens": tokens,
        "cache_read_tokens": tokens,
        "cache_write_tokens": tokens,
        "cost_usd": floats,
        "latency_ms": floats,
        "ttft_ms": floats,
        "status": maybe_text,
        "error": maybe_text,
        "attrs": maybe_text,
    },
)


def _with_ids(batch: list[dict]) -> list[dict]:
    return [e | {"event_id": f"e{i:04d}"} for i, e in enumerate(batch)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=1, max_size=30).map(_with_ids))
def test_any_valid_batch_round_trips(batch: list[dict]) -> None:
    expected = to_table(batch).to_pylist()
    with tempfile.TemporaryDirectory() as folder, warehouse.open(folder, policy=MANUAL) as wh:
        assert wh.append(batch).accepted == len(batch)
        query = "select * from events order by event_id"
        from_tail = wh.sql(query)
        assert from_tail.schema.names == SCHEMA.names
        assert from_tail.to_pylist() == expected
        wh.flush()
        assert wh.sql(query).to_pylist() == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=1, max_size=8).map(_with_ids))
def test_small_batches_take_a_shortcut_to_the_same_table(batch: list[dict]) -> None:
    """A run's few events skip the columnar checks; what they become must not change."""
    general = schema._table_from_rows(batch, SCHEMA)
    schema._check_values(general)
    small = schema._small_table(batch, SCHEMA)
    assert small is not None  # every value here is plainly typed
    assert small.equals(general, check_metadata=True)
    assert small.schema == SCHEMA


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["t1", "t2", "ü"]), st.sampled_from(["a", "b", "c", "dé"])), max_size=40
    )
)
def test_dedup_hashes_agree_for_small_and_large_batches(keys: list[tuple[str, str]]) -> None:
    """Small batches hash in plain Python; the index only works if both paths give the same hashes."""
    table = pa.table({"tenant_id": [t for t, _ in keys], "event_id": [e for _, e in keys]})
    hashes, first = dedup.hash_and_firsts(table)
    assert hashes.tolist() == dedup.hash_keys(table).tolist()
    assert first.tolist() == [keys.index(k) == i for i, k in enumerate(keys)]

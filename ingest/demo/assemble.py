"""The batch as an Arrow table of exactly `warehouse.SCHEMA`: ids, strings and JSON attrs, all columnar.

Ids come from the generator's bits and the events' timestamps (UUIDv7 for events,
`sess_…` and `run_…` for sessions and runs, as the API mints them), so a seed always makes
the same ones. Attrs that name other ids (tool call ids, spawned and selected children,
retry attempts) are joined from pieces with Arrow's string kernels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import warehouse
from ingest.demo import ids, pools
from ingest.demo.blocks import BUILT, Events
from ingest.demo.catalog import ATTEMPT_FAILURES, COMPUTES, HARNESSES, TOOL_CALL_ID_PREFIX
from ingest.demo.population import Population
from ingest.demo.prices import PricedModels
from ingest.demo.runs import MAX_ATTEMPTS
from ingest.demo.sessions import Sessions
from ingest.demo.texts import RUN_ERRORS, json_string
from ingest.demo.tools import TOOL_NAMES
from ingest.demo.turns import Turns


@dataclass(frozen=True)
class Ids:
    """The batch's session, run and tool-call ids."""

    sessions: pa.StringArray
    runs: pa.StringArray
    calls: pa.StringArray


def assemble(
    rng: np.random.Generator,
    ev: Events,
    ts: np.ndarray,
    s: Sessions,
    t: Turns,
    people: Population,
    models: PricedModels,
    tenant: str,
) -> pa.Table:
    """The events as a table ready for `Warehouse.append`."""
    made = _ids(rng, ev, ts, s, t)
    c = ev.columns
    session = ev.session
    parent = s.parent[session]
    columns = {
        "event_id": ids.as_uuids(ids.uuid7_bytes(rng, ts // 1000)),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "tenant_id": ids.repeated(tenant, len(ev)),
        "user_id": people.user_ids.take(pa.array(s.user[session])),
        "session_id": made.sessions.take(pa.array(session)),
        "parent_session_id": _take(made.sessions, parent),
        "run_id": _take(made.runs, c["turn"]),
        "type": _take(pa.array(pools.TYPES), ev.type),
        "role": _take(pa.array(pools.ROLES), c["role"]),
        "content": _take(pools.CONTENT.array(), c["content"]),
        "harness": _take(pa.array(HARNESSES), c["harness"]),
        "model": _take(pa.array(models.names), c["model"]),
        "compute": _take(pa.array(COMPUTES), c["compute"]),
        "input_tokens": _ints(c["input_tokens"]),
        "output_tokens": _ints(c["output_tokens"]),
        "cache_read_tokens": _ints(c["cache_read_tokens"]),
        "cache_write_tokens": pa.nulls(len(ev), pa.int64()),
        "cost_usd": _floats(c["cost_usd"]),
        "latency_ms": _floats(c["latency_ms"]),
        "ttft_ms": _floats(c["ttft_ms"]),
        "status": _take(pa.array(pools.STATUSES), c["status"]),
        "error": _take(pools.ERRORS.array(), c["error"]),
        "attrs": _attrs(ev, s, t, made, models),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=warehouse.SCHEMA)


def _ids(rng: np.random.Generator, ev: Events, ts: np.ndarray, s: Sessions, t: Turns) -> Ids:
    created = np.flatnonzero(ev.type == pools.type_code("session.created"))
    session_ms = np.zeros(len(s), np.int64)
    session_ms[ev.session[created]] = ts[created] // 1000
    started = np.flatnonzero(ev.type == pools.type_code("run.started"))
    run_ms = np.zeros(len(t), np.int64)
    run_ms[ev.columns["turn"][started]] = ts[started] // 1000
    harness = t.harness[t.calls.turn]
    calls = ids.random_bytes(rng, len(harness), 12)
    by_harness = [(np.flatnonzero(harness == HARNESSES.index(h)), p) for h, p in TOOL_CALL_ID_PREFIX.items()]
    parts = [ids.as_prefixed_hex(calls[at], prefix) for at, prefix in by_harness]
    order = np.concatenate([at for at, _ in by_harness])
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return Ids(
        sessions=ids.as_prefixed_hex(ids.uuid7_bytes(rng, session_ms), "sess_"),
        runs=ids.as_prefixed_hex(ids.uuid7_bytes(rng, run_ms), "run_"),
        calls=pa.concat_arrays(parts).take(pa.array(inverse)) if len(order) else pa.array([], pa.string()),
    )


def _take(pool: pa.Array, codes: np.ndarray) -> pa.Array:
    """pool[code] per element; a negative code is null."""
    return pool.take(pa.array(codes, type=pa.int64(), mask=codes < 0))


def _ints(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.int64(), mask=values < 0)


def _floats(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def _attrs(ev: Events, s: Sessions, t: Turns, made: Ids, models: PricedModels) -> pa.Array:
    """Fixed attrs from their pool; the rest built per kind and appended to the pool for one take."""
    codes = ev.columns["attrs"].copy()
    built = ev.columns["built"]
    ref = ev.columns["ref"]
    pieces = [pools.ATTRS.array()]
    offset = len(pools.ATTRS.strings)
    builders = {
        "tool.call": lambda r: _tool_call(t, made, r),
        "tool.result": lambda r: _join('{"call_id":"', made.calls.take(pa.array(r)), '"}'),
        "attempts": lambda r: _attempts(t, models, r),
        "session.spawned": lambda r: _spawned(s, made, models, r),
        "session.selected": lambda r: _join('{"child_session_id":"', made.sessions.take(pa.array(r)), '"}'),
    }
    for k, name in enumerate(BUILT):
        at = np.flatnonzero(built == k)
        if len(at):
            pieces.append(builders[name](ref[at]))
            codes[at] = offset + np.arange(len(at))
            offset += len(at)
    return _take(pa.concat_arrays([p.cast(pa.string()) for p in pieces]), codes)


def _join(*parts: object) -> pa.Array:
    """Strings and string arrays concatenated element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _tool_call(t: Turns, made: Ids, call: np.ndarray) -> pa.Array:
    names = pa.array([json_string(n) for n in TOOL_NAMES]).take(pa.array(t.calls.tool[call]))
    return _join('{"name":', names, ',"call_id":"', made.calls.take(pa.array(call)), '"}')


def _spawned(s: Sessions, made: Ids, models: PricedModels, child: np.ndarray) -> pa.Array:
    variants = []
    for m in models.names:
        for h in HARNESSES:
            for c in (None, *COMPUTES):
                compute = "null" if c is None else f'"{c}"'
                variants.append(f'{{"model":"{m}","harness":"{h}","compute":{compute}}}')
    at = (s.model[child] * len(HARNESSES) + s.harness[child]) * (len(COMPUTES) + 1) + s.compute[child] + 1
    variant = pa.array(variants).take(pa.array(at))
    return _join('{"child_session_id":"', made.sessions.take(pa.array(child)), '","variant":', variant, "}")


def _attempts(t: Turns, models: PricedModels, turn: np.ndarray) -> pa.Array:
    """`{"attempts": [...]}`: the failed attempts on the session's model, then the one that answered."""
    r = t.runs
    names = np.array(models.names, dtype=object)
    failed_head = pa.array([f'{{"model":"{m}","ok":false,"ms":' for m in names])
    ok_head = pa.array([f'{{"model":"{m}","ok":true,"ms":' for m in names])
    failures = [(status, message) for (status, _), message in zip(ATTEMPT_FAILURES, RUN_ERRORS["error"])]
    failures.append((None, RUN_ERRORS["timeout"][0]))  # kind -1, the last entry: a timed-out attempt
    tails = [
        f',"status":{json.dumps(status)},"error":{json_string(message)}}}' for status, message in failures
    ]
    tail_pool = pa.array(tails)
    items = []
    for k in range(MAX_ATTEMPTS):
        present = k < r.failed_attempts[turn]
        kind = r.attempt_kind[turn, k]
        ms = pc.cast(pa.array(r.attempt_ms[turn, k]), pa.string())
        item = _join(
            failed_head.take(pa.array(t.model[turn])), ms, tail_pool.take(pa.array(kind % len(tails)))
        )
        items.append(pc.if_else(pa.array(present), item, pa.nulls(len(turn), pa.string())))
    answered = ~np.isnan(r.last_attempt_ms[turn])
    last_ms = pc.cast(pa.array(np.nan_to_num(np.round(r.last_attempt_ms[turn], 3))), pa.string())
    last = _join(ok_head.take(pa.array(r.model[turn])), last_ms, "}")
    items.append(pc.if_else(pa.array(answered), last, pa.nulls(len(turn), pa.string())))
    listed = pc.binary_join_element_wise(*items, ",", null_handling="skip")
    return _join('{"attempts":[', listed, "]}")

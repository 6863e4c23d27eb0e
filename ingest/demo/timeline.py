"""From gaps to timestamps: every session's events strictly in order, children inside their fan-out.

A top-level session starts when the population says; a child starts just after the
`session.spawned` that names it. The parent's next event after a fan-out waits for its
slowest child, so a selection always follows every child's answer. A session family
(a parent and its children) that would run past `end` is moved earlier as a whole.
"""

from __future__ import annotations

import numpy as np

from ingest.demo.blocks import Events
from ingest.demo.pools import BUDGET, type_code
from ingest.demo.population import US_PER_HOUR
from ingest.demo.sessions import Sessions


def place(rng: np.random.Generator, ev: Events, s: Sessions, turns: int, end_us: int) -> np.ndarray:
    """Each event's ts in microseconds since the epoch; fills in run latencies as ts differences."""
    counts = np.bincount(ev.session, minlength=len(s))
    first = np.cumsum(counts) - counts
    last = first + counts - 1
    gap = ev.gap_us.copy()
    spawned = np.flatnonzero(ev.type == type_code("session.spawned"))
    child = ev.columns["ref"][spawned]
    parent = ev.session[spawned]

    rel = _since_start(gap, first, counts)
    slowest = np.zeros(len(s), np.int64)
    np.maximum.at(slowest, parent, rel[last[child]])
    last_spawned = np.full(len(s), -1)
    np.maximum.at(last_spawned, parent, spawned)
    fanned = np.flatnonzero(last_spawned >= 0)
    following = last_spawned[fanned] + 1
    waits = following <= last[fanned]  # nothing follows a fan-out that ends its (unclosed) session
    gap[following[waits]] += slowest[fanned[waits]]
    rel = _since_start(gap, first, counts)

    start = s.start_us.copy()
    start[child] = start[parent] + rel[spawned]  # parents are top-level sessions: their start is known
    ts = start[ev.session] + rel
    family = np.where(s.parent >= 0, s.parent, np.arange(len(s)))
    latest = np.zeros(len(s), np.int64)
    np.maximum.at(latest, family[ev.session], ts)
    overrun = latest - (end_us - 1)
    # Moved back by its overrun and a little more, so that no two families end on the same instant.
    overrun = np.where(overrun > 0, overrun + rng.integers(0, US_PER_HOUR, len(s)), 0)
    ts -= overrun[family[ev.session]]
    _latencies(ev, ts, turns)
    return ts


def _since_start(gap: np.ndarray, first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = np.cumsum(gap)
    return total - np.repeat(total[first] - gap[first], counts)


def _latencies(ev: Events, ts: np.ndarray, turns: int) -> None:
    """A run's latency is the time from its start to its end (budget refusals record none)."""
    turn = ev.columns["turn"]
    started = np.zeros(turns, np.int64)
    at = np.flatnonzero(ev.type == type_code("run.started"))
    started[turn[at]] = ts[at]
    ends = np.flatnonzero(
        np.isin(ev.type, [type_code("run.completed"), type_code("run.failed")])
        & (ev.columns["status"] != BUDGET)
    )
    ev.columns["latency_ms"][ends] = (ts[ends] - started[turn[ends]]) / 1000.0

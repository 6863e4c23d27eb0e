"""`cerver demo`: a realistic synthetic workload, written through `Warehouse.append`.

import warehouse
from ingest.demo import generate
with warehouse.open("cerver-data") as wh:
    summary = generate(wh, sessions=2_000, seed=7)

Many users with several sessions each, a mix of models (priced from litellm's map),
harnesses and compute providers, fan-outs with a selected winner, errors, retries and
fallbacks, heavy-tailed latencies that differ per model, over the weeks before `end`.
The same seed and parameters always make the same events, ids included, so a second run
on the same folder adds nothing. Generated column by column (numpy, then Arrow) in
batches of a few hundred thousand events. The conventions: docs/demo.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import warehouse
from ingest.demo import assemble, layout, population, prices, sessions, timeline, turns

DEFAULT_SESSIONS = 2_000
DEFAULT_SEED = 7
DEFAULT_WEEKS = 6
DEFAULT_END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # fixed, never "now": the demo is reproducible
DEFAULT_TENANT = "default"  # the server's default tenant (api.auth.DEFAULT_TENANT)
SESSIONS_PER_BATCH = 8_192  # about 300,000 events: the warehouse's sweet spot for one append


@dataclass
class DemoSummary:
    """What a demo run wrote. Updated after every batch while it runs."""

    seed: int
    tenant: str
    start: dt.datetime
    end: dt.datetime
    planned: int  # top-level sessions asked for
    done: int = 0  # top-level sessions written so far
    sessions: int = 0  # every session written, fan-out children included
    children: int = 0
    users: int = 0
    runs: int = 0
    events: int = 0
    added: int = 0
    duplicates: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The summary as plain JSON values."""
        out = dict(self.__dict__)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return out


def generate(
    wh: warehouse.Warehouse,
    sessions: int = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
    end: dt.datetime | dt.date = DEFAULT_END,
    weeks: int = DEFAULT_WEEKS,
    tenant: str = DEFAULT_TENANT,
    progress: Callable[[DemoSummary], None] | None = None,
) -> DemoSummary:
    """Write `sessions` top-level sessions (and their fan-out children) of one tenant into `wh`."""
    if sessions < 1 or weeks < 1 or seed < 0 or not tenant:
        raise ValueError("sessions and weeks must be at least 1, seed not negative, tenant not empty")
    end = as_end(end)
    started = time.perf_counter()
    models = prices.resolve()
    people = population.populate(np.random.default_rng([seed, 0]), sessions, weeks, end, models)
    summary = DemoSummary(
        seed, tenant, end - dt.timedelta(weeks=weeks), end, sessions, users=len(people.user_ids)
    )
    for number, at in enumerate(range(0, sessions, SESSIONS_PER_BATCH), start=1):
        batch = slice(at, min(at + SESSIONS_PER_BATCH, sessions))
        table, planned = make_batch(np.random.default_rng([seed, number]), people, batch, models, tenant, end)
        result = wh.append(table)
        _count(summary, table, planned, result)
        summary.done = batch.stop
        summary.seconds = time.perf_counter() - started
        if progress is not None:
            progress(summary)
    return summary


def make_batch(
    rng: np.random.Generator,
    people: population.Population,
    batch: slice,
    models: prices.PricedModels,
    tenant: str,
    end: dt.datetime,
) -> tuple[pa.Table, sessions.Sessions]:
    """One batch's events as a table of exactly `warehouse.SCHEMA`, and the sessions it holds."""
    planned = sessions.plan(rng, people, batch, models)
    planned_turns = turns.plan(rng, planned, models)
    events = layout.lay_out(rng, planned, planned_turns)
    ts = timeline.place(rng, events, planned, len(planned_turns), population.epoch_us(end))
    table = assemble.assemble(rng, events, ts, planned, planned_turns, people, models, tenant)
    return table, planned


def as_end(end: dt.datetime | dt.date) -> dt.datetime:
    """`end` as an aware UTC datetime; a date means its midnight (UTC)."""
    if not isinstance(end, dt.datetime):
        end = dt.datetime(end.year, end.month, end.day)
    return end.replace(tzinfo=dt.UTC) if end.tzinfo is None else end.astimezone(dt.UTC)


def _count(
    summary: DemoSummary, table: pa.Table, planned: sessions.Sessions, result: warehouse.AppendResult
) -> None:
    kinds = pc.value_counts(table.column("type")).to_pylist()
    for item in kinds:
        summary.by_type[item["values"]] = summary.by_type.get(item["values"], 0) + item["counts"]
    summary.sessions += len(planned)
    summary.children += len(planned) - planned.roots
    summary.runs += summary_runs(kinds)
    summary.events += table.num_rows
    summary.added += result.accepted
    summary.duplicates += result.duplicates
    summary.cost_usd += pc.sum(table.column("cost_usd")).as_py() or 0.0


def summary_runs(kinds: list[dict[str, object]]) -> int:
    """Runs among value counts of event types: each ends in one run.completed or run.failed."""
    return sum(int(k["counts"]) for k in kinds if k["values"] in ("run.completed", "run.failed"))

"""The materialised `sessions` view equals the plain aggregate over `events`, at every step."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

import warehouse
from tests.conftest import MANUAL
from warehouse.sandbox import SESSIONS_SQL

# The view's definition written the obvious way (as confined queries run it, one tenant at a
# time): the materialised one must agree.
REFERENCE = SESSIONS_SQL.replace("CREATE VIEW sessions AS", "") + "ORDER BY tenant_id, session_id\n"

TYPES = [
    "session.created",
    "message",
    "run.started",
    "run.completed",
    "run.failed",
    "session.updated",
    "session.closed",
    "usage",
    "tool.call",
]


def _random_events(rng: random.Random, n: int, start: int) -> list[dict]:
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    out = []
    for i in range(start, start + n):
        kind = rng.choice(TYPES)
        out.append(
            {
                "event_id": f"e{i:06d}",
                "ts": t0 + dt.timedelta(seconds=i * 7 + rng.randrange(5), hours=rng.choice([0, 0, 30])),
                "tenant_id": rng.choice(["t1", "t2"]),
                "session_id": f"s{rng.randrange(25)}",
                "type": kind,
                "user_id": rng.choice([None, "u1", "u2", "u3"]),
                "parent_session_id": rng.choice([None, None, None, "p1"]),
                "model": rng.choice([None, "openai/gpt-4o", "anthropic/claude-opus-4-1"]),
                "harness": rng.choice([None, "litellm", "codex"]),
                "compute": rng.choice([None, None, "local", "e2b"]),
                "input_tokens": rng.choice([None, rng.randrange(1000)]),
                "output_tokens": rng.choice([None, rng.randrange(300)]),
                "cost_usd": rng.choice([None, rng.random() / 100]),
            }
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_materialised_sessions_match_the_plain_aggregate(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    query = "SELECT * FROM sessions ORDER BY tenant_id, session_id"
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        reader = warehouse.open(data_dir, read_only=True)
        written = 0
        for step in range(12):
            batch = _random_events(rng, rng.randint(1, 40), written)
            written += len(batch)
            wh.append(batch)
            action = rng.choice(["none", "flush", "flush", "compact"])
            if action == "flush":
                wh.flush()
            elif action == "compact":
                wh.compact()
            for source in (wh, reader):
                got = source.sql(query).to_pylist()
                want = source.sql(REFERENCE).to_pylist()
                # Float sums depend on the order of addition: compare cost to the last bits.
                assert [r | {"cost_usd": pytest.approx(r["cost_usd"], rel=1e-12)} for r in want] == got, (
                    f"step {step} after {action}"
                )
        reader.close()


def test_a_point_lookup_reads_the_summary_and_the_tail(wh: warehouse.Warehouse) -> None:
    rng = random.Random(9)
    wh.append(_random_events(rng, 200, 0))
    wh.flush()
    wh.sql("select count(*) from sessions")
    wh.append(
        [
            {
                "event_id": "late",
                "ts": "2026-12-01T00:00:00Z",
                "tenant_id": "t1",
                "session_id": "s3",
                "type": "session.closed",
            }
        ]
    )
    row = wh.sql(
        "select status, closed_at from sessions where tenant_id = ? and session_id = ?", ["t1", "s3"]
    )
    assert row.to_pylist() == [{"status": "closed", "closed_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC)}]

"""Who uses the demo app and when: users with a heavy-tailed number of sessions, and when each starts.

Roughly one user per four sessions; every user has at least one, a few power users have
dozens or hundreds. Sessions start over the weeks before `end` with a daily rhythm (UTC
office hours of America and Europe), quieter weekends, and traffic that grows over time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingest.demo import ids
from ingest.demo.catalog import HARNESS_SHARE
from ingest.demo.prices import PricedModels
from ingest.demo.texts import APPS, PLAN_SHARE, REGION_SHARE, metadata_index

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
WEEKDAY_SHARE = (1.0, 1.0, 1.0, 0.97, 0.9, 0.42, 0.36)  # Monday first
HOUR_SHARE = (  # UTC
    0.25, 0.20, 0.18, 0.18, 0.20, 0.25, 0.35, 0.50, 0.70, 0.85, 0.95, 1.00,
    1.00, 1.00, 1.05, 1.10, 1.10, 1.05, 0.95, 0.80, 0.65, 0.50, 0.40, 0.30,
)  # fmt: skip
GROWTH = 0.6  # the last day of the window sees this much more traffic than the first
POWER_TAIL = 1.6  # Pareto shape of how sessions spread over users: smaller, heavier tail


@dataclass(frozen=True)
class Population:
    """The users, and every top-level session's user and start, sorted by start."""

    user_ids: pa.StringArray
    favourite_harness: np.ndarray  # per user, an index into HARNESSES
    favourite_model: np.ndarray  # per user, an index into the priced models
    metadata: np.ndarray  # per user, an index into texts.METADATA
    session_user: np.ndarray
    session_start_us: np.ndarray  # microseconds since the epoch, ascending


def populate(
    rng: np.random.Generator, sessions: int, weeks: int, end: dt.datetime, models: PricedModels
) -> Population:
    """Users and the start of `sessions` top-level sessions in the `weeks` before `end`."""
    users = max(1, sessions // 4)
    weights = rng.pareto(POWER_TAIL, users) + 1.0
    extra = rng.multinomial(sessions - users, weights / weights.sum()) if sessions > users else 0
    per_user = np.ones(users, dtype=np.int64) + extra
    session_user = rng.permutation(np.repeat(np.arange(users), per_user))[:sessions]
    starts = np.sort(_starts(rng, len(session_user), weeks, end))
    chat = np.array([m.chat for m in models.specs])
    return Population(
        user_ids=ids.as_prefixed_hex(ids.random_bytes(rng, users, 6), "user_"),
        favourite_harness=rng.choice(len(HARNESS_SHARE), size=users, p=HARNESS_SHARE),
        favourite_model=rng.choice(len(chat), size=users, p=chat / chat.sum()),
        metadata=metadata_index(
            rng.integers(0, len(APPS), users),
            rng.choice(len(PLAN_SHARE), size=users, p=PLAN_SHARE),
            rng.choice(len(REGION_SHARE), size=users, p=REGION_SHARE),
        ),
        session_user=session_user,
        session_start_us=starts,
    )


def _starts(rng: np.random.Generator, n: int, weeks: int, end: dt.datetime) -> np.ndarray:
    days = weeks * 7
    first = end - dt.timedelta(days=days)
    weekday = (first.weekday() + np.arange(days)) % 7
    day_weight = np.array(WEEKDAY_SHARE)[weekday] * (1.0 + GROWTH * np.arange(days) / max(days - 1, 1))
    day = rng.choice(days, size=n, p=day_weight / day_weight.sum())
    hours = np.array(HOUR_SHARE)
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    within = rng.integers(0, US_PER_HOUR, size=n)
    return epoch_us(first) + day * US_PER_DAY + hour * US_PER_HOUR + within


def epoch_us(when: dt.datetime) -> int:
    """Microseconds since the Unix epoch."""
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)

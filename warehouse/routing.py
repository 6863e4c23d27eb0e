"""Which instance owns a session: consistent hashing on the session id.

Several `cerver serve` instances share one table, each writing through its own log. A
session's events must all go to one instance (its owner): that instance's id index then
sees every retry of them, its session cache holds the hot transcript, and its log replays
them after a crash. This is the reference rule a load balancer or a client applies; with
the same instance names, everyone computes the same owner. Adding or removing one of N
instances moves about 1/N of the sessions, not all of them.

    ring = Ring(["cerver-a", "cerver-b"])
    ring.owner("sess-42")   # -> "cerver-a" or "cerver-b", the same everywhere

Points on the ring: the first 8 bytes of MD5 over `"<instance>#<i>"` (i < POINTS), as
ketama does; a session sits at the MD5 of its id and belongs to the next point clockwise.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

POINTS = 160  # per instance: enough for an even spread of sessions


def _position(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big")


class Ring:
    """A consistent-hash ring over instance names."""

    def __init__(self, instances: Iterable[str], points: int = POINTS):
        names = sorted(set(instances))
        if not names:
            raise ValueError("a ring needs at least one instance")
        ring = sorted((_position(f"{name}#{i}"), name) for name in names for i in range(points))
        self._positions = [p for p, _ in ring]
        self._owners = [name for _, name in ring]

    def owner(self, session_id: str) -> str:
        """The instance that owns `session_id`."""
        at = bisect.bisect(self._positions, _position(session_id)) % len(self._positions)
        return self._owners[at]

"""A writer to kill: appends forever and prints each event id once append has returned.

Run as `python -m tests.crash_writer DATA SEED`. It flushes and compacts often, so a
kill lands in the middle of a log write, a flush or a compaction as well as between.
"""

from __future__ import annotations

import random
import sys

import warehouse
from tests.factory import event

POLICY = warehouse.FlushPolicy(rows=400, bytes=1 << 40, age_s=0.2, compact_files=4)


def main(data: str, seed: int) -> None:
    rng = random.Random(seed)
    wh = warehouse.open(data, policy=POLICY)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    n = 0
    while True:
        batch = [event(session_id=f"s{seed}-{rng.randrange(20)}") for _ in range(rng.randint(1, 60))]
        if rng.random() < 0.2:  # a retried batch: its ids must stay exactly once
            batch += batch[: rng.randint(1, len(batch))]
        wh.append(batch)
        out.write("".join(f"{e['event_id']}\n" for e in batch))
        out.flush()
        n += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

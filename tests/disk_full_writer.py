"""A writer whose disk fills up: RLIMIT_FSIZE makes the kernel refuse writes (EFBIG).

Run as `python -m tests.disk_full_writer DATA`. Prints each acknowledged id, then
`error: <message>` for the refused append and `count: N` as its own reads see it.
"""

from __future__ import annotations

import resource
import signal
import sys

import warehouse
from tests.conftest import MANUAL
from tests.factory import event


def main(data: str) -> None:
    wh = warehouse.open(data, policy=MANUAL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    out = sys.stdout
    errors = 0
    while errors < 3:
        batch = [event(content="x" * 500) for _ in range(20)]
        try:
            wh.append(batch)
        except warehouse.StorageError as exc:
            errors += 1
            out.write(f"error: {exc}\n")
            continue
        out.write("".join(f"{e['event_id']}\n" for e in batch))
    out.write(f"count: {wh.sql('select count(*) from events').column(0)[0].as_py()}\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1])

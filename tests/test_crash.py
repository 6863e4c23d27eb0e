"""Durable before acknowledged: SIGKILL a writer at random moments, lose nothing it acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import warehouse

ROOT = Path(__file__).resolve().parent.parent


def _run_and_kill(data: Path, seed: int, rng: random.Random) -> set[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_writer", str(data), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(rng.uniform(0.2, 2.0))
    child.send_signal(signal.SIGKILL)
    out = child.stdout.read()
    child.wait()
    assert child.returncode == -signal.SIGKILL
    lines = out.split(b"\n")[:-1]  # a last line without its newline was never acknowledged
    return {line.decode() for line in lines}


def test_no_acknowledged_event_is_lost_or_doubled_by_sigkill(data_dir: Path) -> None:
    rng = random.Random(20261128)
    acknowledged: set[str] = set()
    for round_ in range(10):
        acknowledged |= _run_and_kill(data_dir, round_, rng)
    assert len(acknowledged) > 1000
    with warehouse.open(data_dir, read_only=True) as reader:  # what a reader sees, before recovery
        assert reader.info()["table_version"] >= 10, "the kills should also land among flushes"
        seen = reader.sql("select event_id from events").column(0).to_pylist()
        assert len(seen) == len(set(seen))
        assert acknowledged <= set(seen)
    with warehouse.open(data_dir) as wh:
        stored = wh.sql("select event_id from events").column(0).to_pylist()
        assert len(stored) == len(set(stored)), "an event was stored twice"
        missing = acknowledged - set(stored)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        wh.compact()
        assert wh.sql("select count(distinct event_id), count(*) from events").to_pylist() == [
            {"count(DISTINCT event_id)": len(stored), "count_star()": len(stored)}
        ]

"""A disk that refuses writes: a clear error, nothing half-written, nothing acknowledged lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import warehouse
from warehouse import wal

ROOT = Path(__file__).resolve().parent.parent


def test_full_disk_fails_the_append_cleanly(data_dir: Path) -> None:
    """The kernel's file-size limit stands in for a full disk: write() fails with EFBIG."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.disk_full_writer", str(data_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    acknowledged = {line for line in lines if not line.startswith(("error: ", "count: "))}
    assert len(errors) == 3
    assert "write to" in errors[0] and "File too large" in errors[0]
    assert lines[-1] == f"count: {len(acknowledged)}"  # the failed batches never became visible
    contents = wal.read_log(data_dir / "wal", 0)
    assert contents.torn_bytes == 0  # the partial record was cut back, not left behind
    with warehouse.open(data_dir) as wh:
        stored = wh.sql("select event_id from events").column(0).to_pylist()
    assert sorted(stored) == sorted(acknowledged)

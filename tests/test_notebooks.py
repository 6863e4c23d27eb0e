"""The notebooks run top to bottom against a real warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_warehouse_tour_runs(data_dir: Path) -> None:
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        wh.append(conversation("a", turns=2))
        wh.flush()
        wh.append(conversation("b", turns=1))
        wh.flush()
    result = subprocess.run(
        [sys.executable, str(NOTEBOOKS / "warehouse_tour.py"), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(NOTEBOOKS.parent)},
    )
    assert result.returncode == 0, result.stderr
    assert "openai/gpt-4o" in result.stdout
    assert "14 flushed events read by Polars" in result.stdout

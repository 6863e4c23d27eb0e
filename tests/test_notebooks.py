"""The notebooks run top to bottom against a real warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import warehouse
from notebooks import build
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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo warehouse, made from scratch the way `cerver demo` makes it."""
    return build.demo_data(tmp_path_factory.mktemp("demo") / "data", sessions=150, seed=3)


@pytest.mark.parametrize("name", sorted(build.NOTEBOOKS))
def test_comparison_notebooks_run_from_scratch_and_draw_every_plot(name: str, demo: Path) -> None:
    """Every cell runs on fresh demo data (a failing cell raises) and every plot is drawn."""
    nb = build.execute(build.notebook(build.NOTEBOOKS[name]), demo)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        if "plt.show()" in cell.source:
            pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert len(pngs) == 1, f"no plot drawn by:\n{cell.source}"


@pytest.mark.parametrize("name", sorted(build.NOTEBOOKS))
def test_committed_notebooks_are_what_build_writes_with_their_outputs(name: str) -> None:
    """The .ipynb in the repository holds build.py's cells and was run (outputs and plots kept)."""
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    expected = build.notebook(build.NOTEBOOKS[name])
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ]
    plots = [
        o
        for c in committed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(plots) == sum("plt.show()" in c.source for c in expected.cells)

"""`cerver query`, run as a process: the listing, parameters, every output format, and its errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.queries_dataset import GPT, OPUS, SONNET, build, load

CERVER = str(Path(sys.executable).with_name("cerver"))


def cerver(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CERVER, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def filled(data_dir: Path) -> Path:
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        load(wh, build())
    return data_dir


def test_list_names_every_query_with_its_parameters() -> None:
    out = cerver("query", "--list").stdout
    assert "cost_by_model: spend, tokens and runs per model, over a time range.\n" in out
    assert "    --param since=1970-01-01  (timestamp) runs started at or after this\n" in out
    assert "    --param limit=10  (int) how many sessions\n" in out
    assert "    --param model=<text>  (required) the model to price at" in out
    listed = [json.loads(line) for line in cerver("query", "--list", "--format", "json").stdout.splitlines()]
    what_if = next(q for q in listed if q["name"] == "what_if_cost")
    assert what_if["tables"] == ["prices"]
    assert [(p["name"], p["default"]) for p in what_if["params"]] == [
        ("model", None),
        ("from_model", ""),
        ("since", "1970-01-01"),
        ("until", "2100-01-01"),
    ]


def test_a_query_as_a_table_csv_and_json(filled: Path) -> None:
    table = cerver("query", "cost_by_model", "--data", str(filled)).stdout
    assert table.splitlines()[0].startswith("model ") and "(3 rows)" in table
    rows = list(csv.DictReader(io.StringIO(cerver("query", "cost_by_model", "--format", "csv").stdout)))
    assert [(r["model"], r["runs"]) for r in rows] == [(OPUS, "5"), (SONNET, "6"), (GPT, "7")]
    lines = cerver("query", "errors_by_model", "--format", "json").stdout.splitlines()
    first = json.loads(lines[0])
    assert (first["model"], first["errors"], first["last_error"]) == (GPT, 3, "context length exceeded")


def test_parameters_with_param_and_p(filled: Path) -> None:
    params = ["--param", f"model={SONNET}", "-p", f"from_model={OPUS}", "-p", "since=2026-11-03"]
    out = cerver("query", "what_if_cost", *params, "--format", "json").stdout
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert (row["model"], row["what_if_model"], row["runs"]) == (OPUS, SONNET, 3)
    by_hand = (2000 + 2000 + 1000) * 3e-6 + 1000 * 0.3e-6 + (1000 + 1500 + 500) * 15e-6
    assert row["what_if_cost_usd"] == pytest.approx(by_hand)
    top = cerver("query", "top_sessions_by_cost", "-p", "limit=2", "--format", "csv").stdout
    assert top.splitlines()[1:] and len(top.splitlines()) == 3
    everyone = cerver("query", "sessions", "-p", "user=", "--format", "csv").stdout  # '' = every user
    assert len(everyone.splitlines()) == 13


def test_parquet_to_a_file(filled: Path, tmp_path: Path) -> None:
    out = tmp_path / "fanout.parquet"
    cerver("query", "fanout_comparison", "-p", "parent=p1", "--format", "parquet", "-o", str(out))
    assert pq.read_table(out).column("child_session_id").to_pylist() == ["c1", "c2", "c3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "cerver query: unknown query 'nope'; known: compute_time_by_provider, cost_by_model,"),
        (["what_if_cost"], "cerver query: what_if_cost: missing parameter 'model' (text: the model"),
        (["cost_by_model", "-p", "since=last week"], "parameter 'since': expected a timestamp (ISO 8601"),
        (["top_sessions_by_cost", "-p", "limit=many"], "parameter 'limit': expected an integer, got 'many'"),
        (["cost_by_model", "-p", "modle=x"], "unknown parameter 'modle' (it takes since, until)"),
        (["cost_by_model", "-p", "since"], "--param expects NAME=VALUE, got 'since'"),
        ([], "cerver query: name a query (cerver query --list shows them)"),
    ],
)
def test_mistakes_exit_2_with_a_message(filled: Path, args: list[str], message: str) -> None:
    result = cerver("query", *args, check=False)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_a_missing_warehouse_exits_1(tmp_path: Path) -> None:
    result = cerver("query", "sessions", "--data", str(tmp_path / "nowhere"), check=False)
    assert result.returncode == 1 and "no warehouse at" in result.stderr

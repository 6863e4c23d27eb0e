"""The `cerver` command: sql in every format, compact, fast help, and serving on loopback."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

import warehouse
from tests.conftest import MANUAL
from tests.factory import conversation

CERVER = str(Path(sys.executable).with_name("cerver"))


def cerver(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CERVER, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def filled(data_dir: Path) -> Path:
    with warehouse.open(data_dir, policy=MANUAL) as wh:
        wh.append(conversation("a"))
        wh.flush()
        wh.append(conversation("b"))
    return data_dir


def test_help_is_fast_and_lists_the_commands() -> None:
    probe = (
        "import sys, api.cli; api.cli.build_parser(); "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'deltalake', 'polars', 'litellm', 'fastapi') "
        "if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "[]\n"
    out = cerver("--help").stdout
    for command in ("serve", "sql", "compact"):
        assert command in out


def test_sql_formats(filled: Path) -> None:
    query = "select session_id, messages, runs, cost_usd from sessions order by session_id"
    table = cerver("sql", query, "--data", str(filled)).stdout
    assert "session_id" in table.splitlines()[0] and "(2 rows)" in table
    rows = list(
        csv.DictReader(io.StringIO(cerver("sql", query, "--data", str(filled), "--format", "csv").stdout))
    )
    assert [r["session_id"] for r in rows] == ["a", "b"] and rows[0]["messages"] == "4"
    lines = cerver("sql", query, "--data", str(filled), "--format", "json").stdout.splitlines()
    assert json.loads(lines[1]) == {"session_id": "b", "messages": 4, "runs": 2, "cost_usd": 0.02}
    out = filled.parent / "sessions.parquet"
    cerver("sql", query, "--data", str(filled), "--format", "parquet", "--output", str(out))
    assert pq.read_table(out).num_rows == 2


def test_sql_uses_cerver_data_by_default(filled: Path) -> None:
    assert os.environ["CERVER_DATA"] == str(filled)
    assert cerver("sql", "select count(*) as n from events", "--format", "csv").stdout == '"n"\n18\n'


def test_sql_errors_exit_nonzero_with_a_message(filled: Path) -> None:
    refused = cerver("sql", "delete from events", "--data", str(filled), check=False)
    assert refused.returncode == 1 and "refused: DELETE" in refused.stderr
    syntax = cerver("sql", "selec 1", "--data", str(filled), check=False)
    assert syntax.returncode == 1 and "syntax error" in syntax.stderr
    missing = cerver("sql", "select 1", "--data", str(filled.parent / "nowhere"), check=False)
    assert missing.returncode == 1 and "no warehouse at" in missing.stderr


def test_compact_reports_what_it_did(filled: Path) -> None:
    out = cerver("compact", "--data", str(filled)).stdout
    assert out.startswith("compacted 1 day(s): 2 -> 1 files")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_beside_readers_and_flushes_on_shutdown(filled: Path) -> None:
    crashed = warehouse.open(filled, policy=MANUAL)
    crashed.append(conversation("c"))
    crashed._stopping.set()
    crashed._lock.release()  # as if killed: 9 events only in the log
    port = _free_port()
    server = subprocess.Popen(
        [CERVER, "serve", "--data", str(filled), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health["status"] == "ok"
        assert health["warehouse"]["tail_events"] == 9  # replayed from the log
        # A second writer is refused; readers work alongside.
        locked = cerver("compact", "--data", str(filled), check=False)
        assert locked.returncode == 1 and "being written by another process" in locked.stderr
        assert cerver(
            "sql", "select count(*) from events", "--data", str(filled), "--format", "csv"
        ).stdout.endswith("27\n")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with warehouse.open(filled, read_only=True) as reader:
        assert reader.info()["tail_events"] == 0  # the shutdown flushed the log
        assert reader.sql("select count(*) from events").column(0)[0].as_py() == 27

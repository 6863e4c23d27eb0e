"""POST /v2/query and /v2/queries end to end: a real server, two tenants, and every way out tried."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.parquet as pq
import pytest

from tests.server import Server, mint_token

VIEWS = ("events", "sessions", "messages", "runs")


def _events(prefix: str, sessions: int = 3) -> list[dict]:
    """Per session: created, a user message, a run that cost something, the answer."""
    out = []
    for n in range(sessions):
        session, run = f"{prefix}-s{n}", f"{prefix}-s{n}-r0"
        common = {"session_id": session, "user_id": f"{prefix}-user"}
        out += [
            {"type": "session.created", "ts": f"2026-11-20T10:0{n}:00Z", "model": "openai/gpt-4o", **common},
            {"type": "message", "ts": f"2026-11-20T10:0{n}:01Z", "role": "user", "content": "hi", **common},
            {"type": "run.started", "ts": f"2026-11-20T10:0{n}:02Z", "run_id": run, **common},
            {
                "type": "run.completed",
                "ts": f"2026-11-20T10:0{n}:03Z",
                "run_id": run,
                "model": "openai/gpt-4o",
                "input_tokens": 100,
                "output_tokens": 10,
                "cost_usd": 0.25,
                "status": "ok",
                **common,
            },
            {
                "type": "message",
                "ts": f"2026-11-20T10:0{n}:04Z",
                "role": "assistant",
                "content": "yo",
                **common,
            },
        ]
    return [{"event_id": f"{e['session_id']}-{i}", **e} for i, e in enumerate(out)]


@pytest.fixture(scope="module")
def tenants(api: tuple[Server, str, str]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """acme and globex clients, each tenant with three sessions of its own (one made by run-llm)."""
    server, acme_token, globex_token = api
    with server.client(acme_token) as acme, server.client(globex_token) as globex:
        for client, prefix in ((acme, "acme"), (globex, "globex")):
            assert client.post("/v2/events", json=_events(prefix)).status_code == 200
            created = client.post(
                "/v2/sessions", json={"user_id": f"{prefix}-user", "session_id": f"{prefix}-live"}
            )
            assert created.status_code == 201
            ran = client.post(f"/v2/sessions/{prefix}-live/run-llm", json={"prompt": "hello"})
            assert ran.status_code == 200, ran.text
        yield acme, globex


def _query(client: httpx.Client, sql: str, **body: object) -> dict:
    response = client.post("/v2/query", json={"sql": sql, **body})
    assert response.status_code == 200, response.text
    return response.json()


def _error(client: httpx.Client, sql: str, status: int = 400) -> dict:
    response = client.post("/v2/query", json={"sql": sql})
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.mark.parametrize("view", VIEWS)
def test_each_tenant_sees_its_own_rows_only(tenants: tuple[httpx.Client, httpx.Client], view: str) -> None:
    for client, mine, theirs in ((tenants[0], "acme", "globex"), (tenants[1], "globex", "acme")):
        got = _query(client, f"select distinct tenant_id, session_id from {view} order by session_id")
        assert {row[0] for row in got["rows"]} == {mine}
        assert {row[1] for row in got["rows"]} == {f"{mine}-s0", f"{mine}-s1", f"{mine}-s2", f"{mine}-live"}
        sneaky = f"select count(*) from {view} where tenant_id = ? or session_id like ? or true"
        assert _query(client, sneaky, params=[theirs, f"{theirs}%"])["rows"] == [
            [_query(client, f"select count(*) from {view}")["rows"][0][0]]
        ]


def test_the_answer_has_typed_columns_and_json_values(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    got = _query(
        tenants[0],
        "select session_id, created_at, cost_usd, messages, 'nan'::double as nan, 1.50::decimal(4,2) as d "
        "from sessions where session_id = $id",
        params={"id": "acme-s1"},
    )
    assert got["columns"] == [
        {"name": "session_id", "type": "VARCHAR"},
        {"name": "created_at", "type": "TIMESTAMP WITH TIME ZONE"},
        {"name": "cost_usd", "type": "DOUBLE"},
        {"name": "messages", "type": "BIGINT"},
        {"name": "nan", "type": "DOUBLE"},
        {"name": "d", "type": "DECIMAL(4,2)"},
    ]
    assert got["rows"] == [["acme-s1", "2026-11-20T10:01:00+00:00", 0.25, 2, None, 1.5]]
    assert got["row_count"] == 1 and got["truncated"] is False


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_parquet('{data}/events/**/*.parquet')",
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('{data}/api/tokens.jsonl')",
        "select * from glob('/*')",
        "select * from read_parquet('http://127.0.0.1:9/x.parquet')",
        "select * from query('select * from read_csv(''/etc/passwd'')')",
        "ATTACH '{tmp}/stolen.duckdb' AS stolen",
        "ATTACH ':memory:' AS scratch",
        "COPY (select * from events) TO '{tmp}/leak.csv'",
        "EXPORT DATABASE '{tmp}/export'",
        "SET enable_external_access = true",
        "SET threads = 64",
        "RESET lock_configuration",
        "PRAGMA threads = 64",
        "PRAGMA database_list",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CREATE TABLE t AS SELECT 1",
        "CREATE OR REPLACE VIEW sessions AS SELECT 1 AS x",
        "INSERT INTO events (event_id) VALUES ('x')",
        "DROP VIEW events",
        "CALL pragma_version()",
        "CHECKPOINT",
        "select 1; select 2",
        "select 1; DROP VIEW events",
        "BEGIN TRANSACTION",
        "UPDATE EXTENSIONS",
    ],
)
def test_ways_out_are_refused_and_change_nothing(
    tenants: tuple[httpx.Client, httpx.Client], api: tuple[Server, str, str], tmp_path: Path, sql: str
) -> None:
    acme = tenants[0]
    before = {view: _query(acme, f"select count(*) from {view}")["rows"] for view in VIEWS}
    error = _error(acme, sql.format(data=api[0].data, tmp=tmp_path))
    assert error["code"] == "refused" and error["message"].startswith("refused"), error
    assert list(tmp_path.iterdir()) == []  # no COPY output, no attached or exported database
    assert {view: _query(acme, f"select count(*) from {view}")["rows"] for view in VIEWS} == before


def test_a_path_as_a_table_name_is_just_an_unknown_table(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    """Without external access DuckDB does not try a quoted path as a file at all: no such table."""
    error = _error(tenants[0], "select * from '/etc/passwd'")
    assert error["code"] == "invalid_sql" and "does not exist" in error["message"]


def test_bad_sql_answers_duckdbs_message(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    assert "syntax error" in _error(tenants[0], "selec 1")["message"]
    error = _error(tenants[0], "select no_such_column from sessions")
    assert error["code"] == "invalid_sql" and "no_such_column" in error["message"]
    assert _error(tenants[0], "select ?")["code"] == "invalid_sql"  # a parameter without a value
    assert _error(tenants[0], "-- nothing")["code"] == "invalid_sql"


def test_bad_bodies(tenants: tuple[httpx.Client, httpx.Client], api: tuple[Server, str, str]) -> None:
    acme = tenants[0]
    assert acme.post("/v2/query", json={"sql": "select 1", "limit": 10_001}).status_code == 422
    assert acme.post("/v2/query", json={"sql": "select 1", "limit": 0}).status_code == 422
    assert acme.post("/v2/query", json={"sql": "select 1", "nope": 1}).status_code == 422
    assert acme.post("/v2/query", json={"sql": ""}).status_code == 422
    with api[0].client(None) as anonymous:
        assert anonymous.post("/v2/query", json={"sql": "select 1"}).status_code == 401
    refused = acme.post("/v2/query", json={"sql": "select 1"}, headers={"Accept": "application/xml"})
    assert refused.status_code == 406 and refused.json()["error"]["code"] == "not_acceptable"


def test_params_named_and_positional(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    acme = tenants[0]
    named = _query(acme, "select count(*) from runs where session_id = $s", params={"s": "acme-s0"})
    positional = _query(acme, "select count(*) from runs where session_id = ?", params=["acme-s0"])
    assert named["rows"] == positional["rows"] == [[1]]


def test_rows_past_the_limit_are_cut_and_say_so(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    acme = tenants[0]
    cut = _query(acme, "select range as n from range(50)", limit=10)
    assert cut["rows"] == [[n] for n in range(10)] and cut["row_count"] == 10 and cut["truncated"] is True
    exact = _query(acme, "select range as n from range(10)", limit=10)
    assert exact["row_count"] == 10 and exact["truncated"] is False
    most = _query(acme, "select range as n from range(1000000)")  # the server's cap: 10,000
    assert most["row_count"] == 10_000 and most["truncated"] is True


def test_csv_arrow_and_parquet_carry_the_same_rows(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    acme = tenants[0]
    sql = "select session_id, messages, cost_usd, created_at from sessions order by session_id"
    rows = _query(acme, sql)["rows"]

    def fetch(accept: str) -> httpx.Response:
        response = acme.post("/v2/query", json={"sql": sql}, headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["x-cerver-row-count"] == str(len(rows))
        assert response.headers["x-cerver-truncated"] == "false"
        return response

    answers = {
        "text/csv": csv.read_csv(io.BytesIO(fetch("text/csv").content)),
        "arrow": pa.ipc.open_stream(fetch("application/vnd.apache.arrow.stream").content).read_all(),
        "parquet": pq.read_table(io.BytesIO(fetch("application/vnd.apache.parquet").content)),
        "x-parquet": pq.read_table(io.BytesIO(fetch("text/html;q=0.9, application/x-parquet").content)),
    }
    for kind, table in answers.items():
        got = [
            [r["session_id"], r["messages"], r["cost_usd"], r["created_at"].isoformat()]
            for r in table.to_pylist()
        ]
        assert got == rows, kind
    assert fetch("text/csv").headers["content-type"].startswith("text/csv")


def test_named_queries_are_listed_and_run_over_the_callers_rows(
    tenants: tuple[httpx.Client, httpx.Client],
) -> None:
    acme, globex = tenants
    listed = {q["name"]: q for q in acme.get("/v2/queries").json()["queries"]}
    assert {p["name"] for p in listed["cost_by_model"]["params"]} == {"since", "until"}
    assert listed["cost_by_model"]["summary"]
    for client, prefix in ((acme, "acme"), (globex, "globex")):
        got = client.get("/v2/queries/cost_by_model", params={"since": "2026-11-01"}).json()
        by_model = {row[0]: row for row in got["rows"]}
        names = [c["name"] for c in got["columns"]]
        gpt = dict(zip(names, by_model["openai/gpt-4o"], strict=True))
        assert gpt["runs"] == 3 and gpt["cost_usd"] == pytest.approx(0.75), prefix
    later = acme.get("/v2/queries/cost_by_model", params={"since": "2027-01-01"}).json()
    assert later["rows"] == []
    priced = acme.get("/v2/queries/what_if_cost", params={"model": "openai/gpt-4o-mini"})
    assert priced.status_code == 200, priced.text  # reads the extra `prices` table


def test_named_query_errors(tenants: tuple[httpx.Client, httpx.Client]) -> None:
    acme = tenants[0]
    unknown = acme.get("/v2/queries/no_such_query")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_query"
    bad = acme.get("/v2/queries/cost_by_model", params={"since": "yesterday-ish"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_params"
    extra = acme.get("/v2/queries/cost_by_model", params={"tenant_id": "globex"})
    assert extra.status_code == 422 and "tenant_id" in extra.json()["error"]["message"]
    missing = acme.get("/v2/queries/what_if_cost")  # `model` has no default
    assert missing.status_code == 422


def test_a_query_that_never_ends_is_stopped(tmp_path: Path) -> None:
    data = tmp_path / "cerver-data"
    data.mkdir()
    token = mint_token(data, "acme")
    server = Server(data, {"CERVER_DEFAULT_MODEL": "offline/echo", "CERVER_QUERY_TIMEOUT_S": "1"}).start()
    try:
        with server.client(token) as client:
            for sql in (
                "select count(*) from range(10000000000000)",
                "with recursive r(n) as (select 1 union all select n + 1 from r) select count(*) from r",
                "select count(*) from range(100000000) a, range(100000000) b",
            ):
                started = time.monotonic()
                error = _error(client, sql)
                assert error["code"] == "query_timeout" and "time limit" in error["message"]
                assert time.monotonic() - started < 5
            assert _query(client, "select 42")["rows"] == [[42]]  # the server is still itself
    finally:
        server.stop()

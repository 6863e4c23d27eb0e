"""warehouse/sandbox.py: one tenant's rows, the engine's views, and DuckDB's settings holding the doors."""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import queries
import warehouse
from warehouse import sandbox
from warehouse.query import VIEW_NAMES
from warehouse.sandbox import Limits, QueryBusy, QueryTimeout, QueryTooLarge, Refused

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TYPES = [
    "session.created",
    "message",
    "run.started",
    "run.completed",
    "run.failed",
    "session.closed",
    "usage",
]


def _events(
    rng: random.Random, n: int, start: int, tenants: tuple[str, ...] = ("acme", "globex")
) -> list[dict]:
    """Random events; both tenants use the same session and run ids, so a leak would merge them."""
    out = []
    for i in range(start, start + n):
        session = f"s{rng.randrange(8)}"
        out.append(
            {
                "event_id": f"e{i:06d}",
                "ts": T0 + dt.timedelta(seconds=i * 7 + rng.randrange(5)),
                "tenant_id": rng.choice(tenants),
                "session_id": session,
                "run_id": rng.choice([None, f"{session}-r{rng.randrange(3)}"]),
                "type": rng.choice(TYPES),
                "role": rng.choice([None, "user", "assistant"]),
                "content": rng.choice([None, "hello", "hi"]),
                "user_id": rng.choice([None, "u1", "u2"]),
                "model": rng.choice([None, "openai/gpt-4o", "anthropic/claude-opus-4-1"]),
                "harness": rng.choice([None, "litellm", "codex"]),
                "compute": rng.choice([None, "local"]),
                "input_tokens": rng.choice([None, rng.randrange(1000)]),
                "output_tokens": rng.choice([None, rng.randrange(300)]),
                "cost_usd": rng.choice([None, rng.randrange(100) / 1000]),
                "latency_ms": rng.choice([None, float(rng.randrange(900))]),
                "status": rng.choice([None, "ok", "error"]),
            }
        )
    return out


@pytest.fixture
def filled(wh: warehouse.Warehouse) -> warehouse.Warehouse:
    """Two tenants with the same session ids, in two flushed files and the tail."""
    rng = random.Random(7)
    wh.append(_events(rng, 300, 0))
    wh.flush()
    wh.append(_events(rng, 200, 300))
    wh.flush()
    wh.append(_events(rng, 100, 500))
    return wh


@pytest.fixture
def locked(filled: warehouse.Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of a private sandbox, used directly: DuckDB's settings with no parser in front."""
    box = sandbox.Sandbox(filled._read_view().schema, Limits())
    con = box.connect(filled._read_view(), "acme", {"prices": pa.table({"model": ["m"], "usd": [1.0]})})
    yield con
    con.close()
    box.close()


def _rows(answer: sandbox.Answer) -> list[dict]:
    return answer.table.to_pylist()


def _close(got: pa.Table, want: pa.Table) -> bool:
    """Equal rows, floats to the last bits (sums depend on the order of addition)."""

    def loose(row: dict) -> dict:
        return {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in row.items()}

    return got.num_rows == want.num_rows and all(
        g == loose(w) for g, w in zip(got.to_pylist(), want.to_pylist(), strict=True)
    )


# -- the tenant's rows, through the engine's views -----------------------------------------


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_views_match_the_engine_for_the_tenant(filled: warehouse.Warehouse, view: str) -> None:
    """Same columns, same types, same rows as the engine's view filtered to the tenant."""
    for tenant in ("acme", "globex"):
        order = "ORDER BY ALL"
        got = filled.confined_sql(tenant, f"SELECT * FROM {view} {order}").table
        want = filled.sql(f"SELECT * FROM {view} WHERE tenant_id = ? {order}", [tenant])
        assert got.schema.names == want.schema.names and got.schema.types == want.schema.types
        assert got.num_rows > 0 and _close(got, want)
    described = filled.confined_sql("acme", f"DESCRIBE {view}").table.select(["column_name", "column_type"])
    assert described == filled.sql(f"DESCRIBE {view}").select(["column_name", "column_type"])


def test_only_the_tenants_rows_whatever_the_sql(filled: warehouse.Warehouse) -> None:
    total = filled.sql("SELECT count(*) AS n FROM events WHERE tenant_id = 'acme'").column(0)[0].as_py()
    for sql in (
        "SELECT count(*) AS n FROM events",
        "SELECT count(*) AS n FROM events WHERE tenant_id = 'globex' OR true",
        "SELECT count(*) AS n FROM _parts UNION ALL BY NAME SELECT count(*) AS n FROM _tail",
        "SELECT count(*) AS n FROM memory.main.events",
    ):
        got = _rows(filled.confined_sql("acme", f"SELECT sum(n) AS n FROM ({sql})"))
        assert got == [{"n": total}], sql
    for view in ("events", "_parts", "_tail", "sessions", "runs", "messages"):
        tenants = _rows(filled.confined_sql("acme", f"SELECT DISTINCT tenant_id FROM {view}"))
        assert tenants == [{"tenant_id": "acme"}], view


def test_fresh_events_are_seen_at_once(filled: warehouse.Warehouse) -> None:
    filled.append(
        [{"event_id": "new", "ts": T0, "tenant_id": "acme", "session_id": "fresh", "type": "message"}]
    )
    got = filled.confined_sql("acme", "SELECT session_id FROM sessions WHERE session_id = 'fresh'")
    assert _rows(got) == [{"session_id": "fresh"}]
    assert (
        filled.confined_sql("globex", "SELECT * FROM sessions WHERE session_id = 'fresh'").table.num_rows == 0
    )


def test_an_empty_warehouse_and_a_reader(wh: warehouse.Warehouse, data_dir: Path) -> None:
    assert _rows(wh.confined_sql("acme", "SELECT count(*) AS n FROM sessions")) == [{"n": 0}]
    wh.append(_events(random.Random(1), 20, 0, tenants=("acme",)))
    with warehouse.open(data_dir, read_only=True) as reader:
        assert _rows(reader.confined_sql("acme", "SELECT count(*) AS n FROM events")) == [{"n": 20}]


def test_extra_tables_join_the_views(filled: warehouse.Warehouse) -> None:
    prices = pa.table({"model": ["openai/gpt-4o"], "usd": [2.5]})
    got = filled.confined_sql(
        "acme",
        "SELECT p.usd, count(*) > 0 AS any FROM runs JOIN prices AS p USING (model) GROUP BY ALL",
        tables={"prices": prices},
    )
    assert _rows(got) == [{"usd": 2.5, "any": True}]
    with pytest.raises(warehouse.QueryError, match="does not exist"):
        filled.confined_sql("acme", "SELECT * FROM prices")  # the next statement's connection is new
    for name in ("events", "_parts", "_tail", "bad name"):
        with pytest.raises(warehouse.QueryError):
            filled.confined_sql("acme", "SELECT 1", tables={name: prices})


def test_every_named_query_answers_as_the_engine_does_on_one_tenant(wh: warehouse.Warehouse) -> None:
    wh.append(_events(random.Random(3), 300, 0, tenants=("acme",)))
    wh.flush()
    wh.append(_events(random.Random(4), 50, 300, tenants=("acme",)))
    for query in queries.catalog():
        values = {p.name: "openai/gpt-4o" for p in query.params if p.required and p.type == "text"}
        bound = queries.bind(query, values)
        tables = queries.extra_tables(query)
        got = wh.confined_sql("acme", query.sql, bound, tables=tables).table
        want = wh.sql(query.sql, bound, tables=tables)
        assert got.schema == want.schema and _close(got, want), query.name


def test_parameters_named_and_positional(filled: warehouse.Warehouse) -> None:
    named = filled.confined_sql("acme", "SELECT $a::INT + $b::INT AS x", {"a": 1, "b": 2})
    positional = filled.confined_sql("acme", "SELECT ?::INT + ?::INT AS x", [1, 2])
    assert _rows(named) == _rows(positional) == [{"x": 3}]
    with pytest.raises(warehouse.QueryError):
        filled.confined_sql("acme", "SELECT ? AS x")


def test_two_tenants_at_once_each_see_their_own(filled: warehouse.Warehouse) -> None:
    want = {
        t: filled.sql("SELECT count(*) FROM events WHERE tenant_id = ?", [t]).column(0)[0].as_py()
        for t in ("acme", "globex")
    }
    seen: dict[str, set[int]] = {"acme": set(), "globex": set()}

    def ask(tenant: str) -> None:
        for _ in range(15):
            got = filled.confined_sql(tenant, "SELECT count(*) AS n FROM events")
            seen[tenant].add(got.table.column(0)[0].as_py())

    threads = [threading.Thread(target=ask, args=(t,)) for t in ("acme", "globex", "acme", "globex")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {t: {n} for t, n in want.items()}


# -- statements: only one SELECT ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "FROM events SELECT count(*)",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "VALUES (1), (2)",
        "DESCRIBE sessions",
        "SHOW TABLES",
        "SUMMARIZE SELECT 1 AS a",
        "EXPLAIN SELECT * FROM events",
        "EXPLAIN ANALYZE SELECT count(*) FROM runs",
        "SELECT 1 -- a comment; DROP VIEW events",
    ],
)
def test_selects_run(filled: warehouse.Warehouse, sql: str) -> None:
    filled.confined_sql("acme", sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "CREATE TABLE t AS SELECT 1",
        "CREATE OR REPLACE VIEW events AS SELECT 1",
        "DROP VIEW events",
        "INSERT INTO events (event_id) VALUES ('x')",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "ATTACH ':memory:' AS m",
        "DETACH memory",
        "SET threads = 1",
        "SET VARIABLE x = 1",
        "RESET memory_limit",
        "USE system",
        "PRAGMA version",
        "CALL pragma_version()",
        "CHECKPOINT",
        "INSTALL httpfs",
        "LOAD json",
        "EXPORT DATABASE '/tmp/export'",
        "PREPARE p AS SELECT 1",
        "BEGIN",
        "UPDATE EXTENSIONS",
        "PIVOT (SELECT 1 AS a) ON a",  # creates an enum type behind the scenes
    ],
)
def test_other_statements_are_refused_before_running(filled: warehouse.Warehouse, sql: str) -> None:
    with pytest.raises(Refused, match=r"^refused"):
        filled.confined_sql("acme", sql)
    assert filled.confined_sql("acme", "SELECT count(*) FROM events").table.num_rows == 1


def test_sql_that_does_not_parse_is_a_query_error() -> None:
    for sql in ("SELEC 1", "", "  ;  ", "-- only a comment"):
        with pytest.raises(warehouse.QueryError) as caught:
            sandbox.check_statement(sql)
        assert not isinstance(caught.value, Refused)


# -- the settings themselves, with no parser in front ---------------------------------------


def test_registered_arrow_stays_readable_after_the_lock(locked: duckdb.DuckDBPyConnection) -> None:
    assert locked.sql("SELECT current_setting('lock_configuration')").fetchall() == [(True,)]
    assert locked.sql("SELECT count(*) > 0 FROM events").fetchall() == [(True,)]
    assert locked.sql("SELECT count(*) > 0 FROM _tail").fetchall() == [(True,)]
    assert locked.sql("SELECT usd FROM prices").fetchall() == [(1.0,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{data}/events/**/*.parquet')",
        "SELECT * FROM parquet_metadata('{data}/events/**/*.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('{data}/wal/WRITER_ID')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM read_json('http://127.0.0.1:9/x.json')",
        "COPY (SELECT 1) TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/x.duckdb' AS x",
        "EXPORT DATABASE '{tmp}/export'",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
)
def test_external_access_is_off(
    locked: duckdb.DuckDBPyConnection, data_dir: Path, tmp_path: Path, sql: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(duckdb.PermissionException):
        locked.execute(sql.format(data=data_dir, tmp=out))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET lock_configuration",
        "SET disabled_filesystems = ''",
        "SET python_enable_replacements = true",
        "SET memory_limit = '100GB'",
        "SET threads = 64",
        "PRAGMA threads = 64",
        "SET GLOBAL autoload_known_extensions = true",
    ],
)
def test_the_configuration_is_locked(locked: duckdb.DuckDBPyConnection, sql: str) -> None:
    """The lock holds them all; external access and disabled file systems are also one-way anyway."""
    with pytest.raises(duckdb.Error, match=r"locked|Cannot enable external access|cannot be re-enabled"):
        locked.execute(sql)


def test_no_environment_variables(locked: duckdb.DuckDBPyConnection) -> None:
    """The server's environment holds provider keys; DuckDB's Python build has no getenv()."""
    with pytest.raises(duckdb.CatalogException):
        locked.execute("SELECT getenv('HOME')")


def test_the_paths_duckdb_allows_on_its_own_are_closed_too(
    filled: warehouse.Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With external access off DuckDB still allows `<cwd>/:memory:` and its `.wal` files
    (its `allowed_paths`): readable, were they there. Disabling LocalFileSystem closes that."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ":memory:.wal").write_text("not yours")
    box = sandbox.Sandbox(filled._read_view().schema, Limits())
    con = box.connect(filled._read_view(), "acme", {})
    try:
        allowed = con.sql("SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'").fetchall()
        assert ":memory:.wal" in allowed[0][0]
        for path in (":memory:.wal", str(tmp_path / ":memory:.wal")):
            with pytest.raises(duckdb.PermissionException):
                con.execute(f"SELECT content FROM read_text('{path}')")
    finally:
        con.close()
        box.close()


def test_python_variables_are_not_tables(locked: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's Python replacement scan would read any Arrow table in the calling frame by name."""
    every_tenants_tail = pa.table({"tenant_id": ["acme", "globex"]})
    assert every_tenants_tail.num_rows == 2
    with pytest.raises(duckdb.CatalogException):
        locked.sql("SELECT * FROM every_tenants_tail").fetchall()


def test_the_settings_alone_do_not_make_it_read_only(locked: duckdb.DuckDBPyConnection) -> None:
    """Why the parser check is needed: DDL still runs against the (data-free) catalog."""
    locked.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS a")
    assert locked.sql("SELECT a FROM scratch").fetchall() == [(1,)]


def test_no_spilling_to_disk(
    filled: warehouse.Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buffer manager spills to ./.tmp without asking the external-access check; here it may not."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    small = Limits(memory_limit="48MB", threads=1, timeout_s=30)
    with pytest.raises(QueryTooLarge):
        filled.confined_sql("acme", "SELECT hash(range) AS h FROM range(20000000) ORDER BY h", limits=small)
    assert os.listdir(cwd) == []


# -- limits ----------------------------------------------------------------------------------


def test_rows_past_the_limit_are_cut(filled: warehouse.Warehouse) -> None:
    limits = Limits(max_rows=5)
    cut = filled.confined_sql("acme", "SELECT range AS n FROM range(1000000000000)", limits=limits)
    assert cut.truncated and cut.table.column("n").to_pylist() == [0, 1, 2, 3, 4]
    whole = filled.confined_sql("acme", "SELECT range AS n FROM range(5)", limits=limits)
    assert not whole.truncated and whole.table.num_rows == 5
    empty = filled.confined_sql("acme", "SELECT 1 AS n WHERE false", limits=limits)
    assert not empty.truncated and empty.table.schema.names == ["n"] and empty.types == ("INTEGER",)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM range(10000000000000)",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM events a, events b, events c, events d, events e",
    ],
)
def test_a_statement_past_its_time_is_stopped(filled: warehouse.Warehouse, sql: str) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"time limit of 0\.5s"):
        filled.confined_sql("acme", sql, limits=Limits(timeout_s=0.5))
    assert time.monotonic() - started < 3
    assert filled.confined_sql("acme", "SELECT 1").table.num_rows == 1


def test_a_full_house_answers_busy(filled: warehouse.Warehouse) -> None:
    one_slot = Limits(concurrency=1, timeout_s=0.6)

    def hog() -> None:
        with pytest.raises(QueryTimeout):
            filled.confined_sql("acme", "SELECT count(*) FROM range(10000000000000)", limits=one_slot)

    hogging = threading.Thread(target=hog)
    hogging.start()
    time.sleep(0.2)
    with pytest.raises(QueryBusy):
        filled.confined_sql("globex", "SELECT 1", limits=Limits(concurrency=1, timeout_s=0.1))
    hogging.join()
    assert filled.confined_sql("globex", "SELECT 1", limits=one_slot).table.num_rows == 1


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERVER_QUERY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("CERVER_QUERY_MAX_ROWS", "7")
    assert Limits.from_env() == Limits(timeout_s=2.5, max_rows=7)


def test_a_new_column_gets_a_sandbox_of_its_own() -> None:
    schema = warehouse.SCHEMA.append(pa.field("region", pa.string()))
    tail = pa.Table.from_pylist(
        [
            {
                "event_id": "e",
                "ts": T0,
                "tenant_id": "acme",
                "session_id": "s",
                "type": "message",
                "region": "eu",
            }
        ],
        schema=schema,
    )
    view = warehouse.query.ReadView(files=(), tail=tail, tail_version=1, schema=schema)
    got = sandbox.run_confined(view, "acme", "SELECT region FROM events")
    assert _rows(got) == [{"region": "eu"}]
    assert sandbox.run_confined(view, "globex", "SELECT region FROM events").table.num_rows == 0

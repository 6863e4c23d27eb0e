"""Confined SQL: one tenant's views in a locked-down DuckDB that can reach nothing else.

A `Sandbox` is an in-memory DuckDB that holds no data: its catalog has the usual views
(`events`, `sessions`, `messages`, `runs`, from the engine's own SQL), written over two
names, `_parts` and `_tail`, that nothing in the catalog defines. Every statement gets a
fresh connection on which the trusted side registers, as that connection's temporary
objects, the only data it may see: the tenant's rows of the live Parquet files (a pyarrow
dataset with the tenant filter built in, so DuckDB's projections and filters still reach
the files) and of the unflushed tail, plus any extra tables (a price list, say). DuckDB
keeps temporary objects per connection, so a statement sees its own tenant's rows and
no one else's; the connection is closed when the statement ends.

What enforces what (DuckDB 2.0; tests/test_sandbox.py holds each to it):
- `enable_external_access = false`: no file, URL or extension access — `read_parquet`,
  `read_csv`, `glob`, `COPY … TO`, `ATTACH` of a file, `EXPORT DATABASE`, `INSTALL` — and
  no Python replacement scans (which would otherwise read any Arrow table in the
  calling frame by variable name); `python_enable_replacements = false` says so twice.
  DuckDB refuses to turn external access back on while the database runs.
- `disabled_filesystems = 'LocalFileSystem'`: the local disk a second time over (also
  one-way), and not redundant: with external access off DuckDB still allows the paths it
  derives from the database's own (`<cwd>/:memory:`, `<cwd>/:memory:.wal`, …), which are
  readable when such files exist.
- `temp_directory = ''`: no spilling; the buffer manager writes its temporary files
  without asking the external-access check, so a big sort would otherwise fill the
  server's working directory. Past `memory_limit` a statement fails instead.
- `lock_configuration = true`: `SET`, `RESET` and `PRAGMA x = y` fail from then on; without
  it a statement could turn replacement scans or extension autoloading back on, or raise
  its own memory limit.
- The settings do not make the database read-only (CREATE, INSERT, DROP VIEW still run),
  so DuckDB's own parser admits exactly one SELECT or EXPLAIN statement. A write that
  slipped past could spoil the shared views for everyone (so it must not), but could
  still read nothing: the catalog holds no data, and each connection only its own.
- Time: a watchdog interrupts the statement's connection at its deadline. Rows: at most
  `max_rows + 1` are read from a streaming result. Memory and threads are per sandbox
  database, shared by the statements running at once (at most `concurrency` of them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from warehouse.errors import QueryError, ReadOnlyError
from warehouse.query import VIEWS_SQL, Params, ReadView, Tables, check_table_names
from warehouse.storage import LOCAL_FILES

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_DATA = ("_parts", "_tail")  # registered per connection, never in the catalog
_BATCH_ROWS = 2048

# The engine keeps `sessions` materialised (sessions.sql); a confined query aggregates the
# tenant's events instead, the plain way, which plans and runs fastest over one tenant.
# Same columns, types and values: tests/test_sandbox.py compares the two. Portable SQL (no
# '-infinity'), since the Spark engine (queries/engines/spark.py) transpiles it too.
SESSIONS_SQL = """
CREATE VIEW sessions AS
SELECT
    tenant_id,
    arg_max(user_id, ts) FILTER (WHERE user_id IS NOT NULL) AS user_id,
    session_id,
    arg_max(parent_session_id, ts) FILTER (WHERE parent_session_id IS NOT NULL) AS parent_session_id,
    CASE
        WHEN max(ts) FILTER (WHERE type = 'session.closed') IS NOT NULL THEN 'closed'
        WHEN max(ts) FILTER (WHERE type = 'run.started') IS NOT NULL
            AND (max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed')) IS NULL
                 OR max(ts) FILTER (WHERE type = 'run.started')
                    > max(ts) FILTER (WHERE type IN ('run.completed', 'run.failed'))) THEN 'running'
        ELSE 'ready'
    END AS status,
    arg_max(harness, ts) FILTER (WHERE harness IS NOT NULL) AS harness,
    arg_max(model, ts) FILTER (WHERE model IS NOT NULL) AS model,
    arg_max(compute, ts) FILTER (WHERE compute IS NOT NULL) AS compute,
    coalesce(min(ts) FILTER (WHERE type = 'session.created'), min(ts)) AS created_at,
    max(ts) FILTER (WHERE type = 'session.closed') AS closed_at,
    max(ts) AS last_event_at,
    count(*) FILTER (WHERE type = 'message') AS messages,
    count(*) FILTER (WHERE type IN ('run.completed', 'run.failed')) AS runs,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0))::BIGINT AS tokens,
    coalesce(sum(cost_usd), 0)::DOUBLE AS cost_usd
FROM events
GROUP BY tenant_id, session_id
"""


class Refused(ReadOnlyError):
    """The statement is not one the sandbox runs: not a single SELECT, or it reaches outside."""


class QueryTimeout(QueryError):
    """The statement ran past its time limit and was interrupted."""


class QueryTooLarge(QueryError):
    """The statement needed more memory than confined queries may use."""


class QueryBusy(QueryError):
    """Every confined-query slot stayed busy for the whole time limit."""


@dataclass(frozen=True)
class Limits:
    """What confined statements may use; `from_env` reads the CERVER_QUERY_* variables.

    `memory_limit`, `threads` and `concurrency` are shared by every statement in the process.
    """

    max_rows: int = 10_000
    timeout_s: float = 10.0
    memory_limit: str = "1GB"
    threads: int = 2
    concurrency: int = 4

    @classmethod
    def from_env(cls) -> Limits:
        """CERVER_QUERY_MAX_ROWS, _TIMEOUT_S, _MEMORY, _THREADS, _CONCURRENCY, else the defaults."""
        env, d = os.environ.get, cls()
        return cls(
            max_rows=int(env("CERVER_QUERY_MAX_ROWS", d.max_rows)),
            timeout_s=float(env("CERVER_QUERY_TIMEOUT_S", d.timeout_s)),
            memory_limit=env("CERVER_QUERY_MEMORY", d.memory_limit),
            threads=int(env("CERVER_QUERY_THREADS", d.threads)),
            concurrency=int(env("CERVER_QUERY_CONCURRENCY", d.concurrency)),
        )


@dataclass(frozen=True)
class Answer:
    """The rows of a confined statement, DuckDB's name for each column's type, and whether
    the statement had more rows than the limit (`truncated`)."""

    table: pa.Table
    truncated: bool
    types: tuple[str, ...] = ()


def check_statement(sql: str) -> None:
    """Admit exactly one SELECT (or EXPLAIN) statement, as DuckDB's own parser reads it."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise Refused(f"refused: one statement per query, got {len(statements)}")
    try:
        kind = statements[0].type
    except ValueError as exc:  # a type the Python enum does not know (UPDATE EXTENSIONS is 29)
        raise Refused(f"refused: a statement of a kind this endpoint does not run ({exc})") from None
    if kind not in ALLOWED:
        raise Refused(f"refused: {kind.name} statements are not allowed; this SQL is read-only (SELECT only)")


def run_confined(
    view: ReadView,
    tenant_id: str,
    sql: str,
    params: Params = None,
    *,
    tables: Tables = None,
    limits: Limits | None = None,
) -> Answer:
    """Run one SELECT over `tenant_id`'s rows of `view` (and `tables`) in a locked-down DuckDB."""
    limits = limits or Limits()
    check_statement(sql)
    slots = _slots(limits.concurrency)
    if not slots.acquire(timeout=limits.timeout_s):
        raise QueryBusy(f"every query slot stayed busy for {limits.timeout_s:g}s; try again")
    try:
        con = _sandbox(view.schema, limits).connect(view, tenant_id, tables or {})
        try:
            return _fetch(con, sql, params, limits)
        finally:
            con.close()
    finally:
        slots.release()


class Sandbox:
    """A locked-down, data-free DuckDB whose views read whatever a connection registers."""

    def __init__(self, schema: pa.Schema, limits: Limits):
        self.schema = schema
        self._db = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "python_enable_replacements": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "allow_unsigned_extensions": False,
                "temp_directory": "",
                "memory_limit": limits.memory_limit,
                "threads": limits.threads,
            },
        )
        try:
            # Neither is accepted in the start-up config (ICU's TimeZone is not known yet).
            self._db.execute("SET disabled_filesystems = 'LocalFileSystem'")
            self._db.execute("SET GLOBAL TimeZone = 'UTC'")  # every connection's, not just this one's
            self._define_views()
            self._db.execute("SET lock_configuration = true")
        except BaseException:
            self._db.close()
            raise

    def _define_views(self) -> None:
        """The engine's views, in the catalog, over names each connection defines for itself."""
        setup = self._db.cursor()
        try:
            empty = self.schema.empty_table()
            for name in _DATA:  # placeholders: temporary, so they vanish with `setup`
                setup.register(name, empty)
            # Identifiers come from the schema object, never from a caller.
            select = ", ".join(f'"{name}"' for name in self.schema.names)
            setup.execute(
                f"CREATE VIEW events AS SELECT {select} FROM "
                "(SELECT * FROM _parts UNION ALL BY NAME SELECT * FROM _tail)"
            )
            setup.execute(_in_catalog(VIEWS_SQL))
            setup.execute(SESSIONS_SQL)
        finally:
            setup.close()

    def connect(
        self, view: ReadView, tenant_id: str, tables: Mapping[str, pa.Table]
    ) -> duckdb.DuckDBPyConnection:
        """A new connection that sees only `tenant_id`'s rows of `view`, and `tables`."""
        check_table_names(tables)  # plain identifiers; the views' names and _names are ours
        con = self._db.cursor()
        try:
            con.register("_parts", _tenant_parts(view, tenant_id))
            con.register("_tail", _tenant_tail(view, tenant_id))
            for name, table in tables.items():
                con.register(name, table)
        except BaseException:
            con.close()
            raise
        return con

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _in_catalog(sql: str) -> str:
    """The engine's per-cursor TEMP views as catalog views, shared by every connection."""
    temp = "CREATE OR REPLACE TEMP VIEW"
    if temp not in sql:
        raise AssertionError("the view SQL no longer reads as expected; update the sandbox")
    return sql.replace(temp, "CREATE OR REPLACE VIEW")


def _tenant_parts(view: ReadView, tenant_id: str) -> ds.Dataset | pa.Table:
    """The tenant's rows of the live files; the filter is part of the dataset, not the SQL."""
    if not view.files:
        return view.schema.empty_table()
    # pyarrow reads the files (local or in object storage) on the trusted side; the sandboxed
    # DuckDB has no filesystem of its own to reach them, or the bucket, by any path.
    location = view.location or LOCAL_FILES
    files = [location.path_of(f) for f in view.files]
    dataset = ds.dataset(files, schema=view.schema, format="parquet", filesystem=location.arrow_filesystem())
    return dataset.filter(ds.field("tenant_id") == tenant_id)


def _tenant_tail(view: ReadView, tenant_id: str) -> pa.Table:
    tail = view.tail
    return tail.filter(pc.equal(tail.column("tenant_id"), tenant_id)) if tail.num_rows else tail


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Params, limits: Limits) -> Answer:
    """Read at most `max_rows + 1` rows of a streaming result, under the time limit."""
    with _deadline(con, limits.timeout_s) as expired:
        try:
            relation = con.sql(sql, params=params)
            types = tuple(str(t) for t in relation.types)
            reader = relation.to_arrow_reader(_BATCH_ROWS)
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > limits.max_rows:
                    break
            reader.close()
        except duckdb.InterruptException:
            if expired.is_set():
                raise QueryTimeout(
                    f"the query ran past its time limit of {limits.timeout_s:g}s and was stopped"
                ) from None
            raise QueryError("the query was interrupted") from None
        except duckdb.PermissionException as exc:
            raise Refused(f"refused: the query reaches outside your data ({exc})") from None
        except duckdb.OutOfMemoryException as exc:
            raise QueryTooLarge(f"the query needs more memory than queries may use ({exc})") from None
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return Answer(table.slice(0, limits.max_rows), truncated=rows > limits.max_rows, types=types)


@contextmanager
def _deadline(con: duckdb.DuckDBPyConnection, timeout_s: float) -> Iterator[threading.Event]:
    """Interrupt `con` once `timeout_s` has passed, and keep at it until the block ends.

    Repeating closes the race where the first interrupt lands before the statement starts.
    """
    expired, finished = threading.Event(), threading.Event()

    def watch() -> None:
        if finished.wait(timeout_s):
            return
        expired.set()
        while not finished.wait(0.05):
            con.interrupt()

    watchdog = threading.Thread(target=watch, name="cerver-query-deadline", daemon=True)
    watchdog.start()
    try:
        yield expired
    finally:
        finished.set()
        watchdog.join()


_lock = threading.Lock()
_sandboxes: dict[tuple[pa.Schema, str, int], Sandbox] = {}
_slot_pools: dict[int, threading.BoundedSemaphore] = {}


def _sandbox(schema: pa.Schema, limits: Limits) -> Sandbox:
    """The process's sandbox for this schema and these limits, made on first use."""
    key = (schema, limits.memory_limit, limits.threads)
    with _lock:
        sandbox = _sandboxes.get(key)
        if sandbox is None:
            sandbox = _sandboxes[key] = Sandbox(schema, limits)
        return sandbox


def _slots(concurrency: int) -> threading.BoundedSemaphore:
    """How many confined statements may run at once in this process."""
    with _lock:
        pool = _slot_pools.get(concurrency)
        if pool is None:
            pool = _slot_pools[concurrency] = threading.BoundedSemaphore(max(1, concurrency))
        return pool

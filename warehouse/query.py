"""Read-only SQL over the table's live files plus the unflushed tail, in DuckDB."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.errors import QueryError, ReadOnlyError
from warehouse.storage import Location
from warehouse.summaries import MACROS_SQL, VIEW_SQL, SessionSummaries

VIEWS_SQL = Path(__file__).with_name("views.sql").read_text()
VIEW_NAMES = ("events", "sessions", "messages", "runs")
_MENTIONS_SESSIONS = re.compile(r"\bsessions\b", re.IGNORECASE)
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

Params = list[Any] | tuple[Any, ...] | dict[str, Any] | None
Tables = Mapping[str, pa.Table] | None  # extra Arrow tables one statement sees by name


@dataclass(frozen=True)
class ReadView:
    """A consistent cut to query: live files of one table version and the tail beside them."""

    files: tuple[str, ...]
    tail: pa.Table
    tail_version: int
    schema: pa.Schema = field(compare=False)
    location: Location | None = field(default=None, compare=False)  # where `files` are; None: local


@dataclass
class _Cursor:
    con: duckdb.DuckDBPyConnection
    files: tuple[str, ...] | None = None
    tail_version: int = -1
    columns: tuple[str, ...] = ()
    summary: str | None = None


def check_read_only(query: str) -> None:
    """Refuse anything but one SELECT (or EXPLAIN) statement."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise ReadOnlyError(
            f"refused: {kind.name} statements are not allowed; the warehouse's SQL is read-only"
        )


def check_table_names(names: Mapping[str, Any]) -> None:
    """Refuse extra table names that are not plain identifiers or would shadow the warehouse's own."""
    for name in names:
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise QueryError(f"table name {name!r}: expected a plain identifier (letters, digits, _)")
        if name.lower() in VIEW_NAMES or name.startswith("_"):
            raise QueryError(
                f"table name {name!r} is reserved: the views and names starting with _ are the warehouse's"
            )


class QueryEngine:
    """An in-memory DuckDB whose views read a ReadView; one cursor per thread.

    The table's files are read by URI with `read_parquet` wherever they are: `location`
    registers the filesystem that reaches them (nothing to do for a local table).
    """

    def __init__(self, location: Location | None = None, threads: int | None = None):
        config = {"threads": threads} if threads else {}
        self._db = duckdb.connect(":memory:", config=config)
        if location is not None:
            location.connect_duckdb(self._db)
        self._db.execute("SET parquet_metadata_cache = true")
        self._db.execute(MACROS_SQL)
        self._summaries = SessionSummaries()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def run(
        self,
        view: ReadView,
        query: str,
        params: Params = None,
        tables: Tables = None,
    ) -> pa.Table:
        """Run one read-only statement against `view`; `tables` are visible to it by name."""
        check_read_only(query)
        tables = dict(tables or {})
        check_table_names(tables)
        cursor = self._prepare(view)
        summary = None
        registered: list[str] = []
        try:
            # Registered on this thread's cursor, so no other statement ever sees them.
            for name, table in tables.items():
                cursor.con.register(name, table)
                registered.append(name)
            # A hint, not a guard: a false match only builds the summary early. (DuckDB's
            # get_table_names binds our views and refuses parameters, so it cannot serve.)
            if _MENTIONS_SESSIONS.search(query):
                summary = self._use_summary(cursor, view)
            return cursor.con.sql(query, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        finally:
            for name in registered:
                cursor.con.unregister(name)
            if summary is not None:
                self._summaries.release(summary, cursor.con)

    def warm_sessions(self, view: ReadView) -> None:
        """Bring the sessions summary up to `view`'s files now, if anyone has used it."""
        if self._summaries.used:
            cursor = self._prepare(view)
            self._summaries.release(self._use_summary(cursor, view), cursor.con)

    def _use_summary(self, cursor: _Cursor, view: ReadView) -> str:
        name = self._summaries.acquire(cursor.con, view.files)
        if cursor.summary != name:
            # The table name is one the engine made; nothing here comes from a caller.
            cursor.con.execute(VIEW_SQL.replace("{parts}", name))
            cursor.summary = name
        return name

    def _prepare(self, view: ReadView) -> _Cursor:
        cursor: _Cursor | None = getattr(self._local, "cursor", None)
        if cursor is None:
            con = self._db.cursor()
            con.execute("SET TimeZone = 'UTC'")
            with self._lock:
                self._cursors.append(con)
            cursor = self._local.cursor = _Cursor(con)
        con = cursor.con
        columns = tuple(view.schema.names)
        if cursor.files != view.files or cursor.columns != columns:
            if view.files:
                con.execute("SET VARIABLE cerver_files = ?", [list(view.files)])
                con.execute(
                    "CREATE OR REPLACE TEMP VIEW _parts AS SELECT * FROM read_parquet("
                    "getvariable('cerver_files'), union_by_name = true, hive_partitioning = false)"
                )
            else:
                con.register("_no_parts", view.schema.empty_table())
                con.execute("CREATE OR REPLACE TEMP VIEW _parts AS SELECT * FROM _no_parts")
            cursor.files = view.files
        if cursor.tail_version != view.tail_version:
            con.register("_tail", view.tail)
            cursor.tail_version = view.tail_version
        if cursor.columns != columns:
            # Identifiers come from the schema object, never from a caller.
            select = ", ".join(f'"{name}"' for name in columns)
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW events AS SELECT {select} FROM "
                "(SELECT * FROM _parts UNION ALL BY NAME SELECT * FROM _tail)"
            )
            con.execute(VIEWS_SQL)
            cursor.columns = columns
        return cursor

    def close(self) -> None:
        """Close every cursor and the database."""
        with self._lock:
            for con in self._cursors:
                con.close()
            self._cursors.clear()
        self._db.close()

"""Session summaries of the Parquet parts, materialised once per set of live files.

The `sessions` view is an aggregate over every event; recomputing it per query costs
seconds at ten million events. The parts are immutable files, so their per-session
summary is computed once per file list and kept as a table in the engine's database.
A flush only adds files: the new summary is the old one with the new files' sessions
merged in, not a rebuild. A compaction swaps files, so its summary is rebuilt.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

_SQL = Path(__file__).with_name("sessions.sql").read_text()
MACROS_SQL, VIEW_SQL = _SQL.split("-- section: view")
KEEP = 2  # summaries kept beyond those in use: the newest, and the one before


@dataclass
class _Summary:
    name: str
    files: frozenset[str]
    refs: int = 0


class SessionSummaries:
    """The engine's materialised summaries, shared by all its cursors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._summaries: dict[tuple[str, ...], _Summary] = {}
        self._names = (f"_session_parts_{n}" for n in itertools.count())
        self.used = False

    def acquire(self, con: duckdb.DuckDBPyConnection, files: tuple[str, ...]) -> str:
        """The summary table for `files` (built if need be, on `con`, whose `_parts` reads them)."""
        with self._lock:
            self.used = True
            summary = self._summaries.get(files)
            if summary is None:
                summary = self._build(con, files)
            summary.refs += 1
            return summary.name

    def release(self, name: str, con: duckdb.DuckDBPyConnection) -> None:
        """A query on `name` has finished; drop summaries nobody needs any more."""
        with self._lock:
            for summary in self._summaries.values():
                if summary.name == name:
                    summary.refs -= 1
            self._evict(con)

    def _build(self, con: duckdb.DuckDBPyConnection, files: tuple[str, ...]) -> _Summary:
        wanted = frozenset(files)
        base = max(
            (s for s in self._summaries.values() if s.files <= wanted),
            key=lambda s: len(s.files),
            default=None,
        )
        name = next(self._names)
        added = sorted(wanted - base.files) if base is not None else []
        # Names are made here, never taken from a caller; values go through variables.
        if base is None:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM session_partials('_parts')")
        elif not added:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {base.name}")
        else:
            con.execute("SET VARIABLE cerver_new_files = ?", [added])
            con.execute(
                "CREATE OR REPLACE TEMP VIEW _new_parts AS SELECT * FROM read_parquet("
                "getvariable('cerver_new_files'), union_by_name = true, hive_partitioning = false)"
            )
            con.execute(
                "CREATE OR REPLACE TEMP VIEW _new_partials AS SELECT * FROM session_partials('_new_parts')"
            )
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW _merge_input AS "
                f"SELECT b.* FROM {base.name} AS b SEMI JOIN _new_partials AS n "
                "ON b.tenant_id = n.tenant_id AND b.session_id = n.session_id "
                "UNION ALL BY NAME SELECT * FROM _new_partials"
            )
            con.execute(
                f"CREATE TABLE {name} AS "
                f"SELECT b.* FROM {base.name} AS b ANTI JOIN _new_partials AS n "
                "ON b.tenant_id = n.tenant_id AND b.session_id = n.session_id "
                "UNION ALL BY NAME SELECT * FROM merge_session_partials('_merge_input')"
            )
        summary = _Summary(name, wanted)
        self._summaries[files] = summary
        return summary

    def _evict(self, con: duckdb.DuckDBPyConnection) -> None:
        idle = [key for key, s in self._summaries.items() if s.refs == 0]
        for key in idle[:-KEEP] if len(idle) > KEEP else []:
            con.execute(f"DROP TABLE IF EXISTS {self._summaries.pop(key).name}")

"""Helpers for the importer tests: run an import, and read back what each session holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import warehouse
from ingest.importers import Summary, import_path, source

FIXTURES = Path(__file__).parent / "fixtures"
CASES = FIXTURES / "import"  # hand-made, one folder per case with an expected.json


def run(wh: warehouse.Warehouse, name: str, path: Path | str, tenant: str = "t1", **options: Any) -> Summary:
    """Import `path` with the `name` importer as user u1 of `tenant`."""
    return import_path(wh, source(name), path, tenant_id=tenant, user_id="u1", **options)


def sessions(wh: warehouse.Warehouse, tenant: str = "t1") -> dict[str, dict[str, Any]]:
    """Per session, read through the views: parent, message roles, runs, token sums, tool events, models."""
    facts: dict[str, dict[str, Any]] = {}
    rows = wh.sql(
        "SELECT session_id, parent_session_id, messages, runs, input_tokens, output_tokens "
        "FROM sessions WHERE tenant_id = ?",
        [tenant],
    ).to_pylist()
    for row in rows:
        facts[row["session_id"]] = {
            "parent": row["parent_session_id"],
            "roles": {},
            "runs": row["runs"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "tool_calls": 0,
            "tool_results": 0,
            "models": [],
            "messages": row["messages"],
        }
    roles = "SELECT session_id, role, count(*) AS n FROM messages WHERE tenant_id = ? GROUP BY ALL"
    for row in wh.sql(roles, [tenant]).to_pylist():
        facts[row["session_id"]]["roles"][row["role"]] = row["n"]
    runs = (
        "SELECT session_id, sum(cache_read_tokens)::BIGINT AS r, sum(cache_write_tokens)::BIGINT AS w, "
        "list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL) AS models "
        "FROM runs WHERE tenant_id = ? GROUP BY ALL"
    )
    for row in wh.sql(runs, [tenant]).to_pylist():
        fact = facts[row["session_id"]]
        fact["cache_read_tokens"], fact["cache_write_tokens"] = row["r"], row["w"]
        fact["models"] = row["models"] or []
    tools = (
        "SELECT session_id, count(*) FILTER (WHERE type = 'tool.call') AS c, "
        "count(*) FILTER (WHERE type = 'tool.result') AS r FROM events WHERE tenant_id = ? GROUP BY ALL"
    )
    for row in wh.sql(tools, [tenant]).to_pylist():
        facts[row["session_id"]]["tool_calls"], facts[row["session_id"]]["tool_results"] = row["c"], row["r"]
    return facts


def without_message_count(facts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The facts an expected.json states (the message count is the sum of the roles)."""
    out = {}
    for session, fact in facts.items():
        assert fact["messages"] == sum(fact["roles"].values()), session
        out[session] = {k: v for k, v in fact.items() if k != "messages"}
    return out


def transcript(wh: warehouse.Warehouse, tenant: str = "t1") -> list[tuple[Any, ...]]:
    """Every message and tool event, without its tenant: to compare two imports of the same files."""
    query = (
        "SELECT session_id, event_id, type, role, content, status FROM events "
        "WHERE tenant_id = ? AND type IN ('message', 'tool.call', 'tool.result', 'session.created') "
        "ORDER BY ALL"
    )
    return [tuple(r.values()) for r in wh.sql(query, [tenant]).to_pylist()]


def expected(case: str) -> dict[str, Any]:
    """A hand-made case's expected.json."""
    return json.loads((CASES / case / "expected.json").read_text())


def data_lines(path: Path) -> list[str]:
    """A JSONL file's lines, each with its newline."""
    return path.read_text().splitlines(keepends=True)

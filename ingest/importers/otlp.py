"""OTLP/HTTP JSON trace exports saved to files: one ExportTraceServiceRequest per line, or one document.

Each export goes through `ingest.otlp` exactly as `POST /v1/traces` would: GenAI spans become
`run.completed` / `run.failed` events with ids made from the trace and span ids, so a file
imported twice (or also sent to the server) adds nothing. Spans without a user get `--user`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest import otlp
from ingest.importers.base import Malformed, Origin, Tally, dumps

NAME = "otlp"
SUFFIXES = (".json", ".jsonl", ".ndjson")


class Otlp:
    """The `otlp` source."""

    name = NAME
    creates_sessions = False

    def discover(self, root: Path) -> list[Path]:
        """`root` itself, or the `.json`, `.jsonl` and `.ndjson` files under it."""
        if root.is_file():
            return [root]
        return sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file())

    def whole_document(self, path: Path) -> bool:
        """A file whose first line is not JSON on its own is one (pretty-printed) document."""
        with open(path, "rb") as f:
            for raw in f:
                if raw.strip():
                    try:
                        json.loads(raw)
                    except ValueError:
                        return True
                    return False
        return False

    def parser(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any] | None) -> _Parser:
        """A parser for one export file."""
        return _Parser(path, origin, tally)


class _Parser:
    def __init__(self, path: Path, origin: Origin, tally: Tally):
        self.file = str(path)
        self.origin = origin
        self.tally = tally

    def feed(self, record: dict[str, Any], line: int) -> list[dict[str, Any]]:
        if not isinstance(record.get("resourceSpans"), list):
            raise Malformed("not an OTLP export request (no resourceSpans list)")
        converted = otlp.to_events(self.origin.tenant_id, record)
        if converted.skipped:
            self.tally.skip("span (not GenAI)", converted.skipped)
        for event in converted.events:
            event["user_id"] = event.get("user_id") or self.origin.user_id
            attrs = json.loads(event["attrs"])
            event["attrs"] = dumps({**attrs, "source": {"file": self.file, "line": line}})
        return converted.events

    def finish(self) -> list[dict[str, Any]]:
        return []

    def context(self) -> dict[str, Any]:
        return {}

"""Transcript importers: Claude Code, Codex and Gemini CLI sessions (and OTLP files) into the warehouse.

    import warehouse
    from ingest.importers import import_path, source

    with warehouse.open("cerver-data") as wh:
        summary = import_path(wh, source("claude-code"), "~/.claude", tenant_id="default", user_id="me")

Imports are incremental and idempotent: each file is read from where the last import of
it stopped (state in `<data>/import/<tenant>/<source>.json`), and every event id is made
from the source's own ids, so importing the same files again adds nothing. See docs/import.md.
"""

from __future__ import annotations

from ingest.importers.base import InvalidImport, Malformed, Origin, Parser, Source, Tally, default_user
from ingest.importers.claude_code import ClaudeCode
from ingest.importers.codex import Codex
from ingest.importers.gemini import Gemini
from ingest.importers.otlp import Otlp
from ingest.importers.runner import Problem, Summary, import_path

SOURCES: dict[str, Source] = {s.name: s for s in (ClaudeCode(), Codex(), Gemini(), Otlp())}

__all__ = [
    "SOURCES",
    "InvalidImport",
    "Malformed",
    "Origin",
    "Parser",
    "Problem",
    "Source",
    "Summary",
    "Tally",
    "default_user",
    "import_path",
    "source",
]


def source(name: str) -> Source:
    """The importer named `name` (one of SOURCES); KeyError for an unknown one."""
    return SOURCES[name]

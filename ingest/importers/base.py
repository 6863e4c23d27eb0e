"""The importer contract: a source finds transcript files, a parser turns their records into events.

A source (`claude-code`, `codex`, `gemini`, `otlp`) is one module with one class that has a
`name`, `discover(root)` and `parser(...)`. The runner owns everything else: reading files
from where the last import stopped, counting malformed lines, batching appends, keeping state.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class InvalidImport(ValueError):
    """The import cannot start: an invalid tenant or user name."""


class Malformed(ValueError):
    """A record that cannot be read (bad shape, missing field): counted with file and line, never fatal."""


@dataclass(frozen=True)
class Origin:
    """Whose events these are: the tenant and user every imported event is stamped with."""

    tenant_id: str
    user_id: str


@dataclass
class Tally:
    """Records read but not imported, by kind (unknown record types, redundant copies, …)."""

    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, kind: str, n: int = 1) -> None:
        """Count `n` records of `kind` as read and deliberately not imported."""
        self.skipped[kind] += n


class Parser(Protocol):
    """Turns one file's records into events, resumably: `context()` is saved and handed back next time."""

    def feed(self, record: Any, line: int) -> list[dict[str, Any]]:
        """Events for one record (a JSONL line, or a whole JSON document as line 1); raises Malformed."""
        ...

    def finish(self) -> list[dict[str, Any]]:
        """Events held back until the end of what was readable (e.g. a response's final usage)."""
        ...

    def context(self) -> dict[str, Any]:
        """What the next import of this file needs to resume after the last line fed (JSON-safe)."""
        ...


class Source(Protocol):
    """One transcript format."""

    name: str
    creates_sessions: bool  # writes a session.created per session (OTLP spans carry no session start)

    def discover(self, root: Path) -> list[Path]:
        """The files to import under `root` (a home folder such as ~/.claude, a subfolder, or one file)."""
        ...

    def whole_document(self, path: Path) -> bool:
        """True when the file is one JSON document rewritten in place rather than appended line by line."""
        ...

    def parser(self, path: Path, origin: Origin, tally: Tally, context: dict[str, Any] | None) -> Parser:
        """A parser for `path`, resuming from `context` (None: from the start of the file)."""
        ...


class Events:
    """Builds this source's events for one file: harness, tenant, user and the source location in attrs."""

    def __init__(self, source: str, path: Path, origin: Origin):
        self.harness = f"import:{source}"
        self.file = str(path)
        self.origin = origin

    def make(
        self,
        type: str,  # noqa: A002 - the event's column name
        event_id: str,
        ts: dt.datetime,
        session_id: str,
        line: int,
        attrs: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """One event of the warehouse schema; `attrs` gets the source file and line added."""
        return {
            "event_id": event_id,
            "ts": ts,
            "tenant_id": self.origin.tenant_id,
            "user_id": self.origin.user_id,
            "session_id": session_id,
            "type": type,
            "harness": self.harness,
            **fields,
            "attrs": dumps({**(attrs or {}), "source": {"file": self.file, "line": line}}),
        }


def default_user() -> str:
    """The login name of whoever runs the import, else "local"."""
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):  # no name in the environment nor in the password database
        return "local"


def check_name(kind: str, value: str) -> str:
    """A tenant or user name: 1-128 characters; a tenant also names a folder, so letters, digits, - and _."""
    if not value or len(value) > 128:
        raise InvalidImport(f"a {kind} is 1-128 characters, got {value!r}")
    if kind == "tenant" and not value.replace("-", "").replace("_", "").isalnum():
        raise InvalidImport(f"a tenant is letters, digits, '-' or '_', got {value!r}")
    return value


def dumps(value: Any) -> str:
    """Compact JSON text, as the warehouse stores structured content."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def timestamp(value: Any) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 string (or epoch seconds/milliseconds); raises Malformed."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Malformed(f"not an ISO 8601 timestamp: {value[:40]!r}") from None
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    raise Malformed(f"no timestamp (got {type(value).__name__})")


def count(value: Any) -> int:
    """A token count: a non-negative integer (None and junk count as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def litellm_model(model: Any, provider: str) -> str | None:
    """A model name as litellm spells it: `provider/model` unless it already names its provider."""
    if not isinstance(model, str) or not model or model.startswith("<"):
        return None
    return model if "/" in model else f"{provider}/{model}"


def latency_ms(start: dt.datetime | None, end: dt.datetime) -> float | None:
    """Milliseconds from start to end, when both are known and in order."""
    if start is None or end < start:
        return None
    return (end - start).total_seconds() * 1000

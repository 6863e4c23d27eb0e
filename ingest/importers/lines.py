"""Reading a JSONL file from a byte offset: complete lines, and what to make of an unterminated last one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


@dataclass
class Line:
    """One line read: its number, the offset just past it, and its record or why it has none."""

    number: int
    end: int
    record: Any = None
    error: str | None = None
    terminated: bool = True


def read_lines(path: Path, offset: int, first_number: int, continuing: bool = False) -> Iterator[Line]:
    """The non-empty lines from `offset` on, parsed as JSON; the last one may be unterminated.

    `continuing`: the previous import consumed an unterminated last line, so the bytes up
    to the first newline belong to it (nothing, if the writer only added the newline).
    """
    number = first_number
    with open(path, "rb") as f:
        f.seek(offset)
        position = offset
        pending = b""
        while chunk := f.read(CHUNK):
            parts = (pending + chunk).split(b"\n")
            pending = parts.pop()
            for raw in parts:
                position += len(raw) + 1
                if continuing:
                    continuing = False
                    if raw.strip():
                        yield Line(number - 1, position, error="line grew after it was imported")
                    continue
                if raw.strip():
                    yield _parsed(raw, number, position)
                number += 1
        if pending.strip() and not continuing:
            line = _parsed(pending, number, position + len(pending))
            line.terminated = False
            yield line


def _parsed(raw: bytes, number: int, end: int) -> Line:
    try:
        return Line(number, end, record=json.loads(raw))
    except ValueError as exc:
        return Line(number, end, error=f"not JSON: {exc}")


def read_document(path: Path) -> tuple[Any, int, str | None]:
    """A whole-file JSON document, its line count, and the parse error if it is not (yet) valid."""
    data = path.read_bytes()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    try:
        return json.loads(data), lines, None
    except ValueError as exc:
        return None, lines, f"not a JSON document (still being written?): {exc}"

"""What the CLI stream parsers share: reading one JSON line, and the text that reaches the caller."""

from __future__ import annotations

import json
from typing import Any

from api.adapters.harness.base import HarnessError

PARAGRAPH = "\n\n"  # between two separate texts of one turn, as the caller reads them


def record(line: str, cli: str) -> dict[str, Any] | None:
    """One stdout line as a JSON object; None for a blank line; HarnessError for anything else."""
    text = line.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise HarnessError(f"{cli} printed a malformed line: {text[:200]!r}")
    return value


class Said:
    """The text the caller has been streamed so far; separate texts start a new paragraph."""

    def __init__(self) -> None:
        self.any = False
        self.fresh = True  # the next delta starts a new text

    def new_text(self) -> None:
        """The next delta belongs to another text block or message."""
        self.fresh = True

    def delta(self, text: str) -> list[str]:
        """`text` as the caller should see it (nothing for an empty delta)."""
        if not text:
            return []
        out = PARAGRAPH + text if self.fresh and self.any else text
        self.any, self.fresh = True, False
        return [out]


def text_of(content: Any) -> str:
    """A tool result's content as text: a string as is, text blocks joined, anything else as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(c, dict) and c.get("type") == "text" for c in content):
        return "\n".join(str(c.get("text", "")) for c in content)
    return "" if content is None else json.dumps(content, ensure_ascii=False, separators=(",", ":"))

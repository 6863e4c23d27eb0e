"""bench/RESULTS.md holds one `## ` section per benchmark; each run replaces only its own."""

from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Benchmark results"


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace (or append) the section that starts with `heading`, keeping the others as they are."""
    text = path.read_text() if path.exists() else TITLE + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    body = section.rstrip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")

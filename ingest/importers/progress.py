"""A one-line progress bar for a terminal, and the plain summary printed after every import."""

from __future__ import annotations

from ingest.importers.runner import Summary
from ingest.progress import Bar


class ProgressBar(Bar):
    """`claude-code: [####....] files  lines  events`; call it with the running Summary."""

    def __call__(self, s: Summary) -> None:
        done = s.files_done / s.files if s.files else 1.0
        self.draw(s.source, done, f"{s.files_done}/{s.files} files  {s.lines:,} lines  {s.events:,} events")


def describe(s: Summary) -> str:
    """The summary as a few lines of text."""
    rate = f", {s.lines / s.seconds:,.0f} lines/s" if s.seconds > 0 and s.lines else ""
    out = [
        f"{s.source}: {s.files} file(s) ({s.files_unchanged} unchanged, "
        f"{s.files_restarted} read again from the start), {s.lines:,} line(s) read in {s.seconds:.1f}s{rate}",
        f"events: {s.events:,} added, {s.duplicates:,} already stored",
    ]
    if s.malformed:
        out.append(
            f"malformed: {s.malformed:,} line(s) not imported" + (", the first:" if s.problems else "")
        )
        out += [f"  {p}" for p in s.problems]
    if s.skipped:
        kinds = ", ".join(
            f"{kind} {n:,}" for kind, n in sorted(s.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        out.append(f"skipped (not imported, by type): {kinds}")
    return "\n".join(out) + "\n"

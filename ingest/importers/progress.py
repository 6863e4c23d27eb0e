"""A one-line progress bar for a terminal, and the plain summary printed after every import."""

from __future__ import annotations

from typing import TextIO

from ingest.importers.runner import Summary

WIDTH = 24


class ProgressBar:
    """Redraws `[####....] files  lines  events` in place; call it with the running Summary."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.drawn = False

    def __call__(self, s: Summary) -> None:
        done = s.files_done / s.files if s.files else 1.0
        bar = "#" * round(done * WIDTH)
        text = (
            f"\r{s.source}: [{bar:<{WIDTH}}] {s.files_done}/{s.files} files  "
            f"{s.lines:,} lines  {s.events:,} events"
        )
        self.stream.write(text)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line so what follows starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


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

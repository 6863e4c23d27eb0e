"""The demo's progress bar (a terminal only) and the summary printed after every run."""

from __future__ import annotations

from typing import TextIO

from ingest.demo import DemoSummary

WIDTH = 24


class ProgressBar:
    """Redraws `demo: [#####...] sessions  events` in place; call it with the running DemoSummary."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.drawn = False

    def __call__(self, s: DemoSummary) -> None:
        bar = "#" * round(s.done / s.planned * WIDTH)
        self.stream.write(f"\rdemo: [{bar:<{WIDTH}}] {s.done:,}/{s.planned:,} sessions  {s.events:,} events")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line so what follows starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def describe(s: DemoSummary) -> str:
    """The summary as one line of text."""
    rate = f", {s.events / s.seconds:,.0f} events/s" if s.seconds > 0 else ""
    return (
        f"demo: {s.planned:,} sessions (+{s.children:,} fan-out children) of {s.users:,} users, "
        f"{s.runs:,} runs, ${s.cost_usd:,.2f}; {s.events:,} events ({s.added:,} added, "
        f"{s.duplicates:,} already stored) in {s.seconds:.1f}s{rate}; tenant {s.tenant!r}, seed {s.seed}, "
        f"{s.start:%Y-%m-%d} to {s.end:%Y-%m-%d}\n"
    )

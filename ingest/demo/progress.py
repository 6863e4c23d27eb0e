"""The demo's progress bar (a terminal only) and the summary printed after every run."""

from __future__ import annotations

from ingest.demo import DemoSummary
from ingest.progress import Bar


class ProgressBar(Bar):
    """`demo: [#####...] sessions  events`; call it with the running DemoSummary."""

    def __call__(self, s: DemoSummary) -> None:
        self.draw("demo", s.done / s.planned, f"{s.done:,}/{s.planned:,} sessions  {s.events:,} events")


def describe(s: DemoSummary) -> str:
    """The summary as one line of text."""
    rate = f", {s.events / s.seconds:,.0f} events/s" if s.seconds > 0 else ""
    return (
        f"demo: {s.planned:,} sessions (+{s.children:,} fan-out children) of {s.users:,} users, "
        f"{s.runs:,} runs, ${s.cost_usd:,.2f}; {s.events:,} events ({s.added:,} added, "
        f"{s.duplicates:,} already stored) in {s.seconds:.1f}s{rate}; tenant {s.tenant!r}, seed {s.seed}, "
        f"{s.start:%Y-%m-%d} to {s.end:%Y-%m-%d}\n"
    )

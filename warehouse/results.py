"""What `append` and `compact` answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AppendResult:
    """How many events a batch added, and how many were already stored.

    `stored` marks, row by row in the order given, the events this append stored (the others
    were duplicates), for callers that append several requests' events at once.
    """

    accepted: int
    duplicates: int
    stored: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did."""

    partitions: int
    files_before: int
    files_after: int
    vacuumed: int

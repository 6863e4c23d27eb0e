"""Small vectorised draws the demo's planners share."""

from __future__ import annotations

import numpy as np


def lognormal(
    rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, n: int
) -> np.ndarray:
    """Lognormal samples with the given median(s) and spread(s)."""
    return np.asarray(median, dtype=np.float64) * np.exp(sigma * rng.standard_normal(n))


def with_tail(
    rng: np.random.Generator, values: np.ndarray, share: float = 0.015, cap: float = 20.0
) -> np.ndarray:
    """`values` with a Pareto-sized stall on a `share` of them: the rare very slow call."""
    stalled = rng.random(len(values)) < share
    factor = np.minimum(1.0 + 2.0 * rng.pareto(1.5, len(values)), cap)
    return np.where(stalled, values * factor, values)


def pick(rng: np.random.Generator, shares: np.ndarray, row: np.ndarray) -> np.ndarray:
    """For each element of `row`, an index drawn from that row of the (rows, k) `shares` matrix."""
    cdf = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(row))
    return np.minimum((u[:, None] >= cdf[row]).sum(axis=1), shares.shape[1] - 1)


def ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, … within each group of a run of groups of these sizes."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts, counts)


def uniform_int(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """An integer in [low, high] per element (inclusive)."""
    return low + np.floor(rng.random(len(low)) * (high - low + 1)).astype(np.int64)

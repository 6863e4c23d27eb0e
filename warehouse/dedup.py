"""The (tenant_id, event_id) index that makes a second event with the same id a no-op.

Ids are unique within a tenant: the same id under two tenants is two events, so one
tenant can never shadow (or probe for) another's.

It holds a 64-bit hash per stored event (8 bytes an event) in a few sorted numpy
runs, merged as they pile up. A hash hit is only a candidate: the caller confirms
it against the stored ids, so a hash collision can never drop a genuine event.
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pyarrow as pa

from warehouse.schema import SMALL_BATCH

_MAX_RUNS = 6
_DEFER_ROWS = 4096  # deferred keys are hashed together once this many are waiting


KEY = ["tenant_id", "event_id"]
_SEED = 0x5EED


_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads the tenant's hash before it is folded in


def _series(table: pa.Table, name: str) -> pl.Series:
    return pl.Series(table.column(name).combine_chunks())


def _hash(ids: pl.Series, tenants: pl.Series) -> np.ndarray:
    # Two plain string hashes folded together cost a third of one hash over a struct of both.
    with np.errstate(over="ignore"):
        return ids.hash(seed=_SEED).to_numpy() ^ (tenants.hash(seed=_SEED + 1).to_numpy() * _MIX)


def hash_keys(table: pa.Table) -> np.ndarray:
    """A uint64 hash per (tenant_id, event_id); stable within one process, all the index needs."""
    return _hash(_series(table, "event_id"), _series(table, "tenant_id"))


@functools.lru_cache(maxsize=1024)
def _tenant_term(tenant: str) -> np.uint64:
    """A tenant's share of the fold in `_hash`, remembered: a run's few events share one tenant."""
    with np.errstate(over="ignore"):
        return pl.Series([tenant]).hash(seed=_SEED + 1).to_numpy()[0] * _MIX


def hash_and_firsts(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """`hash_keys`, and a mask that is false for a key seen earlier in the same batch."""
    if table.num_rows <= SMALL_BATCH:
        # A few events (one run's): plain Python, and the tenant's hash from the cache.
        keys = list(zip(table.column("tenant_id").to_pylist(), table.column("event_id").to_pylist()))
        terms = np.fromiter((_tenant_term(t) for t, _ in keys), np.uint64, len(keys))
        ids = pl.Series([e for _, e in keys], dtype=pl.String)
        first = np.fromiter((keys.index(k) == i for i, k in enumerate(keys)), bool, len(keys))
        return ids.hash(seed=_SEED).to_numpy() ^ terms, first
    ids, tenants = _series(table, "event_id"), _series(table, "tenant_id")
    if tenants.n_unique() == 1:  # the usual batch: one tenant, so the id alone is the key
        first = ids.is_first_distinct()
    else:
        first = pl.DataFrame([tenants.alias("t"), ids.alias("e")]).select(
            pl.struct("t", "e").is_first_distinct()
        )
        first = first.to_series()
    return _hash(ids, tenants), first.to_numpy()


class IdIndex:
    """A set of id hashes with vectorised membership tests.

    Keys known to be new (ids the caller just minted) may join later: `defer` keeps them
    unhashed until a lookup needs them or enough have piled up, then hashes them in one go.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._deferred: list[pa.Table] = []
        self._deferred_rows = 0

    def defer(self, keys: pa.Table) -> None:
        """Add the (tenant_id, event_id) `keys` by the next lookup, hashed with others."""
        self._deferred.append(keys)
        self._deferred_rows += keys.num_rows
        if self._deferred_rows >= _DEFER_ROWS:
            self._fold()

    def _fold(self) -> None:
        if self._deferred:
            keys = pa.concat_tables(self._deferred)
            self._deferred, self._deferred_rows = [], 0
            self.add(hash_keys(keys))

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean mask: which hashes are (probably) present."""
        self._fold()
        found = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            if len(run):
                at = np.searchsorted(run, hashes)
                at[at == len(run)] = len(run) - 1
                found |= run[at] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        """Add hashes (duplicates are harmless)."""
        if len(hashes):
            self._runs.append(np.sort(hashes))
            self._compact_runs()

    def _compact_runs(self) -> None:
        # Keep runs in size tiers (each at least twice the next), like an LSM tree,
        # so a lookup touches few runs and merging stays amortised O(n log n).
        while len(self._runs) > 1 and (
            len(self._runs) > _MAX_RUNS or len(self._runs[-2]) <= 2 * len(self._runs[-1])
        ):
            newest = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], newest]), kind="stable")

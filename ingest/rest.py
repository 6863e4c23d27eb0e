"""REST ingest: a JSON array or NDJSON batch, checked event by event, stored in one durable append.

The tenant is the caller's (from its token), never the body's. Valid events are stored,
invalid ones are reported by index; a re-posted batch adds nothing.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

import warehouse
from warehouse.schema import to_table

MAX_BODY_BYTES = 10 << 20  # as sent (gzip included)
MAX_INFLATED_BYTES = 100 << 20  # after gunzip: a small zip bomb stops here
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


class BodyError(ValueError):
    """The body as a whole cannot be read (not JSON, not an array, bad gzip, too large)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Rejected:
    """One event that was not stored, and why."""

    index: int
    error: str


@dataclass
class IngestResult:
    """What a batch did."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "error": r.error} for r in self.rejected],
        }


def inflate(body: bytes, content_encoding: str | None) -> bytes:
    """The body, gunzipped when it says so; refuses to inflate past MAX_INFLATED_BYTES."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise BodyError(f"unsupported Content-Encoding {encoding!r}; send gzip or nothing", 415)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise BodyError(f"body is not valid gzip: {exc}") from None
    if len(out) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise BodyError(f"body inflates past {MAX_INFLATED_BYTES} bytes", 413)
    return out


def parse(body: bytes, content_type: str | None) -> tuple[list[Any], list[Rejected]]:
    """Items of a JSON array, or of NDJSON lines (a bad line is rejected, not fatal)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in NDJSON:
        items, bad = [], []
        for number, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                bad.append(Rejected(number, f"line {number + 1} is not JSON: {exc}"))
                items.append(_UNREADABLE)
        return items, bad
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BodyError(f"body is not JSON: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise BodyError("expected a JSON array of events (or NDJSON with Content-Type: application/x-ndjson)")
    return data, []


_UNREADABLE = object()


def ingest(wh: warehouse.Warehouse, tenant_id: str, items: list[Any], bad: list[Rejected]) -> IngestResult:
    """Check each item, store the valid ones in one durable append, report the rest."""
    return ingest_many(wh, [Batch(tenant_id, items, bad)])[0]


@dataclass
class Batch:
    """One request's parsed body: its tenant, its items, and the lines that were not JSON."""

    tenant_id: str
    items: list[Any]
    bad: list[Rejected] = field(default_factory=list)


def ingest_many(wh: warehouse.Warehouse, batches: list[Batch]) -> list[IngestResult]:
    """Several requests' batches in one validation pass and one durable append (apart, each
    would pay both in full for a few events); each request still gets its own result."""
    results = [IngestResult(rejected=list(b.bad)) for b in batches]
    prepared = [_prepared(batch, result) for batch, result in zip(batches, results)]
    everything = [e for events, _ in prepared for e in events]
    counts = [len(events) for events, _ in prepared]
    try:
        stored = wh.append(everything).stored if everything else None
    except warehouse.ValidationError:  # someone sent a bad event: check each request alone
        tables = [_validated(events, positions, r) for (events, positions), r in zip(prepared, results)]
        counts = [t.num_rows if t is not None else 0 for t in tables]
        kept = [t for t in tables if t is not None and t.num_rows]
        everything = [row for t in kept for row in t.select(["session_id"]).to_pylist()]
        stored = wh.append(pa.concat_tables(kept)).stored if kept else None
    if stored is not None:
        at = 0
        for result, count in zip(results, counts):
            result.accepted = int(stored[at : at + count].sum())
            result.duplicates = count - result.accepted
            result.sessions = {e["session_id"] for e in everything[at : at + count]}
            at += count
    for result in results:
        result.rejected.sort(key=lambda r: r.index)
    return results


def _prepared(batch: Batch, result: IngestResult) -> tuple[list[dict[str, Any]], list[int]]:
    """The batch's events with the caller's tenant, and their positions; non-events are rejected."""
    skip = {r.index for r in batch.bad}
    events, positions = [], []
    for index, item in enumerate(batch.items):
        if index in skip:
            continue
        event, error = _prepare(batch.tenant_id, item)
        if error is not None:
            result.rejected.append(Rejected(index, error))
        else:
            events.append(event)
            positions.append(index)
    return events, positions


def _prepare(tenant_id: str, item: Any) -> tuple[dict[str, Any], str | None]:
    if not isinstance(item, dict):
        return (
            {},
            f"expected an event object, got {type(item).__name__ if item is not _UNREADABLE else 'bad JSON'}",
        )
    if item.get("tenant_id") not in (None, tenant_id):
        return {}, "tenant_id comes from the token; leave it out or send your own"
    event = {**item, "tenant_id": tenant_id}
    if "event_id" not in event:
        event["event_id"] = warehouse.new_event_id()
    return event, None


def _validated(events: list[dict[str, Any]], positions: list[int], result: IngestResult) -> pa.Table | None:
    """The valid events as one table: the whole batch at once, else event by event to name each bad one."""
    if not events:
        return None
    try:
        return to_table(events)
    except warehouse.ValidationError:
        pass
    good = []
    for event, index in zip(events, positions):
        try:
            to_table([event])
        except warehouse.ValidationError as exc:
            result.rejected.append(Rejected(index, str(exc).removeprefix("event 0, ")))
            continue
        good.append(event)
    return to_table(good) if good else None

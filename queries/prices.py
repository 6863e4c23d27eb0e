"""The `prices` table: litellm's bundled price map (never fetched), one row per chat model."""

from __future__ import annotations

from functools import cache
from typing import Any

import pyarrow as pa

MODES = ("chat", "responses")  # the map's entries for models that take and write text tokens
SCHEMA = pa.schema(
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("input_cost_per_token", pa.float64(), nullable=False),
        pa.field("output_cost_per_token", pa.float64(), nullable=False),
        pa.field("cache_read_cost_per_token", pa.float64()),
        pa.field("cache_write_cost_per_token", pa.float64()),
    ]
)


@cache
def prices_table() -> pa.Table:
    """USD per token of every chat model litellm prices, named as the event table names models."""
    from ingest.pricing import litellm

    rows = price_rows(litellm().model_cost)
    return pa.Table.from_pylist([rows[name] for name in sorted(rows)], schema=SCHEMA)


def price_rows(cost_map: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of the prices table from a litellm-style price map, by model name.

    litellm keys some models bare (`gpt-4o`) and some with their provider (`gemini/…`);
    events name them `<provider>/<model>`, so a bare key gets its provider's prefix. When
    both spellings exist, the provider's own prefixed entry wins.
    """
    rows: dict[str, dict[str, Any]] = {}
    exact: set[str] = set()
    for key, entry in cost_map.items():
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        provider = entry.get("litellm_provider")
        if not isinstance(provider, str) or not provider:
            continue
        input_cost, output_cost = (
            _usd(entry.get("input_cost_per_token")),
            _usd(entry.get("output_cost_per_token")),
        )
        if input_cost is None or output_cost is None:
            continue  # priced some other way (per second, per character…): not by token
        name = key if key.startswith(f"{provider}/") else f"{provider}/{key}"
        if name in exact:
            continue
        if name == key:
            exact.add(name)
        rows[name] = {
            "model": name,
            "provider": provider,
            "input_cost_per_token": input_cost,
            "output_cost_per_token": output_cost,
            "cache_read_cost_per_token": _usd(entry.get("cache_read_input_token_cost")),
            "cache_write_cost_per_token": _usd(entry.get("cache_creation_input_token_cost")),
        }
    return rows


def _usd(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None

"""Prices from litellm's bundled price map (never fetched): cost of tokens on a model."""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def litellm() -> Any:
    """litellm, imported on first use with its local price map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as module

    module.suppress_debug_info = True
    module.telemetry = False
    return module


def price(
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
) -> float | None:
    """USD for these tokens on `model`; None when litellm has no price for it (never a guess)."""
    if not model or (input_tokens is None and output_tokens is None):
        return None
    try:
        prompt, completion = litellm().cost_per_token(
            model=model,
            prompt_tokens=input_tokens or 0,
            completion_tokens=output_tokens or 0,
            cache_read_input_tokens=cache_read_tokens or 0,
            cache_creation_input_tokens=cache_write_tokens or 0,
        )
    except Exception:  # litellm raises a zoo of errors for models it has no price for
        return None
    return prompt + completion


def price_events(events: list[dict[str, Any]]) -> None:
    """Fill `cost_usd` in place where the source gave tokens but no cost."""
    for e in events:
        if e.get("cost_usd") is None:
            e["cost_usd"] = price(
                e.get("model"),
                e.get("input_tokens"),
                e.get("output_tokens"),
                e.get("cache_read_tokens"),
                e.get("cache_write_tokens"),
            )

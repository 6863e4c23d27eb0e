"""Prices from litellm's bundled price map (never fetched): cost of tokens on a model.

litellm's `cost_per_token` resolves the model's name and walks its pricing rules on every
call (a fifth of a millisecond, on every turn). Most models are priced per token: the cost is
a sum of counts times rates. For those, the rates are read from litellm once per model and
checked against litellm itself at a large count of every kind (`_PROBE`), so a price with
tiers or any other rule that is not a plain per-token rate keeps going through litellm.
"""

from __future__ import annotations

import math
import os
from functools import cache, lru_cache
from typing import Any

Counts = tuple[int, int, int, int]  # input, output, cache read, cache write
Rates = tuple[float, float, float, float]  # USD per token of each of those
_PROBE = 2_000_000  # counts up to this many tokens of each kind may use a model's rates


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
    counts = (input_tokens or 0, output_tokens or 0, cache_read_tokens or 0, cache_write_tokens or 0)
    within = counts[0] <= _PROBE and counts[1] <= _PROBE and counts[2] + counts[3] <= counts[0]
    rates = _rates(model) if within else None
    return _dot(counts, rates) if rates is not None else _litellm_cost(model, counts)


def _litellm_cost(model: str, counts: Counts) -> float | None:
    """litellm's own price for these counts, or None."""
    try:
        prompt, completion = litellm().cost_per_token(
            model=model,
            prompt_tokens=counts[0],
            completion_tokens=counts[1],
            cache_read_input_tokens=counts[2],
            cache_creation_input_tokens=counts[3],
        )
    except Exception:  # litellm raises a zoo of errors for models it has no price for
        return None
    return prompt + completion


@lru_cache(maxsize=4096)
def _rates(model: str) -> Rates | None:
    """The model's price per token of each kind, if its price is exactly that up to `_PROBE`.

    Cached tokens are counted within the input, as providers report them: their rates are
    what one more of them adds to a one-token prompt.
    """
    one_input = _litellm_cost(model, (1, 0, 0, 0))
    one_output = _litellm_cost(model, (0, 1, 0, 0))
    read = _litellm_cost(model, (1, 0, 1, 0))
    write = _litellm_cost(model, (1, 0, 0, 1))
    if one_input is None or one_output is None or read is None or write is None:
        return None
    rates = (one_input, one_output, read - one_input, write - one_input)
    probe = (_PROBE, _PROBE, _PROBE // 2, _PROBE // 4)
    exact = _litellm_cost(model, probe)
    if exact is None or not math.isclose(exact, _dot(probe, rates), rel_tol=1e-9, abs_tol=1e-12):
        return None  # tiers, or a rule that is not per token: litellm prices every call
    return rates


def _dot(counts: Counts, rates: Rates) -> float:
    return counts[0] * rates[0] + counts[1] * rates[1] + counts[2] * rates[2] + counts[3] * rates[3]


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

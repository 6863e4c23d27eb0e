"""The demo's models as litellm names and prices them, and their cost per token as arrays.

Pricing millions of runs one litellm call at a time would take minutes, so each model's
per-token prices are read once from `ingest.pricing.price` and applied as arrays. The
arithmetic is litellm's own for these models below their long-context tier (input tokens
net of cache reads at the input price, cache reads at theirs, output at the output price);
`resolve` checks that on sample runs, so a litellm that prices differently fails loudly
rather than making the demo's costs disagree with `price`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ingest.demo.catalog import MODELS, Model
from ingest.pricing import price

MAX_INPUT_TOKENS = 120_000  # below every demo model's long-context price tier
_CHECKS = ((1_000, 200, 0), (54_321, 1_234, 40_000), (MAX_INPUT_TOKENS, 16_000, 7))


@dataclass(frozen=True)
class PricedModels:
    """The catalog's models that litellm prices, in catalog order, with per-token prices."""

    specs: tuple[Model, ...]
    names: tuple[str, ...]
    input: np.ndarray  # USD per input token (cache reads excluded)
    output: np.ndarray  # USD per output token
    cache_read: np.ndarray  # USD per cache-read token

    def index(self, slot: str) -> int | None:
        """The position of a catalog slot, or None if litellm has no price for it."""
        return next((i for i, m in enumerate(self.specs) if m.slot == slot), None)

    def cost(
        self, model: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, cached: np.ndarray
    ) -> np.ndarray:
        """USD per run, as `ingest.pricing.price` computes it (cached tokens are part of `inputs`)."""
        return (
            self.input[model] * (inputs - cached)
            + self.cache_read[model] * cached
            + self.output[model] * outputs
        )


def resolve() -> PricedModels:
    """Pick each slot's first priced name and read its prices."""
    specs, names, prices = [], [], []
    for spec in MODELS:
        for name in spec.names:
            if (per_input := price(name, 1, 0)) and per_input > 0:
                specs.append(spec)
                names.append(name)
                prices.append((per_input, price(name, 0, 1) or 0.0, price(name, 1, 0, 1) or 0.0))
                break
    if not specs:
        raise RuntimeError("litellm's price map has none of the demo's models")
    columns = np.array(prices, dtype=np.float64).T
    priced = PricedModels(tuple(specs), tuple(names), columns[0], columns[1], columns[2])
    _check(priced)
    return priced


def _check(priced: PricedModels) -> None:
    for m, name in enumerate(priced.names):
        for inputs, outputs, cached in _CHECKS:
            mine = priced.cost(np.array([m]), np.array([inputs]), np.array([outputs]), np.array([cached]))[0]
            theirs = price(name, inputs, outputs, cached)
            if theirs is None or not math.isclose(mine, theirs, rel_tol=1e-9):
                raise RuntimeError(
                    f"litellm prices {name} differently than the demo assumes: {theirs} != {mine} "
                    f"for {inputs} input, {outputs} output, {cached} cached tokens"
                )

"""ingest.pricing: a model priced per token uses its rates, and agrees with litellm to the last digits."""

from __future__ import annotations

import random

import pytest

from ingest import pricing

PROVIDERS = ("openai", "anthropic", "gemini", "xai")  # the providers the API's tests speak to


def exact(model: str, *counts: int) -> float | None:
    """litellm's own price, without the rates."""
    padded = (*counts, 0, 0, 0, 0)
    return pricing._litellm_cost(model, (padded[0], padded[1], padded[2], padded[3]))


def chat_models() -> list[str]:
    costs = pricing.litellm().model_cost
    return sorted(
        m
        for m, v in costs.items()
        if isinstance(v, dict) and v.get("mode") == "chat" and v.get("litellm_provider") in PROVIDERS
    )


def test_rates_agree_with_litellm_on_every_chat_model_of_the_main_providers() -> None:
    rng = random.Random(7)
    fast = 0
    for model in chat_models():
        fast += pricing._rates(model) is not None
        for _ in range(4):
            given = rng.randint(0, 400_000)
            counts = (given, rng.randint(0, 60_000), rng.randint(0, given // 2), rng.randint(0, given // 4))
            expected = exact(model, *counts)
            got = pricing.price(model, *counts)
            assert got is None if expected is None else got == pytest.approx(expected, rel=1e-9, abs=1e-15), (
                model,
                counts,
            )
    assert fast > 100  # most are plain per-token prices, so the rates do serve


def test_a_tiered_price_goes_through_litellm_above_its_tier() -> None:
    model = "gemini/gemini-2.5-pro"  # a higher rate above 200k input tokens
    assert pricing._rates(model) is None
    small, large = pricing.price(model, 1_000, 100), pricing.price(model, 300_000, 100)
    assert small == pytest.approx(exact(model, 1_000, 100), rel=1e-12)
    assert large == pytest.approx(exact(model, 300_000, 100), rel=1e-12)
    assert large / 300_000 > small / 1_000  # the tier applies: not the small rate extrapolated


def test_counts_outside_what_the_rates_were_checked_for_go_through_litellm() -> None:
    model = "openai/gpt-4o-mini"
    assert pricing._rates(model) is not None
    beyond = pricing._PROBE + 1
    assert pricing.price(model, beyond, 10) == pytest.approx(exact(model, beyond, 10), rel=1e-12)
    # More cached tokens than input tokens is not how providers report them: litellm decides.
    assert pricing.price(model, 10, 5, 50) == exact(model, 10, 5, 50)


def test_unpriced_models_and_missing_counts_have_no_price() -> None:
    assert pricing.price("openai/not-a-real-model-xyz", 100, 10) is None
    assert pricing.price("openai/gpt-4o-mini", None, None) is None
    assert pricing.price(None, 100, 10) is None
    assert pricing.price("openai/gpt-4o-mini", 100, None) == pytest.approx(exact("openai/gpt-4o-mini", 100))

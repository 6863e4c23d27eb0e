"""How each run goes: its outcome, retries and fallback, tokens, cost, latency and time to first token.

Plain (litellm) runs are model calls: a run may fail a retryable attempt or two before it
succeeds, or fall back to another model, each attempt recorded; a failed run gave up after
its retries (status `error` or `timeout`). Agent runs (Claude Code, Codex) call tools in
between; their latency is the whole run, tools included, so the timeline measures it.
A few runs are refused up front because the session's budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.demo import draw
from ingest.demo.catalog import (
    AGENT_HARNESSES,
    ATTEMPT_FAILURES,
    BUDGET_SHARE,
    FALLBACK_SHARE,
    HARNESSES,
    RETRYABLE,
    STREAMED_SHARE,
    TIMEOUT_MS,
    TOOLS_PER_RUN,
)
from ingest.demo.pools import BUDGET, ERROR, ERRORS, OK, TIMEOUT
from ingest.demo.prices import MAX_INPUT_TOKENS, PricedModels

MAX_OUTPUT_TOKENS = 16_000
MAX_TOOLS = 60
MAX_ATTEMPTS = 3


@dataclass
class Runs:
    """Per turn (fan-out turns included, with status -1): the run that answered it."""

    status: np.ndarray  # index into pools.STATUSES, -1: no run
    model: np.ndarray  # the model that answered (a fallback, sometimes)
    input_tokens: np.ndarray  # -1: none (failed runs carry no tokens)
    output_tokens: np.ndarray
    cache_read_tokens: np.ndarray  # -1: none
    cost_usd: np.ndarray  # NaN: none
    ttft_ms: np.ndarray  # NaN: none (not streamed, or failed)
    first_ttft_ms: np.ndarray  # the first model call's time to first token
    end_gap_ms: np.ndarray  # time from the last event inside the run to its end; NaN: up to the timeout
    error: np.ndarray  # index into pools.ERRORS, -1: none
    tools: np.ndarray  # tool calls in the run (agent runs)
    failed_attempts: np.ndarray  # attempts that failed before the last one (plain runs)
    attempt_kind: np.ndarray  # (turns, MAX_ATTEMPTS): index into ATTEMPT_FAILURES per failed attempt
    attempt_ms: np.ndarray  # (turns, MAX_ATTEMPTS): how long each failed attempt took
    last_attempt_ms: np.ndarray  # the successful attempt's time; NaN if none


def plan(
    rng: np.random.Generator,
    models: PricedModels,
    model: np.ndarray,
    harness: np.ndarray,
    number: np.ndarray,
    has_run: np.ndarray,
) -> Runs:
    """The runs of turns on these models and harnesses (`number`: the turn's place in its session)."""
    n = len(model)
    agent = np.isin(harness, [HARNESSES.index(h) for h in AGENT_HARNESSES])
    status = np.where(has_run, _status(rng, models, model, agent), -1)
    ok = status == OK
    fallback, answered_by = _fallbacks(rng, models, model, ok & ~agent)

    inputs, outputs, cached = _tokens(rng, models, answered_by, agent, number)
    tools = _tool_counts(rng, harness, agent, status)
    inputs = np.minimum(inputs + tools * 1_500, MAX_INPUT_TOKENS)  # tool results join the context
    outputs = np.minimum(outputs + tools * 120, MAX_OUTPUT_TOKENS)
    cost = models.cost(answered_by, inputs, outputs, np.maximum(cached, 0))

    ttft = _ttft(rng, models, answered_by)
    speed = np.array([m.tokens_per_s for m in models.specs])[answered_by]
    last_ms = np.minimum(ttft + outputs / speed * 1000 * draw.lognormal(rng, 1.0, 0.2, n), TIMEOUT_MS * 0.98)
    failed, kind, ms, errors = _attempts(rng, status, ok & ~agent, fallback, models, model)
    waited = _waited(rng, failed, ms, ok)
    streamed = rng.random(n) < STREAMED_SHARE

    end_gap = np.where(agent, _agent_end(rng, status, last_ms), np.where(ok, waited + last_ms, waited))
    end_gap = np.where(status == BUDGET, 1.0 + 4.0 * rng.random(n), end_gap)
    return Runs(
        status=status,
        model=answered_by,
        input_tokens=np.where(ok, inputs, -1),
        output_tokens=np.where(ok, outputs, -1),
        cache_read_tokens=np.where(ok, cached, -1),
        cost_usd=np.where(ok, cost, np.nan),
        ttft_ms=np.where(ok & (agent | streamed), np.where(agent, ttft, waited + ttft), np.nan),
        first_ttft_ms=ttft,
        end_gap_ms=end_gap,
        error=np.where(ok | (status < 0), -1, _error_message(rng, status, agent, errors)),
        tools=tools,
        failed_attempts=np.where(agent, 0, failed),
        attempt_kind=kind,
        attempt_ms=ms,
        last_attempt_ms=np.where(ok & ~agent, last_ms, np.nan),
    )


def _status(
    rng: np.random.Generator, models: PricedModels, model: np.ndarray, agent: np.ndarray
) -> np.ndarray:
    """OK, or a refusal over budget, or a failure (an error or a timeout) at the model's rates."""
    n = len(model)
    fails = np.array([m.fails for m in models.specs])[model] * np.where(agent, 1.5, 1.0)
    u = rng.random(n)
    status = np.where(u < BUDGET_SHARE, BUDGET, np.where(u < BUDGET_SHARE + fails, ERROR, OK))
    timed_out = rng.random(n) < np.array([m.timeouts for m in models.specs])[model]
    return np.where((status == ERROR) & timed_out, TIMEOUT, status)


def _fallbacks(
    rng: np.random.Generator, models: PricedModels, model: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which runs the fallback model answered, and the model that answered each run."""
    at = [models.index(m.fallback) for m in models.specs]
    fallback_of = np.array([-1 if i is None else i for i in at])[model]
    fallback = eligible & (fallback_of >= 0) & (rng.random(len(model)) < FALLBACK_SHARE)
    return fallback, np.where(fallback, fallback_of, model)


def _waited(rng: np.random.Generator, failed: np.ndarray, ms: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Time spent on failed attempts and the backoff after each (none after a run's last attempt)."""
    n = len(failed)
    backoff = 500.0 * 2.0 ** np.arange(MAX_ATTEMPTS) * (0.5 + rng.random((n, MAX_ATTEMPTS)))
    tried = np.arange(MAX_ATTEMPTS) < failed[:, None]
    waited = np.where(tried, ms + backoff, 0.0).sum(axis=1)
    last_backoff = backoff[np.arange(n), np.maximum(failed - 1, 0)]
    return waited - np.where(~ok & (failed > 0), last_backoff, 0.0)


def _tokens(
    rng: np.random.Generator, models: PricedModels, model: np.ndarray, agent: np.ndarray, number: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(model)
    earlier = number - 1  # the transcript grows turn by turn
    chat_in = draw.lognormal(rng, 700, 0.9, n) + earlier * draw.lognormal(rng, 450, 0.6, n)
    agent_in = draw.lognormal(rng, 18_000, 0.6, n) * (1 + 0.15 * earlier)
    inputs = np.minimum(np.rint(np.where(agent, agent_in, chat_in)), MAX_INPUT_TOKENS).astype(np.int64)
    thinking = np.array([m.thinking for m in models.specs])[model]
    out = np.where(agent, draw.lognormal(rng, 900, 0.7, n), draw.lognormal(rng, 280, 0.8, n)) * thinking
    outputs = np.minimum(np.maximum(np.rint(out), 1), MAX_OUTPUT_TOKENS).astype(np.int64)
    caches = np.where(agent, rng.random(n) < 0.92, (earlier > 0) & (rng.random(n) < 0.5))
    share = np.where(agent, 0.55 + 0.4 * rng.random(n), 0.3 + 0.55 * rng.random(n))
    cached = np.where(caches, np.floor(inputs * share).astype(np.int64), -1)
    return inputs, outputs, cached


def _tool_counts(
    rng: np.random.Generator, harness: np.ndarray, agent: np.ndarray, status: np.ndarray
) -> np.ndarray:
    median = np.ones(len(harness))
    for name, tools in TOOLS_PER_RUN.items():
        median[harness == HARNESSES.index(name)] = tools
    count = np.rint(draw.lognormal(rng, median, 0.9, len(harness)) - 0.5)
    count = np.where(
        (status == ERROR) | (status == TIMEOUT), np.floor(count * rng.random(len(harness))), count
    )
    return np.where(agent & (status >= 0) & (status != BUDGET), np.clip(count, 0, MAX_TOOLS), 0).astype(
        np.int64
    )


def _ttft(rng: np.random.Generator, models: PricedModels, model: np.ndarray) -> np.ndarray:
    median = np.array([m.ttft_ms for m in models.specs])[model]
    sigma = np.array([m.sigma for m in models.specs])[model]
    return np.minimum(draw.with_tail(rng, draw.lognormal(rng, median, sigma, len(model))), TIMEOUT_MS * 0.5)


def _attempts(
    rng: np.random.Generator,
    status: np.ndarray,
    plain_ok: np.ndarray,
    fallback: np.ndarray,
    models: PricedModels,
    model: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Failed attempts per run: how many, which failure, how long; and the last failure's kind."""
    n = len(status)
    retried = plain_ok & (fallback | (rng.random(n) < np.array([m.retries for m in models.specs])[model]))
    fatal = rng.random(n) < 0.2  # a bad request is not retried
    failed = np.where(retried, rng.integers(1, 3, n), 0)
    failed = np.where(status == ERROR, np.where(fatal, 1, MAX_ATTEMPTS), failed)
    failed = np.where(status == TIMEOUT, rng.integers(1, 3, n), failed)
    kind = rng.integers(0, RETRYABLE, (n, MAX_ATTEMPTS))
    last = np.maximum(failed - 1, 0)
    kind[np.arange(n), last] = np.where((status == ERROR) & fatal, RETRYABLE, kind[np.arange(n), last])
    median = np.array([ms for _, ms in ATTEMPT_FAILURES])[kind]
    ms = median * np.exp(0.5 * rng.standard_normal((n, MAX_ATTEMPTS)))
    timeout_ms = TIMEOUT_MS * (1 + 0.02 * rng.random((n, MAX_ATTEMPTS)))
    ms = np.where((status == TIMEOUT)[:, None], timeout_ms, ms)
    kind = np.where((status == TIMEOUT)[:, None], -1, kind)  # -1: the attempt timed out
    return failed, kind, np.round(ms, 3), kind[np.arange(n), last]


def _agent_end(rng: np.random.Generator, status: np.ndarray, last_ms: np.ndarray) -> np.ndarray:
    """The gap before an agent run's end: its final answer, a crash, or (NaN) the timeout."""
    crash = draw.lognormal(rng, 800, 0.8, len(status))
    return np.where(status == OK, last_ms, np.where(status == TIMEOUT, np.nan, crash))


def _error_message(
    rng: np.random.Generator, status: np.ndarray, agent: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    n = len(status)
    plain = np.select(
        [status == ERROR, status == TIMEOUT],
        [ERRORS.at("run:error") + np.maximum(kind, 0), np.full(n, ERRORS.at("run:timeout"))],
        ERRORS.at("run:budget_exceeded") + rng.integers(0, 3, n),
    )
    crashed = ERRORS.at("agent:error") + rng.integers(0, 3, n)
    on_agent = np.select(
        [status == ERROR, status == TIMEOUT], [crashed, np.full(n, ERRORS.at("agent:timeout"))], plain
    )
    return np.where(agent, on_agent, plain)

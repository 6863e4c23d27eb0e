"""One settings object for the API, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# Provider keys, and the model a new session gets when that key is set and no model is named.
_KEYED_DEFAULTS = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-3-5-haiku-20241022"),
    ("GEMINI_API_KEY", "gemini/gemini-2.0-flash"),
    ("XAI_API_KEY", "xai/grok-3-mini"),
)
OFFLINE_MODEL = "offline/echo"


def default_model() -> str:
    """`CERVER_DEFAULT_MODEL`, else the first provider with a key, else the offline echo model."""
    if explicit := os.environ.get("CERVER_DEFAULT_MODEL"):
        return explicit
    for key, model in _KEYED_DEFAULTS:
        if os.environ.get(key):
            return model
    return OFFLINE_MODEL


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    """Limits and timings; each has a CERVER_* variable."""

    data: str | None = None
    wal: str | None = None  # the local log folder; None: $CERVER_WAL, else warehouse.open's default
    compact: bool = True  # False on all but one of several instances sharing a table
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("CERVER_MAX_BODY_BYTES", 1 << 20)))
    model_timeout_s: float = field(default_factory=lambda: _float("CERVER_MODEL_TIMEOUT_S", 120.0))
    max_retries: int = field(default_factory=lambda: int(os.environ.get("CERVER_MODEL_RETRIES", 2)))
    backoff_s: float = field(default_factory=lambda: _float("CERVER_BACKOFF_S", 0.25))
    max_backoff_s: float = field(default_factory=lambda: _float("CERVER_MAX_BACKOFF_S", 8.0))
    max_variants: int = field(default_factory=lambda: int(os.environ.get("CERVER_MAX_VARIANTS", 8)))
    variant_timeout_s: float = field(default_factory=lambda: _float("CERVER_VARIANT_TIMEOUT_S", 300.0))
    # What a spawn's budget check assumes a variant writes when the request sets no max_tokens.
    spawn_output_estimate: int = field(
        default_factory=lambda: int(os.environ.get("CERVER_SPAWN_OUTPUT_TOKENS", 1024))
    )
    # Python's GIL switch interval in `cerver serve`: how long a thread that wants the GIL (the
    # writer's, the fsync waiter's, litellm's request builder) waits before the holder is asked to
    # let go. Python's 5 ms default put up to that much dead time into a turn; 0.5 ms took 0.3 ms
    # off a sequential turn's p50 and 0.45 ms off a streamed one's (A/B, bench machine).
    switch_interval_s: float = field(default_factory=lambda: _float("CERVER_SWITCH_INTERVAL_S", 0.0005))
    # Agent CLI harnesses (claude-code, codex): a turn's process is killed after this long.
    harness_timeout_s: float = field(default_factory=lambda: _float("CERVER_HARNESS_TIMEOUT_S", 900.0))
    # Where each session's CLI home lives (outside its workspace); default `<data>/harness-homes`.
    harness_homes: str | None = field(default_factory=lambda: os.environ.get("CERVER_HARNESS_HOMES"))

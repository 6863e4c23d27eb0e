"""What the demo's world is made of: models, harnesses, compute providers, commands and tools.

The numbers are invented but shaped like the field: a few cheap models carry most of the
traffic, reasoning models think before their first token and have heavier latency tails,
sandboxes boot slower than a laptop. Prices are not here: they come from litellm's map
(`ingest.demo.prices`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    """A model slot: the first of `names` that litellm prices is the one used."""

    names: tuple[str, ...]
    chat: float  # popularity among plain (litellm) chat sessions
    ttft_ms: float  # median time to first token
    tokens_per_s: float  # output speed once it streams
    sigma: float  # lognormal spread of the time to first token: the tail's weight
    fails: float  # share of runs that fail after every retry
    timeouts: float  # share of those failures that are timeouts
    retries: float  # share of successful runs that needed a retry first
    thinking: float  # output tokens relative to a plain chat model (reasoning tokens)
    quality: float  # how often its answer wins a fan-out, relative to the others
    fallback: str  # the slot name tried when this one keeps failing

    @property
    def slot(self) -> str:
        """The name the rest of the catalog refers to it by."""
        return self.names[0]


OPUS = ("anthropic/claude-opus-4-1", "anthropic/claude-opus-4-5")  # 4-1 when litellm prices it
GROK = ("xai/grok-4", "xai/grok-4-0709", "xai/grok-4.3", "xai/grok-latest")

# fmt: off
_MODEL_TABLE = (
    # names                          chat  ttft  tok/s sigma fails  timeouts retries thinking quality
    (("openai/gpt-4o-mini",),          0.24,  420,  85, 0.45, 0.012, 0.15,   0.05,   1.0,     0.55),
    (("openai/gpt-4o",),               0.13,  600,  60, 0.55, 0.018, 0.20,   0.06,   1.0,     0.70),
    (("openai/gpt-5",),                0.07, 3800,  55, 0.85, 0.030, 0.45,   0.07,   3.0,     0.92),
    (("openai/gpt-5-mini",),           0.08, 1900,  95, 0.70, 0.020, 0.30,   0.05,   2.2,     0.78),
    (("openai/gpt-5-codex",),          0.00, 2600,  70, 0.80, 0.025, 0.35,   0.05,   2.0,     0.88),
    (("anthropic/claude-sonnet-4-5",), 0.14, 1300,  60, 0.60, 0.022, 0.20,   0.08,   1.2,     0.90),
    (OPUS,                             0.03, 2200,  38, 0.75, 0.035, 0.35,   0.08,   1.3,     0.95),
    (("anthropic/claude-haiku-4-5",),  0.08,  550, 120, 0.50, 0.015, 0.12,   0.06,   1.0,     0.65),
    (("gemini/gemini-2.5-flash",),     0.11,  480, 170, 0.60, 0.020, 0.15,   0.05,   1.4,     0.68),
    (("gemini/gemini-2.5-pro",),       0.05, 3200,  85, 0.90, 0.045, 0.45,   0.07,   2.2,     0.90),
    (GROK,                             0.04,  900, 110, 0.65, 0.030, 0.25,   0.06,   1.5,     0.80),
    (("xai/grok-code-fast-1",),        0.03,  350, 190, 0.55, 0.025, 0.15,   0.05,   1.0,     0.70),
)
# fmt: on
FALLBACKS = {  # by slot
    "openai/gpt-4o-mini": "gemini/gemini-2.5-flash",
    "openai/gpt-4o": "openai/gpt-4o-mini",
    "openai/gpt-5": "openai/gpt-5-mini",
    "openai/gpt-5-mini": "openai/gpt-4o-mini",
    "openai/gpt-5-codex": "openai/gpt-5-mini",
    "anthropic/claude-sonnet-4-5": "anthropic/claude-haiku-4-5",
    OPUS[0]: "anthropic/claude-sonnet-4-5",
    "anthropic/claude-haiku-4-5": "openai/gpt-4o-mini",
    "gemini/gemini-2.5-flash": "openai/gpt-4o-mini",
    "gemini/gemini-2.5-pro": "gemini/gemini-2.5-flash",
    GROK[0]: "openai/gpt-4o-mini",
    "xai/grok-code-fast-1": GROK[0],
}
MODELS = tuple(Model(*row, fallback=FALLBACKS[row[0][0]]) for row in _MODEL_TABLE)

HARNESSES = ("litellm", "claude-code", "codex")
HARNESS_SHARE = (0.70, 0.18, 0.12)
AGENT_HARNESSES = frozenset({"claude-code", "codex"})

# The models each agent CLI drives (by slot), and how often.
AGENT_MODELS = {
    "claude-code": {
        "anthropic/claude-sonnet-4-5": 0.72,
        OPUS[0]: 0.16,
        "anthropic/claude-haiku-4-5": 0.12,
    },
    "codex": {
        "openai/gpt-5-codex": 0.45,
        "openai/gpt-5": 0.30,
        "openai/gpt-5-mini": 0.20,
        "openai/gpt-4o": 0.05,
    },
}
# A fan-out child on a model of this provider runs in this CLI this often (else plain litellm).
AGENT_FOR_PROVIDER = {"anthropic": ("claude-code", 0.35), "openai": ("codex", 0.30)}

COMPUTES = ("local", "relay", "e2b")
COMPUTE_SHARE_AGENT = (0.50, 0.20, 0.30)
COMPUTE_SHARE_CHAT = (0.85, 0.03, 0.04, 0.08)  # none (plain chat), then COMPUTES
EXEC_MS = (220.0, 650.0, 1000.0)  # median command duration on each provider, for a factor-1 command
EXEC_SIGMA = (1.0, 1.05, 1.25)
EXEC_ERRORS = (1.0, 1.2, 1.4)  # failing commands, relative
ATTACH_MS = (150.0, 900.0, 2500.0)  # a sandbox boots slower than a laptop answers
MOVE_MS = (3000.0, 5000.0, 8000.0)  # moving the workspace there

# (command, share, duration factor, failure rate)
COMMANDS = (
    ("ls -la", 0.08, 0.1, 0.01),
    ("git status", 0.08, 0.15, 0.01),
    ("git diff --stat", 0.05, 0.2, 0.01),
    ("cat README.md", 0.05, 0.1, 0.02),
    ("sed -n 1,80p src/app.py", 0.06, 0.1, 0.01),
    ("rg -n TODO src", 0.07, 0.3, 0.12),
    ("pytest -q", 0.12, 8.0, 0.30),
    ("python -m pytest tests/test_api.py -x", 0.06, 5.0, 0.30),
    ("npm test", 0.06, 10.0, 0.25),
    ("npm install", 0.03, 40.0, 0.05),
    ("pip install -r requirements.txt", 0.03, 30.0, 0.06),
    ("ruff check .", 0.05, 1.5, 0.25),
    ("mypy src", 0.04, 6.0, 0.30),
    ("make build", 0.04, 20.0, 0.15),
    ("cargo build", 0.03, 45.0, 0.20),
    ("go test ./...", 0.04, 12.0, 0.20),
    ("python main.py", 0.06, 3.0, 0.15),
    ("node index.js", 0.03, 2.0, 0.15),
    ("docker build -t app .", 0.02, 80.0, 0.10),
)
FAILED_EXIT_CODES = (1, 1, 1, 1, 2, 127, 137)

# Each CLI's tools and how often it calls them; the shell tool runs a command on the session's compute.
TOOLS = {
    "claude-code": {
        "Read": 0.24,
        "Edit": 0.16,
        "Bash": 0.24,
        "Grep": 0.10,
        "Glob": 0.06,
        "Write": 0.06,
        "TodoWrite": 0.07,
        "WebFetch": 0.03,
        "Task": 0.04,
    },
    "codex": {"shell": 0.62, "apply_patch": 0.26, "update_plan": 0.09, "web_search": 0.03},
}
SHELL_TOOLS = frozenset({"Bash", "shell"})
TOOL_CALL_ID_PREFIX = {"claude-code": "toolu_", "codex": "call_"}
TOOLS_PER_RUN = {"claude-code": 6.0, "codex": 4.0}  # median tool calls in one agent run

# Attempts that failed before a run succeeded or gave up: (HTTP status or None, median ms),
# in the order of texts.RUN_ERRORS["error"], whose last entry is the one non-retryable error.
ATTEMPT_FAILURES = ((429, 250.0), (500, 1500.0), (529, 900.0), (None, 2000.0), (400, 300.0))
RETRYABLE = 4  # the first four are retried
TIMEOUT_MS = 120_000.0  # the per-call timeout of plain model runs
AGENT_TIMEOUT_MS = 600_000.0  # an agent CLI run is given up on after this long
BUDGET_SHARE = 0.004  # runs refused because the session's budget is spent
FALLBACK_SHARE = 0.025  # successful plain runs answered by the fallback model
STREAMED_SHARE = 0.7  # plain runs that stream (and so have a time to first token)

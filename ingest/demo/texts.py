"""The demo's words: prompts, answers, tool inputs and outputs, error messages, app metadata.

Each is a fixed list, so an index into it is all an event needs; every list is built the
same way on every run (no randomness here), which keeps the demo deterministic per seed.
"""

from __future__ import annotations

import itertools
import json

from ingest.demo.catalog import COMMANDS, SHELL_TOOLS, TOOLS


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_string(text: str) -> str:
    """`text` as a JSON string literal (quotes included)."""
    return json.dumps(text, ensure_ascii=False)


def _product(templates: tuple[str, ...], subjects: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t.format(s) for t, s in itertools.product(templates, subjects))


CHAT_PROMPTS = _product(
    (
        "Summarise {} in three bullet points.",
        "Explain {} to a new colleague.",
        "What are the trade-offs of {}?",
        "Draft a short email about {} for the team.",
        "Give me a checklist for {}.",
        "Write a friendly FAQ answer about {}.",
    ),
    (
        "our refund policy",
        "the Q3 roadmap",
        "vector databases",
        "onboarding a new customer",
        "GDPR data requests",
        "the incident from last night",
        "pricing for the team plan",
        "rate limits in our API",
        "the migration to Postgres 17",
        "prompt caching",
    ),
)

CODE_PROMPTS = _product(
    (
        "Fix the failing test in {}.",
        "Add input validation to {}.",
        "Refactor {} into smaller functions.",
        "Write tests for {}.",
        "Find out why {} is slow and fix it.",
        "Add type hints to {}.",
    ),
    (
        "src/app.py",
        "the billing module",
        "api/routes/users.py",
        "the CSV importer",
        "the retry helper",
        "the auth middleware",
        "scripts/migrate.py",
        "the websocket handler",
    ),
)

CHAT_ANSWERS = (
    "Here is a short summary:\n- The main point first.\n- Then the detail that matters.\n- What to do next.",
    "In short: it depends on the volume. For a few thousand a day the simple option is fine.",
    "Sure. The key trade-off is latency against cost; caching helps both.",
    "Hi team,\n\nA quick update: we are on track. Details below.\n\nThanks!",
    "1. Confirm the request.\n2. Check the account.\n3. Reply within two days.\n4. Log it.",
    "Good question. The short answer is yes, with two caveats.",
    "It was caused by a configuration change; it has been rolled back and a check added.",
    "The team plan is billed per seat per month; annual billing saves two months.",
)

CODE_ANSWERS = (
    "Fixed: the test compared a naive and an aware datetime. All tests pass now.",
    "Added validation with clear error messages and tests for each rejected case.",
    "Split the function into three helpers; behaviour is unchanged and the tests pass.",
    "Wrote 12 tests covering the happy path and the edge cases; coverage is up to 91%.",
    "The slow part was an N+1 query; batching it brought the endpoint from 2.1s to 140ms.",
    "Added type hints throughout; mypy is clean.",
    "I could not reproduce the failure locally; I added logging around the retry instead.",
)

_TOOL_INPUTS = {
    "Read": [{"file_path": p} for p in ("src/app.py", "README.md", "tests/test_api.py", "pyproject.toml")],
    "Edit": [{"file_path": "src/app.py", "old_string": "return x", "new_string": "return int(x)"}],
    "Grep": [{"pattern": p} for p in ("TODO", "def main", "import requests")],
    "Glob": [{"pattern": "**/*.py"}, {"pattern": "tests/**"}],
    "Write": [{"file_path": "tests/test_new.py", "content": "def test_ok():\n    assert True\n"}],
    "TodoWrite": [{"todos": [{"content": "run the tests", "status": "in_progress"}]}],
    "WebFetch": [{"url": "https://docs.python.org/3/library/datetime.html"}],
    "Task": [{"description": "Explore the codebase", "prompt": "Find where requests are retried"}],
    "apply_patch": [
        {"input": "*** Begin Patch\n*** Update File: src/app.py\n@@\n-    return x\n+    return int(x)\n"}
    ],
    "update_plan": [
        {"plan": [{"step": "reproduce", "status": "completed"}, {"step": "fix", "status": "pending"}]}
    ],
    "web_search": [{"query": "python datetime aware vs naive"}],
}
TOOL_OUTPUTS = ("ok", "Applied edit to src/app.py", "Found 3 matches", "(no output)", "File written")
SHELL_OUTPUTS = ("exit code 0\n", "exit code 0\n12 passed in 3.4s\n")
SHELL_FAILED_OUTPUTS = (
    "exit code 1\nFAILED tests/test_api.py::test_dates\n",
    "exit code 127\ncommand not found\n",
)


def _tool_calls() -> tuple[tuple[str, ...], dict[str, tuple[int, int]]]:
    """Every tool call's content (JSON of name and input), and each tool's (first index, count).

    A shell tool has one content per command, in COMMANDS order, so the call names the
    command its compute.exec runs.
    """
    contents: list[str] = []
    spans = {}
    for name in dict.fromkeys(t for tools in TOOLS.values() for t in tools):
        inputs = [{"command": c[0]} for c in COMMANDS] if name in SHELL_TOOLS else _TOOL_INPUTS[name]
        spans[name] = (len(contents), len(inputs))
        contents += [_json({"name": name, "input": i}) for i in inputs]
    return tuple(contents), spans


TOOL_CALLS, TOOL_CALL_SPANS = _tool_calls()

RUN_ERRORS = {
    "error": (
        "litellm.RateLimitError: 429 rate limit exceeded, retry later",
        "litellm.InternalServerError: 500 upstream provider error",
        "litellm.ServiceUnavailableError: 529 overloaded",
        "litellm.APIConnectionError: connection reset by peer",
        "litellm.BadRequestError: 400 prompt is too long for the context window",
    ),
    "timeout": ("litellm.Timeout: no response from the provider within 120s",),
    "budget_exceeded": (
        "session budget of $5.0 is spent ($5.012840)",
        "session budget of $20.0 is spent ($20.331900)",
        "session budget of $1.0 is spent ($1.004113)",
    ),
}
AGENT_ERRORS = {
    "error": (
        "claude exited with status 1: API Error: 529 overloaded",
        "codex exited with status 1: stream disconnected before completion",
        "the agent CLI was killed (out of memory)",
    ),
    "timeout": ("the agent run exceeded 600s and was stopped",),
}

# Each user belongs to one app, plan and region; their sessions carry it as metadata.
APPS = ("support-bot", "copilot", "research", "tutor", "data-analyst", "code-review")
PLANS = ("free", "pro", "team", "enterprise")
PLAN_SHARE = (0.45, 0.30, 0.17, 0.08)
REGIONS = ("us", "eu", "apac")
REGION_SHARE = (0.5, 0.35, 0.15)
METADATA = tuple(
    _json({"metadata": {"app": a, "plan": p, "region": r}})
    for a, p, r in itertools.product(APPS, PLANS, REGIONS)
)


def metadata_index(app: int, plan: int, region: int) -> int:
    """The METADATA entry of one app, plan and region."""
    return (app * len(PLANS) + plan) * len(REGIONS) + region

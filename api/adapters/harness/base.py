"""The harness protocol: what writes a session's turns (a bare model, or an agent CLI), and its registry.

A harness takes one turn and yields, in order: text deltas (`str`), `ToolCall`s and
`ToolResult`s as the agent works, then exactly one result (a `ModelResult`; CLI harnesses
give a `TurnResult`, which adds the CLI's own session id). What a harness can do is data
(`Capabilities`), so the runner and the docs never guess. Harness modules are imported
only when first asked for: the CLIs' code stays out of `cerver --help` and the model path.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from api.adapters.models.base import CallOptions, Message, ModelResult

if TYPE_CHECKING:
    from api.adapters.harness.place import CliPlace
    from api.sessions.compute import Workspace

# name → "module:attribute"; adding a harness is one file and one line here.
REGISTRY: dict[str, str] = {
    "litellm": "api.adapters.harness.litellm:LiteLLMHarness",
    "claude-code": "api.adapters.harness.claude_code:ClaudeCodeHarness",
    "codex": "api.adapters.harness.codex:CodexHarness",
}
NAMES: tuple[str, ...] = tuple(REGISTRY)


@dataclass(frozen=True)
class Capabilities:
    """What a harness does, as data: the runner branches on these, the contract tests check them."""

    in_workspace: bool  # runs a process in the session's compute workspace
    resumes: bool  # keeps its own conversation between turns (else it is sent the whole transcript)
    retries: bool  # a failed call may be retried or fall back to another model (no side effects)
    reports_cost: bool  # the tool prices its own turns (else litellm's price map does)
    providers: tuple[str, ...] | None  # litellm provider prefixes it can drive; None: any
    package: str | None = None  # what to install to get it (npm package), None when built in
    binary: str | None = None  # the executable's name on PATH
    binary_env: str | None = None  # the variable that names the executable explicitly


@dataclass
class ToolCall:
    """The agent asked for a tool: a shell command, a file edit, a subagent…"""

    call_id: str
    name: str
    input: Any
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolResult:
    """What a tool call returned (output as text) and whether it failed."""

    call_id: str
    output: str
    is_error: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnResult(ModelResult):
    """A CLI turn's end: the final answer, usage and cost, plus the CLI's own session (or thread) id.

    `cli` is what the next turn of the same CLI session needs (its id, running totals) and is
    kept in `run.completed`'s attrs; `attrs` holds the tool's other figures (its own duration,
    time to first token, number of model calls).
    """

    session_ref: str | None = None
    cli: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


TurnItem = str | ToolCall | ToolResult | ModelResult


@dataclass
class TurnRequest:
    """Everything one turn needs. The model path reads the first four; CLI harnesses read the rest."""

    model: str
    messages: list[Message]
    options: CallOptions
    streaming: bool
    prompt: str = ""  # the text sent to a CLI (the new turn, with any context it has not seen)
    workspace: Workspace | None = None
    home: Path | None = None  # this session's private HOME for the CLI, outside the workspace (local compute)
    resume: dict[str, Any] | None = None  # the `cli` of this CLI session's last turn, if it goes on
    env: dict[str, str] = field(default_factory=dict)  # provider keys and URLs from the server's env
    place: CliPlace | None = None  # the CLI and its home where the workspace runs (else found from `home`)


class HarnessUnavailable(Exception):
    """The harness cannot run here (its CLI is not installed); the message says what to install."""


class HarnessError(Exception):
    """A turn failed: the CLI exited non-zero, printed a line it should not have, or ran out of time.

    `status` is `error` or `timeout` (as `run.failed` records it); `stderr` is the tail of the
    CLI's stderr, kept for the event.
    """

    def __init__(self, message: str, *, status: str = "error", stderr: str = ""):
        super().__init__(message)
        self.status, self.stderr = status, stderr


class UnknownHarness(ValueError):
    """No harness has this name."""


class Harness(Protocol):
    """One way of writing a session's turns."""

    name: str
    capabilities: Capabilities

    def check(self, model: str | None, *, here: bool = True) -> None:
        """Raise HarnessUnavailable (not installed) or UnknownModel (cannot drive `model`).

        `here`: the turn would run on this machine (local compute), so what it needs must be
        installed here; on other compute that is the compute's own check, made at the turn.
        """
        ...

    def turn(self, request: TurnRequest) -> AsyncIterator[TurnItem]:
        """Yield text deltas, tool calls and results, then one result. Raises ModelError or HarnessError."""
        ...


_loaded: dict[str, Harness] = {}


def harness_for(name: str) -> Harness:
    """The harness registered as `name` (imported on first use); raises UnknownHarness."""
    if (harness := _loaded.get(name)) is not None:
        return harness
    target = REGISTRY.get(name)
    if target is None:
        raise UnknownHarness(f"unknown harness {name!r}; available: {', '.join(NAMES)}")
    module, _, attribute = target.partition(":")
    harness = getattr(importlib.import_module(module), attribute)()
    _loaded[name] = harness
    return harness


def provider_of(model: str) -> str | None:
    """The litellm provider prefix of a model name (`anthropic/claude-…` → `anthropic`), if any."""
    provider, slash, _ = model.partition("/")
    return provider if slash else None


def bare_model(model: str) -> str:
    """The model name as a CLI wants it: without litellm's provider prefix."""
    return model.partition("/")[2] if "/" in model else model

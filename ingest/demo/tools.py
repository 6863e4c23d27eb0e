"""Tool calls inside agent runs, and the commands that run on a session's compute.

An agent run thinks, calls a tool, reads the result, and so on. A shell tool (Claude Code's
Bash, Codex's shell) runs its command on the session's compute: a `compute.exec` between
the call and its result. Plain sessions with compute run commands too, between turns, as an
app executing the code its model wrote would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.demo import draw
from ingest.demo.catalog import (
    COMMANDS,
    EXEC_ERRORS,
    EXEC_MS,
    EXEC_SIGMA,
    FAILED_EXIT_CODES,
    HARNESSES,
    SHELL_TOOLS,
    TOOLS,
)
from ingest.demo.prices import PricedModels
from ingest.demo.texts import TOOL_CALL_SPANS

TOOL_NAMES = tuple(dict.fromkeys(name for tools in TOOLS.values() for name in tools))
SLOW_TOOLS = {"Task": 30.0, "WebFetch": 8.0, "web_search": 8.0}  # relative to a file read or an edit
MAX_EXEC_MS = 30 * 60_000.0  # a command still running then is killed…
KILLED = 137  # …and exits with SIGKILL's status
STANDALONE_EXECS = 0.7  # mean commands after a turn of a plain session with compute


@dataclass
class Commands:
    """Commands run on compute: which, how long, and their exit codes."""

    command: np.ndarray  # index into COMMANDS
    ms: np.ndarray
    exit_code: np.ndarray


@dataclass
class ToolCalls:
    """Every tool call of a batch's agent runs, in run order."""

    turn: np.ndarray  # the turn (run) it belongs to
    rank: np.ndarray  # its place in the run
    tool: np.ndarray  # index into TOOL_NAMES
    content: np.ndarray  # index into texts.TOOL_CALLS
    step_ms: np.ndarray  # the model's time before the call
    result_ms: np.ndarray  # the call's own time, after the command if it ran one
    ok: np.ndarray
    execs: np.ndarray  # whether it ran a command on compute
    commands: Commands  # one per call (meaningful where `execs`)


def run_commands(rng: np.random.Generator, compute: np.ndarray) -> Commands:
    """A command per element of `compute` (an index into COMPUTES), its duration and exit code."""
    n = len(compute)
    shares = np.array([c[1] for c in COMMANDS])
    command = rng.choice(len(COMMANDS), size=n, p=shares / shares.sum())
    factor = np.array([c[2] for c in COMMANDS])[command]
    on = np.maximum(compute, 0)
    ms = draw.lognormal(rng, np.array(EXEC_MS)[on] * factor, np.array(EXEC_SIGMA)[on], n)
    ms = np.minimum(np.round(draw.with_tail(rng, ms, share=0.02), 3), MAX_EXEC_MS)
    fails = rng.random(n) < np.array([c[3] for c in COMMANDS])[command] * np.array(EXEC_ERRORS)[on]
    code = np.array(FAILED_EXIT_CODES)[rng.integers(0, len(FAILED_EXIT_CODES), n)]
    code = np.where(ms >= MAX_EXEC_MS, KILLED, np.where(fails, code, 0))  # the sandbox's time limit
    return Commands(command, ms, code)


def plan_calls(
    rng: np.random.Generator,
    models: PricedModels,
    counts: np.ndarray,
    harness: np.ndarray,
    model: np.ndarray,
    compute: np.ndarray,
    first_ttft_ms: np.ndarray,
) -> ToolCalls:
    """`counts[t]` tool calls for each turn t, on that turn's harness, model and compute."""
    turn = np.repeat(np.arange(len(counts)), counts)
    rank = draw.ranks(counts)
    n = len(turn)
    shares = np.ones((len(HARNESSES), len(TOOL_NAMES)))
    for name, tools in TOOLS.items():
        shares[HARNESSES.index(name)] = [tools.get(t, 0.0) for t in TOOL_NAMES]
    tool = draw.pick(rng, shares, harness[turn])
    shell = np.isin(tool, [TOOL_NAMES.index(t) for t in SHELL_TOOLS])
    execs = shell & (compute[turn] >= 0)
    commands = run_commands(rng, compute[turn])

    first = np.array([TOOL_CALL_SPANS[t][0] for t in TOOL_NAMES])[tool]
    variants = np.array([TOOL_CALL_SPANS[t][1] for t in TOOL_NAMES])[tool]
    content = first + np.where(shell, commands.command, rng.integers(0, 1 << 30, n) % variants)

    m = model[turn]
    median = np.array([s.ttft_ms for s in models.specs])[m]
    sigma = np.array([s.sigma for s in models.specs])[m]
    thinking = np.where(rank == 0, first_ttft_ms[turn], draw.lognormal(rng, median, sigma, n))
    writing = draw.lognormal(rng, 150, 0.8, n) / np.array([s.tokens_per_s for s in models.specs])[m] * 1000
    slow = np.array([SLOW_TOOLS.get(t, 1.0) for t in TOOL_NAMES])[tool]
    own = draw.lognormal(rng, 120 * slow, 1.0, n)
    ok = np.where(execs, commands.exit_code == 0, rng.random(n) < 0.95)
    return ToolCalls(
        turn=turn,
        rank=rank,
        tool=tool,
        content=content,
        step_ms=thinking + writing,
        result_ms=np.where(execs, 1 + 9 * rng.random(n), own),
        ok=ok,
        execs=execs,
        commands=commands,
    )


def standalone_counts(rng: np.random.Generator, eligible: np.ndarray) -> np.ndarray:
    """How many commands a plain session runs after each turn (0 where not `eligible`)."""
    return np.where(eligible, np.minimum(rng.poisson(STANDALONE_EXECS, len(eligible)), 3), 0)

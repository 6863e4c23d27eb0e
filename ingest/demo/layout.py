"""A batch's sessions and turns as events: which events, in what order, and how far apart.

The conventions (docs/demo.md): a session opens with `session.created` (and
`compute.attached` if it has compute); a turn is a user `message`, `run.started`, tool
calls (agent runs), `run.completed` or `run.failed`, and the assistant `message`; a fan-out
turn is the prompt, a `session.spawned` per child, then usually `session.selected` and the
winner's answer; `session.closed` ends most sessions.
"""

from __future__ import annotations

import numpy as np

from ingest.demo import draw
from ingest.demo.blocks import BUILT, Events, Layout, order
from ingest.demo.catalog import AGENT_TIMEOUT_MS, ATTACH_MS, COMPUTES, MOVE_MS
from ingest.demo.pools import ATTRS, CONTENT, ERROR, EXIT_CODES, OK
from ingest.demo.sessions import Sessions
from ingest.demo.texts import SHELL_OUTPUTS, TOOL_OUTPUTS
from ingest.demo.tools import ToolCalls
from ingest.demo.turns import Turns

END_STEP = 3000  # a run's end comes after any number of tool calls
USER, ASSISTANT = 0, 1


def lay_out(rng: np.random.Generator, s: Sessions, t: Turns) -> Events:
    """Every event of the batch, with the gap before it."""
    layout = Layout()
    _session_events(rng, layout, s)
    _turn_changes(rng, layout, s, t)
    _runs(rng, layout, t)
    _tool_calls(layout, t)
    _commands_after(rng, layout, t)
    _fanouts(rng, layout, s, t)
    return layout.events()


def _session_events(rng: np.random.Generator, layout: Layout, s: Sessions) -> None:
    every = np.arange(len(s))
    child = s.parent >= 0
    created_gap = np.where(child, 2 + 38 * rng.random(len(s)), 0.0)
    layout.add(
        "session.created",
        every,
        order(0, 0),
        created_gap,
        model=s.model,
        harness=s.harness,
        compute=s.compute,
        attrs=ATTRS.at("metadata") + s.metadata,
    )
    on = np.flatnonzero(s.compute >= 0)
    c = s.compute[on]
    attach = draw.lognormal(rng, np.array(ATTACH_MS)[c], 0.5, len(on))
    layout.add("compute.attached", on, order(0, 1), attach, compute=c, attrs=ATTRS.at("attach") + c)
    closed = np.flatnonzero(s.closed)
    idle = np.minimum(draw.lognormal(rng, 90_000, 1.2, len(closed)), 2 * 3_600_000)
    layout.add("session.closed", closed, order(s.turns[closed] + 1, 0), idle)


def _turn_changes(rng: np.random.Generator, layout: Layout, s: Sessions, t: Turns) -> None:
    """Model switches and compute moves, just before the turn they first apply to."""
    switch = np.flatnonzero(t.number == s.switch_turn[t.session])
    layout.add(
        "session.updated",
        t.session[switch],
        order(t.number[switch], 0),
        draw.lognormal(rng, 8_000, 0.8, len(switch)),
        model=t.model[switch],
        attrs=ATTRS.at("switch"),
    )
    move = np.flatnonzero(t.number == s.move_turn[t.session])
    before, after = s.compute[t.session[move]], t.compute[move]
    layout.add(
        "compute.attached",
        t.session[move],
        order(t.number[move], 1),
        draw.lognormal(rng, np.array(MOVE_MS)[after], 0.6, len(move)),
        compute=after,
        attrs=ATTRS.at("move") + before * len(COMPUTES) + after,
    )
    first_prompt = draw.lognormal(rng, np.where(s.parent[t.session] >= 0, 20, 1_500), 0.8, len(t))
    thinking = np.minimum(draw.lognormal(rng, 45_000, 1.1, len(t)), 30 * 60_000)
    has_run = t.runs.status >= 0
    layout.add(
        "message",
        t.session,
        order(t.number, 2),
        np.where(t.number == 1, first_prompt, thinking),
        role=USER,
        content=t.prompt,
        harness=t.harness,
        turn=np.where(has_run, np.arange(len(t)), -1),
    )


def _runs(rng: np.random.Generator, layout: Layout, t: Turns) -> None:
    r = t.runs
    run = np.flatnonzero(r.status >= 0)
    layout.add(
        "run.started",
        t.session[run],
        order(t.number[run], 3),
        1 + 14 * rng.random(len(run)),
        model=t.model[run],
        turn=run,
        harness=t.harness[run],
    )
    inside = np.bincount(
        t.calls.turn,
        weights=t.calls.step_ms + np.where(t.calls.execs, t.calls.commands.ms, 0) + t.calls.result_ms,
        minlength=len(t),
    )
    gap = np.where(np.isnan(r.end_gap_ms), np.maximum(1_000, AGENT_TIMEOUT_MS - inside), r.end_gap_ms)[run]
    status = r.status[run]
    ok = status == OK
    attempts = r.failed_attempts[run] > 0  # plain runs that failed, retried or fell back
    for kind, mask in (("run.completed", ok), ("run.failed", ~ok)):
        at = run[mask]
        layout.add(
            kind,
            t.session[at],
            order(t.number[at], END_STEP),
            gap[mask],
            model=np.where(ok[mask], r.model[at], t.model[at]),
            status=status[mask],
            error=r.error[at],
            input_tokens=r.input_tokens[at],
            output_tokens=r.output_tokens[at],
            cache_read_tokens=r.cache_read_tokens[at],
            cost_usd=r.cost_usd[at],
            ttft_ms=r.ttft_ms[at],
            built=np.where(attempts[mask], BUILT.index("attempts"), -1),
            ref=at,
            turn=at,
            harness=t.harness[at],
        )
    answered = run[ok]
    layout.add(
        "message",
        t.session[answered],
        order(t.number[answered], END_STEP + 1),
        1 + 7 * rng.random(len(answered)),
        role=ASSISTANT,
        content=t.answer[answered],
        model=r.model[answered],
        turn=answered,
        harness=t.harness[answered],
    )


def _tool_calls(layout: Layout, t: Turns) -> None:
    c = t.calls
    session, number = t.session[c.turn], t.number[c.turn]
    call = np.arange(len(c.turn))
    common = {"turn": c.turn, "harness": t.harness[c.turn], "ref": call}
    layout.add(
        "tool.call",
        session,
        order(number, 4 + c.rank, 0),
        c.step_ms,
        content=CONTENT.at("tool_calls") + c.content,
        model=t.runs.model[c.turn],
        built=BUILT.index("tool.call"),
        **common,
    )
    ran = np.flatnonzero(c.execs)
    cmd = c.commands
    layout.add(
        "compute.exec",
        session[ran],
        order(number[ran], 4 + c.rank[ran], 1),
        cmd.ms[ran],
        turn=c.turn[ran],
        compute=t.compute[c.turn[ran]],
        status=np.where(cmd.exit_code[ran] == 0, OK, ERROR),
        latency_ms=cmd.ms[ran],
        attrs=_exec_attrs(cmd.command[ran], cmd.exit_code[ran]),
    )
    layout.add(
        "tool.result",
        session,
        order(number, 4 + c.rank, 2),
        c.result_ms,
        status=np.where(c.ok, OK, ERROR),
        content=_result_content(c),
        built=BUILT.index("tool.result"),
        **common,
    )


def _result_content(c: ToolCalls) -> np.ndarray:
    shell_ok = CONTENT.at("shell_outputs") + c.commands.command % len(SHELL_OUTPUTS)
    shell_failed = CONTENT.at("shell_failed_outputs") + (c.commands.exit_code == 127)
    other = CONTENT.at("tool_outputs") + c.tool % len(TOOL_OUTPUTS)
    return np.where(c.execs, np.where(c.ok, shell_ok, shell_failed), other)


def _exec_attrs(command: np.ndarray, exit_code: np.ndarray) -> np.ndarray:
    return ATTRS.at("exec") + command * EXIT_CODES + exit_code


def _commands_after(rng: np.random.Generator, layout: Layout, t: Turns) -> None:
    """A plain session's commands after its turn's answer, each one's ts when it finished."""
    turn = np.repeat(np.arange(len(t)), t.after)
    j = draw.ranks(t.after)
    cmd = t.commands
    wait = draw.lognormal(rng, 2_500, 0.8, len(turn))
    layout.add(
        "compute.exec",
        t.session[turn],
        order(t.number[turn], END_STEP + 2 + j),
        wait + cmd.ms,
        compute=t.compute[turn],
        status=np.where(cmd.exit_code == 0, OK, ERROR),
        latency_ms=cmd.ms,
        attrs=_exec_attrs(cmd.command, cmd.exit_code),
    )


def _fanouts(rng: np.random.Generator, layout: Layout, s: Sessions, t: Turns) -> None:
    """Per child a `session.spawned` on the parent; then `session.selected` and the winner's answer."""
    children = np.flatnonzero(s.parent >= 0)
    parent = s.parent[children]
    rank = draw.ranks(np.bincount(parent, minlength=len(s))[np.unique(parent)]) if len(parent) else parent
    layout.add(
        "session.spawned",
        parent,
        order(s.fanout_turn[parent], 4 + rank),
        3 + 27 * rng.random(len(children)),
        built=BUILT.index("session.spawned"),
        ref=children,
    )
    chosen = np.flatnonzero(t.winner >= 0)
    where = t.session[chosen], t.number[chosen]
    layout.add(
        "session.selected",
        where[0],
        order(where[1], END_STEP),
        draw.lognormal(rng, 25_000, 0.9, len(chosen)),
        built=BUILT.index("session.selected"),
        ref=t.winner[chosen],
    )
    layout.add(
        "message",
        where[0],
        order(where[1], END_STEP + 1),
        2 + 8 * rng.random(len(chosen)),
        role=ASSISTANT,
        content=t.answer[chosen],
    )

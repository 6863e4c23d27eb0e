"""A batch's turns: one row per turn of every session, with its run, tool calls and commands.

A turn is a prompt and what answered it: a run (with tool calls, for agent sessions), or on
a fan-out turn the parent's children, one run each, of which one answer is usually selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.demo import draw, runs, tools
from ingest.demo.pools import CONTENT, OK
from ingest.demo.prices import PricedModels
from ingest.demo.sessions import Sessions
from ingest.demo.texts import CHAT_ANSWERS, CHAT_PROMPTS, CODE_ANSWERS, CODE_PROMPTS

SELECTED_SHARE = 0.85  # fan-outs with a successful child that keep one


@dataclass
class Turns:
    """Per turn, in session order then turn order."""

    session: np.ndarray
    number: np.ndarray  # 1, 2, … within the session
    model: np.ndarray  # the session's model at this turn
    harness: np.ndarray
    compute: np.ndarray  # the session's compute at this turn, -1 for none
    prompt: np.ndarray  # index into pools.CONTENT
    answer: np.ndarray  # index into pools.CONTENT
    runs: runs.Runs
    calls: tools.ToolCalls
    after: np.ndarray  # commands a plain session runs after this turn
    commands: tools.Commands  # those commands, in turn order
    winner: np.ndarray  # per fan-out turn: the selected child session, or -1

    def __len__(self) -> int:
        return len(self.session)


def plan(rng: np.random.Generator, s: Sessions, models: PricedModels) -> Turns:
    """Every turn of the batch's sessions."""
    session = np.repeat(np.arange(len(s)), s.turns)
    first = np.cumsum(s.turns) - s.turns
    number = draw.ranks(s.turns) + 1
    fanout = number == s.fanout_turn[session]
    switched = (s.switch_turn[session] > 0) & (number >= s.switch_turn[session])
    model = np.where(switched, s.switch_model[session], s.model[session])
    moved = (s.move_turn[session] > 0) & (number >= s.move_turn[session])
    compute = np.where(moved, s.move_compute[session], s.compute[session])
    harness = s.harness[session]
    prompt, answer = _texts(rng, s.coding[session])
    children = np.flatnonzero(s.parent >= 0)
    parent_turn = first[s.parent[children]] + s.fanout_turn[s.parent[children]] - 1
    prompt[first[children]] = prompt[parent_turn]  # every child answers the parent's prompt

    planned = runs.plan(rng, models, model, harness, number, ~fanout)
    calls = tools.plan_calls(
        rng, models, planned.tools, harness, planned.model, compute, planned.first_ttft_ms
    )
    plain_with_compute = (compute >= 0) & ~s.agent[session] & (planned.status == OK)
    after = tools.standalone_counts(rng, plain_with_compute)
    commands = tools.run_commands(rng, np.repeat(compute, after))

    winner = _winners(rng, models, planned, children, first[children], parent_turn, len(session))
    chosen = np.flatnonzero(winner >= 0)
    answer[chosen] = answer[first[winner[chosen]]]  # the winner's answer joins the parent
    return Turns(
        session=session,
        number=number,
        model=model,
        harness=harness,
        compute=compute,
        prompt=prompt,
        answer=answer,
        runs=planned,
        calls=calls,
        after=after,
        commands=commands,
        winner=winner,
    )


def _texts(rng: np.random.Generator, coding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A prompt and an answer per turn (about code in agent sessions), as indexes into pools.CONTENT."""
    n = len(coding)
    prompt = np.where(
        coding,
        CONTENT.at("code_prompts") + rng.integers(0, len(CODE_PROMPTS), n),
        CONTENT.at("chat_prompts") + rng.integers(0, len(CHAT_PROMPTS), n),
    )
    answer = np.where(
        coding,
        CONTENT.at("code_answers") + rng.integers(0, len(CODE_ANSWERS), n),
        CONTENT.at("chat_answers") + rng.integers(0, len(CHAT_ANSWERS), n),
    )
    return prompt, answer


def _winners(
    rng: np.random.Generator,
    models: PricedModels,
    planned: runs.Runs,
    children: np.ndarray,
    child_turn: np.ndarray,
    parent_turn: np.ndarray,
    n: int,
) -> np.ndarray:
    """Per turn, the child session its fan-out selected (-1: none, or not a fan-out).

    The best answer wins: a successful child, scored by its model's quality and some luck.
    """
    ok = planned.status[child_turn] == OK
    quality = np.array([m.quality for m in models.specs])[planned.model[child_turn]]
    score = np.where(ok, quality * draw.lognormal(rng, 1.0, 0.3, len(children)), -1.0)
    best = np.full(n, -1.0)
    np.maximum.at(best, parent_turn, score)
    keeps = rng.random(n) < SELECTED_SHARE
    chosen = ok & (score == best[parent_turn]) & keeps[parent_turn]
    winner = np.full(n, -1)
    winner[parent_turn[chosen]] = children[chosen]
    return winner

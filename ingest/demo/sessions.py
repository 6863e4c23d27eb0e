"""Planning a batch of sessions: each one's model, harness, compute, length, and what happens in it.

A top-level session may switch model or move compute before one of its turns, and may fan
out one turn to 2–5 children: each child a session of the same user on a different model
(and harness and compute), with the parent's prompt as its one turn. Children follow their
parents in the arrays, in fan-out order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.demo import draw
from ingest.demo.catalog import (
    AGENT_FOR_PROVIDER,
    AGENT_HARNESSES,
    AGENT_MODELS,
    COMPUTE_SHARE_AGENT,
    COMPUTE_SHARE_CHAT,
    HARNESS_SHARE,
    HARNESSES,
)
from ingest.demo.population import Population
from ingest.demo.prices import PricedModels

CLOSED_SHARE = 0.85
SWITCH_SHARE = 0.12  # sessions of two turns or more that change model mid-way
MOVE_SHARE = 0.10  # sessions with compute and two turns or more that move it mid-way
FANOUT_SHARE = 0.07
FANOUT_SIZES = (2, 3, 4, 5)
FANOUT_SIZE_SHARE = (0.35, 0.30, 0.20, 0.15)
FAVOURITE_HARNESS = 0.75  # a user mostly sticks to one harness…
FAVOURITE_MODEL = 0.5  # …and, in plain chat, to one model
MAX_TURNS = 40


@dataclass
class Sessions:
    """One batch's sessions: `roots` top-level ones, then their fan-out children."""

    roots: int
    user: np.ndarray
    parent: np.ndarray  # -1 for a top-level session
    start_us: np.ndarray  # planned start of a top-level session; children's are set by the timeline
    model: np.ndarray
    harness: np.ndarray
    compute: np.ndarray  # -1 for none
    turns: np.ndarray
    closed: np.ndarray
    switch_turn: np.ndarray  # 0: never; else the turn before which the model changes
    switch_model: np.ndarray
    move_turn: np.ndarray  # 0: never; else the turn before which compute moves
    move_compute: np.ndarray
    fanout_turn: np.ndarray  # 0: never; else the turn that fans out
    metadata: np.ndarray
    coding: np.ndarray  # prompts about code (agent sessions and their fan-outs)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def agent(self) -> np.ndarray:
        """Whether each session is driven by an agent CLI."""
        return np.isin(self.harness, [HARNESSES.index(h) for h in AGENT_HARNESSES])


def plan(rng: np.random.Generator, people: Population, batch: slice, models: PricedModels) -> Sessions:
    """The batch's top-level sessions (`batch` of the population's) and their children."""
    user = people.session_user[batch]
    n = len(user)
    harness = np.where(
        rng.random(n) < FAVOURITE_HARNESS,
        people.favourite_harness[user],
        rng.choice(len(HARNESSES), size=n, p=HARNESS_SHARE),
    )
    shares = model_shares(models)
    model = draw.pick(rng, shares, harness)
    chat = harness == HARNESSES.index("litellm")
    model = np.where(chat & (rng.random(n) < FAVOURITE_MODEL), people.favourite_model[user], model)
    compute = _computes(rng, harness)
    agent = np.isin(harness, [HARNESSES.index(h) for h in AGENT_HARNESSES])
    median = np.where(agent, 2.5, 3.0)
    turns = np.clip(np.rint(draw.lognormal(rng, median, 0.85, n)), 1, MAX_TURNS).astype(np.int64)

    changes = turns >= 2
    switch = changes & (rng.random(n) < SWITCH_SHARE)
    switch_model = draw.pick(rng, shares, harness)
    switch &= switch_model != model
    move = changes & (compute >= 0) & (rng.random(n) < MOVE_SHARE)
    fanout = rng.random(n) < FANOUT_SHARE
    roots = Sessions(
        roots=n,
        user=user,
        parent=np.full(n, -1),
        start_us=people.session_start_us[batch],
        model=model,
        harness=harness,
        compute=compute,
        turns=turns,
        closed=rng.random(n) < CLOSED_SHARE,
        switch_turn=np.where(switch, draw.uniform_int(rng, np.full(n, 2), turns), 0),
        switch_model=np.where(switch, switch_model, -1),
        move_turn=np.where(move, draw.uniform_int(rng, np.full(n, 2), turns), 0),
        move_compute=np.where(move, (compute + rng.integers(1, 3, n)) % 3, -1),
        fanout_turn=np.where(fanout, draw.uniform_int(rng, np.ones(n, np.int64), turns), 0),
        metadata=people.metadata[user],
        coding=agent,
    )
    return _with_children(rng, roots, models)


def model_shares(models: PricedModels) -> np.ndarray:
    """(harness, model) matrix: how often each harness's sessions pick each model."""
    shares = np.zeros((len(HARNESSES), len(models.specs)))
    shares[HARNESSES.index("litellm")] = [m.chat for m in models.specs]
    for harness, slots in AGENT_MODELS.items():
        for slot, share in slots.items():
            if (at := models.index(slot)) is not None:
                shares[HARNESSES.index(harness), at] = share
    empty = shares.sum(axis=1) == 0
    shares[empty] = shares[HARNESSES.index("litellm")]  # none of its models priced: plain chat's
    return shares


def _computes(rng: np.random.Generator, harness: np.ndarray) -> np.ndarray:
    agent = np.isin(harness, [HARNESSES.index(h) for h in AGENT_HARNESSES])
    on_agent = rng.choice(3, size=len(harness), p=COMPUTE_SHARE_AGENT)
    on_chat = rng.choice(4, size=len(harness), p=COMPUTE_SHARE_CHAT) - 1
    return np.where(agent, on_agent, on_chat)


def _with_children(rng: np.random.Generator, roots: Sessions, models: PricedModels) -> Sessions:
    parents = np.flatnonzero(roots.fanout_turn > 0)
    sizes = rng.choice(FANOUT_SIZES, size=len(parents), p=FANOUT_SIZE_SHARE)
    sizes = np.minimum(sizes, len(models.specs))
    parent = np.repeat(parents, sizes)
    c = len(parent)
    model = _distinct_models(rng, models, sizes)
    provider = np.array([name.split("/")[0] for name in models.names])[model]
    harness = np.full(c, HARNESSES.index("litellm"))
    for prefix, (agent_harness, share) in AGENT_FOR_PROVIDER.items():
        harness[(provider == prefix) & (rng.random(c) < share)] = HARNESSES.index(agent_harness)
    zeros = np.zeros(c, np.int64)
    children = {
        "user": roots.user[parent],
        "parent": parent,
        "start_us": zeros,
        "model": model,
        "harness": harness,
        "compute": _computes(rng, harness),
        "turns": np.ones(c, np.int64),
        "closed": rng.random(c) < 0.9,
        "switch_turn": zeros,
        "switch_model": zeros - 1,
        "move_turn": zeros,
        "move_compute": zeros - 1,
        "fanout_turn": zeros,
        "metadata": roots.metadata[parent],
        "coding": roots.coding[parent],
    }
    merged = {k: np.concatenate([getattr(roots, k), v]) for k, v in children.items()}
    return Sessions(roots=roots.roots, **merged)


def _distinct_models(rng: np.random.Generator, models: PricedModels, sizes: np.ndarray) -> np.ndarray:
    """For each fan-out, `size` different models, popular ones more often (Gumbel top-k)."""
    weight = np.maximum([m.chat for m in models.specs], 0.02)
    keys = np.log(weight) + rng.gumbel(size=(len(sizes), len(weight)))
    order = np.argsort(-keys, axis=1)
    take = np.arange(len(weight)) < sizes[:, None]
    return order[take]

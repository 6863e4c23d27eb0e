"""A judge: one model call that scores each variant's answer against a rubric.

The judge sees the rubric, the prompt and the answers numbered 1…n (never the models that
wrote them, so it cannot favour a name) and must answer JSON:
`{"scores": [{"candidate": 1, "score": 0-10, "reason": "one line"}, …]}`. A reply that is not
that shape is an error of the judge, never a guess: the variants are answered without scores.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from api.adapters.models import CallOptions, ModelError, ModelResult, adapter_for

INSTRUCTIONS = (
    "You are a strict, fair judge. Score each candidate answer to the request from 0 (useless) to 10 "
    "(perfect) against the rubric. Reply with JSON only, no prose: "
    '{"scores": [{"candidate": <number>, "score": <0-10>, "reason": "<one short line>"}]} '
    "with one entry per candidate."
)
_JSON = re.compile(r"\{.*\}", re.DOTALL)


@dataclass
class Verdict:
    """Scores by candidate key, the judge's reply (for usage and cost) or the reason it has none."""

    scores: dict[str, dict[str, Any]]
    result: ModelResult | None
    error: str | None


def prompt(rubric: str, request: str, answers: list[str]) -> list[dict[str, str]]:
    """The judge's transcript: instructions, then the rubric, the request and numbered answers."""
    parts = [f"Rubric:\n{rubric}", f"Request:\n{request}"]
    parts += [f"Candidate {i}:\n{answer}" for i, answer in enumerate(answers, 1)]
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": "\n\n".join(parts)}]


def parse(text: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Map the judge's JSON onto `keys` (candidate i is keys[i-1]); ValueError when it is malformed."""
    found = _JSON.search(text)
    if found is None:
        raise ValueError("the judge's reply has no JSON object")
    entries = json.loads(found.group(0)).get("scores")
    if not isinstance(entries, list):
        raise ValueError("the judge's reply has no `scores` list")
    scores: dict[str, dict[str, Any]] = {}
    for entry in entries:
        number, score = entry.get("candidate"), entry.get("score")
        if not isinstance(number, int) or not 1 <= number <= len(keys):
            raise ValueError(f"the judge scored an unknown candidate {number!r}")
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 10:
            raise ValueError(f"candidate {number}: score {score!r} is not a number from 0 to 10")
        reason = str(entry.get("reason") or "").strip().splitlines()
        scores[keys[number - 1]] = {"score": float(score), "reason": reason[0][:500] if reason else ""}
    return scores


async def judge(model: str, rubric: str, request: str, answers: dict[str, str], timeout_s: float) -> Verdict:
    """Score `answers` (key → text); a failed call or a malformed reply is a Verdict with an error."""
    keys = list(answers)
    try:
        result = await adapter_for(model).complete(
            model, prompt(rubric, request, list(answers.values())), CallOptions(0.0, None, timeout_s)
        )
    except ModelError as exc:
        return Verdict({}, None, f"the judge failed: {exc}")
    try:
        return Verdict(parse(result.text, keys), result, None)
    except (ValueError, AttributeError, TypeError) as exc:
        return Verdict({}, result, f"the judge's reply could not be read: {exc}")

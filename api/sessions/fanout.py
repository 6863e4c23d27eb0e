"""Spawn: one prompt answered by several variants at once, each in a child session.

A spawn writes, in one durable append: the prompt as the parent's user message, one
`session.spawned` per variant on the parent, and each child's `session.created` (with
`parent_session_id` and a `fork` pointing at the parent's transcript up to the prompt). A child
reads that prefix from the parent's state instead of copying it (copy on write), so a child
costs the same memory whatever the parent's length. Then every child runs the prompt at once,
through the same Runner as run-llm (retries, fallbacks, events), each under its own deadline;
one failing never fails the others. An optional judge scores the answers afterwards.
Keeping one is `branches.Branches.select`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from api.errors import ApiError
from api.schemas import RunLLM, Spawn, Variant
from api.sessions.events import event, new_id
from api.sessions.judge import judge
from api.sessions.runner import Outcome, Runner
from api.sessions.service import SessionService, check_compute, check_harness, check_model
from api.sessions.state import SessionState
from api.settings import Settings
from ingest.pricing import price

_CHARS_PER_TOKEN = 4  # the budget check's estimate of a prompt's tokens, before any tokenizer runs


@dataclass
class Child:
    """One variant's session."""

    state: SessionState
    variant: Variant
    label: str


@dataclass
class Plan:
    """A spawn whose children exist and whose parent is held until every variant has finished."""

    parent: SessionState
    spawn_id: str
    children: list[Child]
    body: Spawn
    started: float


class FanOut:
    """Spawns children on one prompt and runs them side by side."""

    def __init__(self, service: SessionService, runner: Runner, settings: Settings):
        self.service = service
        self.store = service.store
        self.runner = runner
        self.settings = settings

    async def start(self, tenant_id: str, session_id: str, body: Spawn) -> Plan:
        """Check everything, then create the children; the parent stays held until `execute` ends."""
        parent = await self.service.writable(tenant_id, session_id)
        if len(body.variants) > self.settings.max_variants:
            raise ApiError(
                422,
                "too_many_variants",
                f"{len(body.variants)} variants; at most {self.settings.max_variants} (CERVER_MAX_VARIANTS)",
            )
        for variant in body.variants:
            check_model(variant.model)
            check_compute(variant.compute)
            check_harness(variant.harness or parent.harness, variant.model, variant.compute or parent.compute)
        if body.judge is not None:
            check_model(body.judge.model)
        if parent.lock.locked():
            raise ApiError(409, "run_in_flight", "a run is in flight on this session; spawn when it ends")
        await parent.lock.acquire()
        try:
            await self._check_budget(parent, body)
            plan = Plan(parent, new_id("spawn_"), [], body, time.perf_counter())
            await self._create_children(plan)
        except BaseException:
            parent.lock.release()
            raise
        return plan

    async def _create_children(self, plan: Plan) -> None:
        parent, body = plan.parent, plan.body
        tenant_id, session_id, user = parent.tenant_id, parent.session_id, parent.user_id
        ids = parent.message_ids
        fork = {"session_id": session_id, "messages": len(ids), "at_event_id": ids[-1] if ids else None}
        prompt = event(
            "message",
            tenant_id,
            session_id,
            user_id=user,
            role="user",
            content=body.prompt,
            attrs={"spawn_id": plan.spawn_id},
        )
        spawned, created = [], []
        for index, variant in enumerate(body.variants):
            child = Child(SessionState(tenant_id, new_id("sess_")), variant, variant.label or variant.model)
            child.state.base = parent
            config = {
                "model": variant.model,
                "harness": variant.harness or parent.harness,
                "compute": variant.compute or parent.compute,
            }
            made = {"spawn_id": plan.spawn_id, "index": index, "label": child.label}
            spawned.append(
                event(
                    "session.spawned",
                    tenant_id,
                    session_id,
                    user_id=user,
                    attrs={
                        "child_session_id": child.state.session_id,
                        **made,
                        "variant": config,
                        "prompt_event_id": prompt["event_id"],
                    },
                )
            )
            attrs = {"metadata": parent.metadata, "fork": fork, "spawn": made}
            first = event(
                "session.created",
                tenant_id,
                child.state.session_id,
                parent_session_id=session_id,
                user_id=user,
                attrs=attrs,
                **config,
            )
            created.append((child.state, [first]))
            plan.children.append(child)
        await self.store.write_many([(parent, [prompt, *spawned]), *created])

    async def _check_budget(self, parent: SessionState, body: Spawn) -> None:
        """429 before anything runs when the variants' estimated cost does not fit the parent's budget."""
        if parent.budget_usd is None:
            return
        spent = await self.service.spent(parent)
        chars = sum(len(str(m.get("content") or "")) for m in parent.transcript) + len(body.prompt)
        prompt_tokens = -(-chars // _CHARS_PER_TOKEN)
        output_tokens = body.max_tokens or self.settings.spawn_output_estimate
        estimate = sum(price(v.model, prompt_tokens, output_tokens) or 0.0 for v in body.variants)
        if body.judge is not None:
            judged = len(body.judge.rubric) // _CHARS_PER_TOKEN + prompt_tokens
            judged += output_tokens * len(body.variants)
            estimate += price(body.judge.model, judged, 256) or 0.0
        if spent + estimate > parent.budget_usd:
            raise ApiError(
                429,
                "budget_exceeded",
                f"the {len(body.variants)} variants are estimated at ${estimate:.6f}; with ${spent:.6f} "
                f"spent that exceeds the session's budget of ${parent.budget_usd}",
            )

    async def execute(self, plan: Plan) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ("delta", …) while streaming and ("variant", …) as each finishes, then ("done", answer)."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        tasks = [asyncio.create_task(self._variant(plan, child, queue)) for child in plan.children]
        try:
            waiting = len(tasks)
            while waiting:
                kind, item = await queue.get()
                waiting -= kind == "variant"
                yield kind, item
            results = [task.result() for task in tasks]
            judged = await self._judge(plan, results) if plan.body.judge is not None else None
            yield "done", self._answer(plan, results, judged)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            plan.parent.lock.release()

    async def _variant(
        self, plan: Plan, child: Child, queue: asyncio.Queue[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        """Run the prompt in one child under its deadline; a failure is this variant's result only."""
        body, session_id = plan.body, child.state.session_id
        result: dict[str, Any] = {
            "session_id": session_id,
            "label": child.label,
            "model": child.variant.model,
            "run_id": None,
            "output": None,
            "usage": {"input_tokens": None, "output_tokens": None},
            "cost_usd": None,
            "latency_ms": None,
            "ttft_ms": None,
            "status": "ok",
            "error": None,
        }
        began = time.perf_counter()
        timeout = body.timeout_s or self.settings.variant_timeout_s
        task = asyncio.current_task()
        assert task is not None
        expired = False
        try:
            turn = RunLLM(
                prompt=body.prompt,
                temperature=body.temperature,
                max_tokens=body.max_tokens,
                stream=body.stream,
            )
            run = await self.runner.start(child.state.tenant_id, session_id, turn)
            result["run_id"] = run.run_id

            def expire() -> None:
                nonlocal expired
                expired = True
                run.stop_status, run.stop_reason = (
                    "timeout",
                    f"the variant ran past its {timeout:g} s deadline",
                )
                task.cancel()

            deadline = asyncio.get_running_loop().call_later(timeout, expire)
            try:
                async with contextlib.aclosing(self.runner.execute(run)) as items:
                    async for item in items:
                        if isinstance(item, Outcome):
                            result.update(item.as_json())
                        else:
                            queue.put_nowait(("delta", {"session_id": session_id, "text": item}))
            finally:
                deadline.cancel()
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            result.update(status="timeout", error=f"no answer within {timeout:g} s")
        except ApiError as exc:
            result.update(status="error", error=exc.message)
        if result["status"] != "ok":
            result["latency_ms"] = round((time.perf_counter() - began) * 1000, 3)
        queue.put_nowait(("variant", result))
        return result

    async def _judge(self, plan: Plan, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Score the answers; the judge's run is recorded on the parent (its cost is the parent's)."""
        spec, parent = plan.body.judge, plan.parent
        assert spec is not None
        answers = {r["session_id"]: r["output"] for r in results if r["status"] == "ok"}
        run_id = new_id("run_")
        common = {"user_id": parent.user_id, "run_id": run_id, "harness": "litellm", "model": spec.model}
        if not answers:
            return {"model": spec.model, "run_id": None, "cost_usd": None, "error": "no variant answered"}
        started = event("run.started", parent.tenant_id, parent.session_id, **common)
        began = time.perf_counter()
        verdict = await judge(
            spec.model, spec.rubric, plan.body.prompt, answers, self.settings.model_timeout_s
        )
        latency = (time.perf_counter() - began) * 1000
        attrs = {"kind": "judge", "spawn_id": plan.spawn_id, "scores": verdict.scores}
        if verdict.result is None:
            end = event(
                "run.failed",
                parent.tenant_id,
                parent.session_id,
                status="error",
                error=verdict.error,
                latency_ms=latency,
                attrs=attrs,
                **common,
            )
        else:
            u = verdict.result.usage
            end = event(
                "run.completed",
                parent.tenant_id,
                parent.session_id,
                status="ok" if verdict.error is None else "error",
                error=verdict.error,
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cost_usd=verdict.result.cost_usd,
                latency_ms=latency,
                attrs=attrs,
                **common,
            )
        # Each verdict is an update of the child it judges, so the child's own record carries it.
        verdicts = []
        for child in plan.children:
            scored = verdict.scores.get(child.state.session_id)
            if scored is not None:
                judged = {**scored, "model": spec.model, "spawn_id": plan.spawn_id, "run_id": run_id}
                update = event(
                    "session.updated",
                    child.state.tenant_id,
                    child.state.session_id,
                    user_id=child.state.user_id,
                    attrs={"judge": judged, "changed": ["judge"]},
                )
                verdicts.append((child.state, [update]))
        await self.store.write_many([(parent, [started, end]), *verdicts])
        for r in results:
            r.update(verdict.scores.get(r["session_id"], {"score": None, "reason": None}))
        cost = verdict.result.cost_usd if verdict.result is not None else None
        return {"model": spec.model, "run_id": run_id, "cost_usd": cost, "error": verdict.error}

    def _answer(
        self, plan: Plan, results: list[dict[str, Any]], judged: dict[str, Any] | None
    ) -> dict[str, Any]:
        spent = [r["cost_usd"] for r in results] + [judged["cost_usd"] if judged else None]
        return {
            "spawn_id": plan.spawn_id,
            "session_id": plan.parent.session_id,
            "variants": results,
            "judge": judged,
            "cost_usd": sum(c for c in spent if c is not None),
            "latency_ms": round((time.perf_counter() - plan.started) * 1000, 3),
        }

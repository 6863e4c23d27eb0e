"""One turn of a session: the transcript to the model, retries and fallbacks, every step an event.

A run writes the user's message(s) and `run.started` before calling out, so a crash
mid-run leaves a trace that start-up turns into `run.failed` (`interrupted`). Then it
calls the session's model (streaming when the caller streams), retrying rate limits, 5xx and timeouts with
backoff, then trying the session's fallbacks in order; each attempt is recorded in
the run's attrs. Output already streamed to the caller is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.adapters.harness.base import TurnItem
from api.adapters.harness.context import MAX_PROMPT_BYTES, too_long
from api.adapters.harness.litellm import LiteLLMHarness
from api.adapters.models import CallOptions, ModelAdapter, ModelError, ModelResult, adapter_for
from api.errors import ApiError
from api.schemas import RunLLM
from api.sessions.events import event, new_id
from api.sessions.service import SessionService, check_harness, check_model
from api.sessions.state import SessionState, message_fields
from api.settings import Settings

if TYPE_CHECKING:
    from api.sessions.compute import ComputeService

log = logging.getLogger("cerver.runs")
LITELLM = "litellm"
_MODEL_PATH = LiteLLMHarness()


@dataclass
class Run:
    """A run that has started: its session (locked), models to try and the transcript to send."""

    state: SessionState
    run_id: str
    models: list[str]
    messages: list[dict[str, Any]]
    temperature: float | None
    max_tokens: int | None
    streaming: bool
    started: float
    begin_record: Callable[[], Coroutine[Any, Any, None]]  # writes the turn's start durably
    # How the run is recorded if it ends before finishing (cancelled by its caller, or a deadline).
    stop_status: str = "cancelled"
    stop_reason: str = "client went away"
    harness: str = LITELLM  # what writes this turn (the session's harness when it started)
    turn_length: int = 1  # how many of `messages` are this turn's (the rest is the transcript)
    executed: bool = False  # `execute` has begun (and will release the session when it ends)
    _recorded: asyncio.Task[None] | None = None

    def begin(self) -> asyncio.Task[None]:
        """Begin the durable write of the turn's start (once); the task making it.

        `execute` begins it just before the model is called, so that the write (made on the
        event loop for a lone run) waits for the call's first pause. Begun any earlier, it would
        run ahead of the call: an SSE answer pauses to send its headers before its body starts
        the turn.
        """
        if self._recorded is None:
            self._recorded = asyncio.create_task(self.begin_record())
        return self._recorded

    @property
    def recorded(self) -> asyncio.Task[None]:
        """The write of the turn's start (begun if it was not): await it before showing output."""
        return self.begin()


@dataclass
class Outcome:
    """A finished run, as run-llm answers it."""

    run_id: str
    output: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    ttft_ms: float | None

    def as_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "run_id": self.run_id,
            "output": self.output,
            "model": self.model,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 3),
            "ttft_ms": round(self.ttft_ms, 3) if self.ttft_ms is not None else None,
        }


class Runner:
    """Starts and drives runs; one in flight per session."""

    def __init__(self, service: SessionService, settings: Settings, compute: ComputeService | None = None):
        self.service = service
        self.store = service.store
        self.settings = settings
        self.compute = compute  # the session workspaces agent CLI harnesses run in
        self.in_flight = 0  # runs started and not yet ended
        self.store.on_closed.append(self._drop_cli_homes)

    async def _drop_cli_homes(self, tenant_id: str, session_id: str) -> None:
        """A closed session's CLI homes on this server go (relays keep theirs); not under a running turn."""
        state = await self.store.get(tenant_id, session_id)
        if state is None or state.lock.locked() or (state.harness == LITELLM and not state.cli):
            return  # in flight, or no CLI ever ran for it: nothing to remove
        from api.sessions import harness_run

        await harness_run.drop_homes(self.harness_homes(), tenant_id, session_id)

    def harness_homes(self) -> Path:
        """Where sessions' CLI homes live: CERVER_HARNESS_HOMES, else `<data>/harness-homes`."""
        configured = self.settings.harness_homes
        if configured:
            return Path(configured).expanduser().absolute()
        return Path(self.store.wh.root) / "harness-homes"

    async def start(self, tenant_id: str, session_id: str, body: RunLLM) -> Run:
        """Check everything, take the session's run slot and start recording the turn."""
        started = time.perf_counter()
        state = await self.service.writable(tenant_id, session_id)
        model = body.model or state.model
        if model is None:
            raise ApiError(422, "no_model", "the session has no model; name one in the request or PATCH it")
        check_model(model)
        if state.harness != LITELLM:
            check_harness(state.harness, model, state.compute)
            if self.compute is None:
                raise ApiError(
                    422, "no_compute", f"the {state.harness} harness needs compute; none is set up"
                )
        if state.lock.locked():
            raise ApiError(409, "run_in_flight", "a run is already in flight on this session; wait for it")
        await state.lock.acquire()
        self.in_flight += 1
        try:
            run_id = new_id("run_")
            common = {"user_id": state.user_id, "run_id": run_id, "harness": state.harness}
            spent = await self.service.spent(state) if state.budget_usd is not None else 0.0
            if state.budget_usd is not None and spent >= state.budget_usd:
                reason = f"session budget of ${state.budget_usd} is spent (${spent:.6f})"
                await self.store.write(
                    state,
                    [
                        event("run.started", tenant_id, session_id, model=model, **common),
                        event(
                            "run.failed",
                            tenant_id,
                            session_id,
                            model=model,
                            status="budget_exceeded",
                            error=reason,
                            **common,
                        ),
                    ],
                )
                raise ApiError(429, "budget_exceeded", reason)
            turn = (
                [{"role": "user", "content": body.prompt}]
                if body.prompt is not None
                else [m.model_dump(exclude_none=True) for m in body.messages or []]
            )
            if state.harness != LITELLM and too_long(turn):
                raise ApiError(
                    422,
                    "prompt_too_long",
                    f"a {state.harness} turn takes at most {MAX_PROMPT_BYTES} bytes of text",
                )
            messages = [*state.transcript, *turn]
            written = []
            for message in turn:
                content, attrs = message_fields(message)
                written.append(
                    event(
                        "message",
                        tenant_id,
                        session_id,
                        role=message["role"],
                        content=content,
                        attrs=attrs,
                        **common,
                    )
                )
            written.append(event("run.started", tenant_id, session_id, model=model, **common))
        except BaseException:
            self.in_flight -= 1
            state.lock.release()
            raise
        models = [model, *(m for m in state.fallbacks if m != model)]
        return Run(
            state,
            run_id,
            models,
            messages,
            body.temperature,
            body.max_tokens,
            body.stream,
            started,
            # A lone run's start is written on the event loop too, at the model call's first pause,
            # and its fsync waited for on a thread while the call goes on; a JSON caller sees nothing
            # before the answer, whose fsync covers the start too, so its start is not waited for.
            lambda: self.store.write(
                state, written, alone=self.in_flight == 1, overlap=True, sync_later=not body.stream
            ),
            harness=state.harness,
            turn_length=len(turn),
        )

    async def execute(self, run: Run) -> AsyncIterator[str | Outcome]:
        """Yield text deltas, then the Outcome; raise ApiError (502/504) once every model failed."""
        run.executed = True
        run.begin()
        if run.harness != LITELLM:  # an agent CLI in the session's workspace
            from api.sessions import harness_run

            async with contextlib.aclosing(harness_run.execute(self, run)) as items:
                async for item in items:
                    yield item
            return
        attempts: list[dict[str, Any]] = []
        ttft: float | None = None
        finished = False
        try:
            last_error: ModelError | None = None
            for model in run.models:
                adapter = adapter_for(model)
                for attempt in range(self.settings.max_retries + 1):
                    began = time.perf_counter()
                    try:
                        result = None
                        async for item in self._reply(adapter, model, run):
                            if isinstance(item, ModelResult):
                                result = item
                            else:
                                if ttft is None:
                                    ttft = (time.perf_counter() - run.started) * 1000
                                    # Nothing reaches the caller before the turn's start is durable.
                                    await run.recorded
                                yield item
                        assert result is not None, f"{adapter.name} ended without a result"
                    except ModelError as exc:
                        attempts.append(_attempt(model, began, exc))
                        last_error = exc
                        if run.streaming and ttft is not None:  # the caller has output: no silent retry
                            break
                        ttft = None  # a JSON caller saw nothing yet: the next attempt starts afresh
                        if exc.retryable and attempt < self.settings.max_retries:
                            await asyncio.sleep(self._backoff(attempt, exc.retry_after))
                            continue
                        break
                    attempts.append(_attempt(model, began, None))
                    outcome = await self._complete(run, result, ttft, {"attempts": attempts})
                    finished = True
                    yield outcome
                    return
                if run.streaming and ttft is not None:
                    break
            await self._fail(run, attempts, last_error)
            finished = True
            assert last_error is not None
            status = 504 if last_error.timeout else 502
            code = "provider_timeout" if last_error.timeout else "provider_error"
            raise ApiError(status, code, f"every model failed; last: {last_error}")
        finally:
            try:
                if not finished:  # the caller went away mid-run
                    failed = self._failed_event(run, attempts, run.stop_status, run.stop_reason)
                    with contextlib.suppress(Exception):  # a failed start write was reported already
                        await asyncio.shield(self._after_start(run, [failed]))
            finally:
                self.release(run)

    def release(self, run: Run) -> None:
        """The run has ended: its session takes runs again."""
        self.in_flight -= 1
        run.state.lock.release()

    async def abandon(self, run: Run) -> None:
        """A started run whose turn never began (its caller left before a stream did): free the session.

        Nothing of the turn was written, so there is nothing to record.
        """
        if not run.executed:
            run.executed = True
            self.release(run)

    def _reply(self, adapter: ModelAdapter, model: str, run: Run) -> AsyncIterator[TurnItem]:
        """The model's reply through the `litellm` harness: deltas and result, or only the result."""
        options = CallOptions(run.temperature, run.max_tokens, self.settings.model_timeout_s)
        return _MODEL_PATH.reply(adapter, model, run.messages, options, run.streaming)

    async def _after_start(self, run: Run, events: list[dict[str, Any]]) -> None:
        """Write `events` once the turn's start is durable (so the log reads in order).

        The run's last write is on its caller's critical path: when no other run is in flight it is
        done in place (see BatchWriter.append), which takes a thread hop off every lone turn.
        """
        await run.recorded
        await self.store.write(run.state, events, alone=self.in_flight == 1)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.max_backoff_s)
        base = self.settings.backoff_s * (2**attempt)
        return min(base * (0.5 + random.random()), self.settings.max_backoff_s)  # jitter

    async def _complete(
        self,
        run: Run,
        result: ModelResult,
        ttft: float | None,
        attrs: dict[str, Any],
        fields: dict[str, Any] | None = None,
    ) -> Outcome:
        """Write the answer and `run.completed` (with `attrs`, and `fields` on both events); the Outcome."""
        latency = (time.perf_counter() - run.started) * 1000
        s = run.state
        common = {"user_id": s.user_id, "run_id": run.run_id, "harness": s.harness, **(fields or {})}
        common["model"] = result.model
        u = result.usage
        await self._after_start(
            run,
            [
                event("message", s.tenant_id, s.session_id, role="assistant", content=result.text, **common),
                event(
                    "run.completed",
                    s.tenant_id,
                    s.session_id,
                    status="ok",
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cache_read_tokens=u.cache_read_tokens,
                    cache_write_tokens=u.cache_write_tokens,
                    cost_usd=result.cost_usd,
                    latency_ms=latency,
                    ttft_ms=ttft,
                    attrs=attrs,
                    **common,
                ),
            ],
        )
        return Outcome(
            run.run_id,
            result.text,
            result.model,
            u.input_tokens,
            u.output_tokens,
            result.cost_usd,
            latency,
            ttft,
        )

    async def _fail(self, run: Run, attempts: list[dict], error: ModelError | None) -> None:
        status = "timeout" if error is not None and error.timeout else "error"
        await self._after_start(run, [self._failed_event(run, attempts, status, str(error))])

    def _failed_event(
        self, run: Run, attempts: list[dict], status: str, error: str, **fields: Any
    ) -> dict[str, Any]:
        """`run.failed` for this run; `fields` add to (or replace) its columns and attrs."""
        s = run.state
        latency = (time.perf_counter() - run.started) * 1000
        columns = {"user_id": s.user_id, "run_id": run.run_id, "harness": s.harness, "model": run.models[0]}
        columns |= {"attrs": {"attempts": attempts}, **fields}
        return event(
            "run.failed", s.tenant_id, s.session_id, status=status, error=error, latency_ms=latency, **columns
        )


def _attempt(model: str, began: float, error: ModelError | None) -> dict[str, Any]:
    took = round((time.perf_counter() - began) * 1000, 3)
    if error is None:
        return {"model": model, "ok": True, "ms": took}
    return {"model": model, "ok": False, "ms": took, "status": error.status, "error": str(error)[:500]}


async def interrupt_unfinished(service: SessionService) -> int:
    """At start-up: runs a crash left open become `run.failed` with status `interrupted`."""
    rows = await service.store.sql(
        "SELECT tenant_id, session_id, run_id, user_id, model, harness FROM runs WHERE status = 'running'", []
    )
    events = [
        event(
            "run.failed",
            r["tenant_id"],
            r["session_id"],
            run_id=r["run_id"],
            user_id=r["user_id"],
            model=r["model"],
            harness=r["harness"],
            status="interrupted",
            error="the server stopped during this run",
        )
        for r in rows
    ]
    if events:
        await asyncio.to_thread(service.store.wh.append, events)
        log.warning("marked %d interrupted run(s) as failed", len(events))
    return len(events)

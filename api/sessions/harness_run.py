"""One turn by an agent CLI harness (claude-code, codex) in the session's workspace, every step an event.

The runner has already written the user's message and `run.started`. Here: the session's
workspace (local compute is attached when it has none); the CLI and its private home on that
workspace's machine (the server for `local`, the relay's machine for `relay`: see
api/adapters/harness/place.py; a CLI missing there, or compute that cannot run one, is a 422
`harness_unavailable` with `run.failed`); whether the CLI session to resume still has its files
in that home (after a move to other compute it has not, and the CLI starts afresh with the
transcript as context); the prompt (the new turn, after what this CLI session has not seen: see
api/adapters/harness/context.py); then the CLI. Each tool call and result is written as it
happens (`tool.call` / `tool.result`, with the run's id); the final answer becomes the
assistant `message` and `run.completed` (tokens, cost, latency, time to first output, and in
attrs the CLI's own session id and figures, which the next turn resumes from). A failure is
`run.failed` (status `error` or `timeout`, the CLI's stderr tail in `error` and attrs) and a
502/504 to the caller; the transcript keeps everything written before it. An agent acts on the
workspace, so a failed turn is never retried nor handed to a fallback model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from api.adapters.compute import ComputeError
from api.adapters.harness import (
    HarnessError,
    HarnessUnavailable,
    ToolCall,
    ToolResult,
    TurnRequest,
    TurnResult,
    harness_for,
)
from api.adapters.harness.cli import CliHarness
from api.adapters.harness.context import prompt
from api.adapters.harness.machine import home_folder
from api.adapters.harness.place import CliPlace, place_cli
from api.adapters.models import CallOptions
from api.errors import ApiError
from api.sessions.compute import api_error
from api.sessions.events import event
from api.sessions.runner import Outcome, Run, Runner

ERROR_TAIL = 1000  # characters of stderr kept in `run.failed.error` (attrs keep more)


def home_of(root: Path, tenant_id: str, session_id: str, harness: str) -> Path:
    """A session's private home for one CLI on the server: `<root>/<tenant>/<session>/<harness>`."""
    try:
        return home_folder(root, tenant_id, session_id, harness)
    except ValueError:
        raise ApiError(422, "invalid_request", f"cannot keep a CLI home for session {session_id!r}") from None


async def drop_homes(root: Path, tenant_id: str, session_id: str) -> None:
    """Remove a closed session's CLI homes under `root` (its CLI sessions can never resume again)."""
    try:
        folder = home_folder(root, tenant_id, session_id, "any").parent
    except ValueError:  # an id that never had a home
        return
    await asyncio.to_thread(shutil.rmtree, folder, True)


async def execute(runner: Runner, run: Run) -> AsyncIterator[str | Outcome]:
    """Yield the CLI's text as it writes it (to a streaming caller), then the Outcome; ApiError on failure."""
    state, settings = run.state, runner.settings
    harness = harness_for(run.harness)
    assert isinstance(harness, CliHarness)
    model = run.models[0]
    common = {"user_id": state.user_id, "run_id": run.run_id, "harness": harness.name, "model": model}
    ttft: float | None = None
    finished = False
    held = contextlib.AsyncExitStack()
    try:
        last = state.cli.get(harness.name)
        try:
            workspace = await held.enter_async_context(
                runner.compute.in_use(state.tenant_id, state.session_id, state)
            )
            common["compute"] = state.compute
            place = await _place(runner, run, harness, workspace, (last or {}).get("session_id"))
        except ApiError as exc:
            await runner._after_start(run, [runner._failed_event(run, [], "error", exc.message, **common)])
            finished = True
            raise
        resume = last if last and place.resumable else None
        earlier = run.messages[: len(run.messages) - run.turn_length]
        unseen = earlier[int(resume.get("seen", 0)) :] if resume else earlier
        options = CallOptions(run.temperature, run.max_tokens, settings.harness_timeout_s)
        request = TurnRequest(
            model,
            run.messages,
            options,
            run.streaming,
            prompt(unseen, run.messages[len(earlier) :]),
            workspace,
            resume=resume,
            place=place,
        )
        result: TurnResult | None = None
        try:
            async with contextlib.aclosing(harness.turn(request)) as items:  # leaving kills the CLI at once
                async for item in items:
                    if isinstance(item, TurnResult):
                        result = item
                    elif isinstance(item, ToolCall | ToolResult):
                        await runner._after_start(run, [_tool_event(run, common, item)])
                    elif isinstance(item, str):
                        ttft = ttft or (time.perf_counter() - run.started) * 1000
                        if run.streaming:
                            await run.recorded  # nothing reaches the caller before the start is durable
                            yield item
        except HarnessError as exc:
            await _record_failure(runner, run, common, exc)
            finished = True
            status, code = (504, "harness_timeout") if exc.status == "timeout" else (502, "harness_failed")
            raise ApiError(status, code, _with_stderr(str(exc), exc.stderr, 500)) from None
        assert result is not None, f"{harness.name} ended without a result"
        attrs = {"cli": {**result.cli, "seen": len(run.messages) + 1}, "reported": result.attrs}
        outcome = await runner._complete(run, result, ttft, attrs, common)
        finished = True
        yield outcome
    finally:
        try:
            await held.aclose()  # the workspace may move again
            if not finished:  # the caller went away (or a deadline passed): the CLI was killed with it
                failed = runner._failed_event(run, [], run.stop_status, run.stop_reason, **common)
                with contextlib.suppress(Exception):
                    await asyncio.shield(runner._after_start(run, [failed]))
        finally:
            runner.release(run)


async def _place(runner: Runner, run: Run, harness: CliHarness, workspace: Any, ref: str | None) -> CliPlace:
    """The CLI and its home on the workspace's machine; ApiError 422 (not there) or 502 (compute gone)."""
    state = run.state
    home = home_of(runner.harness_homes(), state.tenant_id, state.session_id, harness.name)
    try:
        return await place_cli(
            harness,
            workspace,
            provider=state.compute or "",
            local_home=home,
            model=run.models[0],
            resume_ref=ref,
        )
    except HarnessUnavailable as exc:
        raise ApiError(422, "harness_unavailable", str(exc)) from None
    except ComputeError as exc:
        raise api_error(exc) from None


def _tool_event(run: Run, common: dict[str, Any], item: ToolCall | ToolResult) -> dict[str, Any]:
    s = run.state
    if isinstance(item, ToolCall):
        content = json.dumps({"name": item.name, "input": item.input}, ensure_ascii=False, default=str)
        attrs = {"call_id": item.call_id, "name": item.name, **item.attrs}
        return event("tool.call", s.tenant_id, s.session_id, content=content, attrs=attrs, **common)
    status = "error" if item.is_error else "ok"
    attrs = {"call_id": item.call_id, **item.attrs}
    return event(
        "tool.result", s.tenant_id, s.session_id, content=item.output, status=status, attrs=attrs, **common
    )


async def _record_failure(runner: Runner, run: Run, common: dict[str, Any], exc: HarnessError) -> None:
    error = _with_stderr(str(exc), exc.stderr, ERROR_TAIL)
    failed = runner._failed_event(run, [], exc.status, error, attrs={"stderr": exc.stderr}, **common)
    await runner._after_start(run, [failed])


def _with_stderr(message: str, stderr: str, limit: int) -> str:
    if not stderr:
        return message
    tail = stderr if len(stderr) <= limit else "…" + stderr[-limit:]
    return f"{message}; stderr: {tail}"

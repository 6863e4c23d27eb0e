"""Model worker processes (api/adapters/models/workers.py): what a busy server hands its litellm calls to.

Real worker processes, real litellm against the fake provider on loopback, and a real server.
The contract every adapter keeps is in tests/test_model_adapters.py, which runs it through a
worker too; here are what only a worker can do: be left mid-call, die, fail to start, outlive
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.adapters.models import CallOptions, ModelError, ModelResult, adapter_for
from api.adapters.models import workers as model_workers
from tests.fake_provider import FakeProvider
from tests.loop_thread import LoopThread
from tests.server import Server, mint_token
from tests.test_api_providers import ANTHROPIC, GEMINI, OPENAI, provider_env, providers_here

PROMPT = "one two three four five six seven eight nine ten"
TRANSCRIPT = [{"role": "user", "content": PROMPT}]
OPTIONS = CallOptions(timeout_s=10.0)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with providers_here(chunk_delay=0.02) as f:
        yield f


@pytest.fixture(scope="module")
def loop(fake: FakeProvider) -> Iterator[LoopThread]:
    with LoopThread(workers=1) as running:
        yield running


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def _gone(pids: set[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_a_caller_that_leaves_mid_stream_stops_the_workers_call(loop: LoopThread, fake: FakeProvider) -> None:
    fake.reset()
    worker = loop.worker()

    async def leave_after_one_delta() -> tuple[int, int]:
        stream = loop.pool.stream(worker, OPENAI, TRANSCRIPT, OPTIONS)
        async with contextlib.aclosing(stream) as items:
            async for item in items:
                assert isinstance(item, str)
                during = await worker.running()
                break
        for _ in range(100):  # the cancel crosses the pipe; the worker's call unwinds
            if await worker.running() == 0:
                break
            await asyncio.sleep(0.02)
        return during, await worker.running()

    during, after = loop.run(leave_after_one_delta())
    assert (during, after) == (1, 0), "the stream was running, then was stopped"
    assert worker.load == 0 and worker.alive
    # The stream was cut before its end: the fake sends its 12 pieces 20 ms apart.
    result = loop.run(loop.pool.complete(OPENAI, TRANSCRIPT, OPTIONS))
    assert result.text == "echo: " + PROMPT


def test_a_worker_that_dies_mid_call_fails_it_retryably_and_is_replaced(
    loop: LoopThread, fake: FakeProvider
) -> None:
    fake.reset()
    worker = loop.worker()
    fake.delay_next(5.0)

    async def call_then_kill() -> ModelError:
        call = asyncio.ensure_future(loop.pool.complete(OPENAI, TRANSCRIPT, OPTIONS))
        while worker.load == 0:
            await asyncio.sleep(0.01)
        worker.proc.kill()
        try:
            await asyncio.wait_for(call, 5)
        except ModelError as exc:
            return exc
        raise AssertionError("the call did not fail")

    error = loop.run(call_then_kill())
    assert error.retryable and not error.timeout
    assert "exited" in str(error)
    assert not worker.alive
    assert loop.run(loop.pool.started(), timeout=120) == 1, "a new worker took its place"
    replacement = loop.worker()
    assert replacement is not worker and replacement.alive
    result = loop.run(loop.pool.complete(OPENAI, TRANSCRIPT, OPTIONS))
    assert isinstance(result, ModelResult) and result.usage.output_tokens == 11


def _queued(pool: model_workers.WorkerPool) -> int:
    return sum(not waiter.done() for waiter in pool.queue)


def test_whole_calls_past_a_workers_slots_wait_their_turn(loop: LoopThread, fake: FakeProvider) -> None:
    """Eight calls at once on one worker: SLOTS of them run, the rest queue in the server; one that
    leaves the queue is dropped from it, and the others are answered as slots come free."""
    fake.reset()
    pool, worker = loop.pool, loop.worker()

    async def eight() -> tuple[tuple[int, int], list[object]]:
        calls = [asyncio.ensure_future(pool.complete(OPENAI, TRANSCRIPT, OPTIONS)) for _ in range(8)]
        await asyncio.sleep(0)  # each has been admitted or queued; no answer can be back yet
        at_once = (worker.busy, _queued(pool))
        calls[5].cancel()
        return at_once, await asyncio.gather(*calls, return_exceptions=True)

    at_once, results = loop.run(eight())
    assert at_once == (model_workers.SLOTS, 8 - model_workers.SLOTS)
    assert isinstance(results[5], asyncio.CancelledError)
    answered = [r for i, r in enumerate(results) if i != 5]
    assert all(isinstance(r, ModelResult) and r.text == "echo: " + PROMPT for r in answered), results
    assert len(fake.requests) == 7, "the call that left the queue never reached the provider"
    assert (worker.busy, _queued(pool), worker.load) == (0, 0, 0)


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
def test_calls_waiting_on_a_slow_provider_do_not_queue_behind_each_other(
    loop: LoopThread, fake: FakeProvider, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call gives its slot up once it has waited WAIT_S on its provider, as litellm's hooks around
    the provider's request tell the worker, in each wire format. Six calls to a provider that takes
    1 s then run at once; two at a time they would take 3 s. HOLD_S, which frees a slot whatever its
    call waits for, is lifted here, so only the hooks can free them."""
    monkeypatch.setattr(model_workers, "HOLD_S", 60.0)
    fake.reset()
    fake.delay_next(1.0, times=6)

    async def six() -> tuple[list[ModelResult], float]:
        began = time.monotonic()
        results = await asyncio.gather(*(loop.pool.complete(model, TRANSCRIPT, OPTIONS) for _ in range(6)))
        return results, time.monotonic() - began

    results, took = loop.run(six())
    assert all(r.text and r.usage.output_tokens for r in results)
    assert len(fake.requests) == 6
    assert took < 2.0, f"{took:.2f} s: the calls held their slots while they waited on the provider"


def test_a_worker_that_dies_fails_the_calls_queued_for_it(loop: LoopThread, fake: FakeProvider) -> None:
    """Its calls fail as retryable errors (the runner retries them): those it was making, and
    those queued for its slots, none left waiting."""
    fake.reset()
    fake.delay_next(5.0, times=2)
    worker = loop.worker()

    async def queue_then_kill() -> list[object]:
        calls = [asyncio.ensure_future(loop.pool.complete(OPENAI, TRANSCRIPT, OPTIONS)) for _ in range(6)]
        await asyncio.sleep(0)
        assert _queued(loop.pool) == 6 - model_workers.SLOTS
        worker.proc.kill()
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)

    results = loop.run(queue_then_kill())
    assert all(isinstance(r, ModelError) and r.retryable for r in results), results
    assert _queued(loop.pool) == 0
    assert loop.run(loop.pool.started(), timeout=120) == 1, "a new worker took its place"


# A worker that says it is ready, then reads its calls and never answers them.
SILENT = (
    sys.executable,
    "-c",
    "import os, pickle, struct, sys; b = pickle.dumps(('ready',)); "
    "os.write(1, struct.pack('>I', len(b)) + b); sys.stdin.buffer.read()",
)


def test_a_worker_that_hangs_fails_its_call_as_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that says it is ready, then never answers: its call ends past its timeout."""
    monkeypatch.setattr(model_workers, "COMMAND", SILENT)
    monkeypatch.setattr(model_workers, "GRACE_S", 0.2)

    async def call() -> tuple[ModelError, float]:
        pool = model_workers.WorkerPool(1)
        try:
            assert await pool.started() == 1
            began = time.monotonic()
            with pytest.raises(ModelError) as info:
                await pool.complete(OPENAI, TRANSCRIPT, CallOptions(timeout_s=0.3))
            return info.value, time.monotonic() - began
        finally:
            await pool.close()

    error, took = asyncio.run(call())
    assert error.timeout and error.retryable and "sent nothing" in str(error)
    assert 0.5 <= took < 3


def test_no_call_holds_a_slot_past_hold_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a call waits for (here a worker that never answers, so never says its call waits on
    a provider), its slot comes free after HOLD_S and the next queued call goes in."""
    monkeypatch.setattr(model_workers, "COMMAND", SILENT)
    monkeypatch.setattr(model_workers, "HOLD_S", 0.2)

    async def four() -> tuple[list[int], float]:
        pool = model_workers.WorkerPool(1)
        try:
            assert await pool.started() == 1
            worker = pool.workers[0]
            began = time.monotonic()
            calls = [asyncio.ensure_future(pool.complete(OPENAI, TRANSCRIPT, OPTIONS)) for _ in range(4)]
            seen = []
            while worker.load < 4 and time.monotonic() - began < 5:
                await asyncio.sleep(0.01)
                seen.append(worker.load)
            took = time.monotonic() - began
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            return seen, took
        finally:
            await pool.close()

    seen, took = asyncio.run(four())
    assert seen[0] == model_workers.SLOTS and seen[-1] == 4
    assert 0.2 <= took < 1.0, took


def test_a_worker_that_cannot_start_leaves_calls_in_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_workers, "COMMAND", (sys.executable, "-c", "raise SystemExit(3)"))

    async def start() -> tuple[int, object, bool]:
        pool = model_workers.WorkerPool(1)
        live = await pool.started()
        first = pool.pick()
        retrying = pool._starting is not None and not pool._starting.done()
        await pool.close()
        return live, first, retrying

    live, picked, retrying = asyncio.run(start())
    assert live == 0 and picked is None, "no worker: the caller runs the call itself"
    assert not retrying, "a failed start is not retried at once, call after call"


def _turn(client: httpx.Client, session_id: str, stream: bool) -> str:
    body = {"prompt": PROMPT, "stream": stream}
    if not stream:
        r = client.post(f"/v2/sessions/{session_id}/run-llm", json=body)
        assert r.status_code == 200, r.text
        return r.json()["output"]
    with client.stream("POST", f"/v2/sessions/{session_id}/run-llm", json=body) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert "event: done" in text, text
    return text


def _burst(server: Server, token: str, sessions: list[str]) -> list[str]:
    """One turn on each session at once, every other one streamed."""
    with ThreadPoolExecutor(len(sessions)) as pool:
        return list(
            pool.map(
                lambda item: _turn(server.client(token), item[1], stream=item[0] % 2 == 1),
                enumerate(sessions),
            )
        )


def test_a_busy_server_hands_calls_to_its_workers_and_they_go_when_it_is_killed(
    tmp_path: Path, fake: FakeProvider
) -> None:
    """Overlapping turns start the workers; later overlapping turns run in them, their records
    the same as any turn's; kill -9 the server and its workers exit with it."""
    data = tmp_path / "data"
    token = mint_token(data, "acme")
    env = {**provider_env(fake), "CERVER_MODEL_WORKERS": "2"}
    server = Server(data, env).start()
    try:
        client = server.client(token)
        assert client.get("/healthz").json()["model_workers"] == {"ready": 0, "calls": 0, "queued": 0}
        sessions = [
            client.post("/v2/sessions", json={"user_id": f"u{i}", "model": OPENAI}).json()["session_id"]
            for i in range(4)
        ]
        _burst(server, token, sessions)  # overlapping turns: the pool starts
        deadline = time.monotonic() + 120
        while client.get("/healthz").json()["model_workers"]["ready"] < 2:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        fake.reset()
        answers = _burst(server, token, sessions)
        health = client.get("/healthz").json()
        assert health["model_workers"]["calls"] >= 2, "overlapping turns ran in the workers"
        assert health["runs_in_flight"] == 0
        assert all(PROMPT in answer for answer in answers)
        assert len(fake.requests) == 4
        for session_id in sessions:  # recorded as any turn is: transcript, tokens and cost
            got = client.get(f"/v2/sessions/{session_id}").json()
            assert [m["content"] for m in got["transcript"]] == [PROMPT, "echo: " + PROMPT] * 2
            metrics = client.get(f"/v2/sessions/{session_id}/metrics").json()
            assert metrics["runs"] == 2 and metrics["output_tokens"] == 22
            assert metrics["cost_usd"] > 0
        assert server.process is not None
        kids = _children(server.process.pid)
        assert len(kids) == 2, kids
        server.stop(signal.SIGKILL)
        assert _gone(kids, within_s=10), "the workers outlived their server"
    finally:
        server.stop()


def test_workers_switched_off_leave_every_call_in_the_server(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CERVER_MODEL_WORKERS=0, overlapping calls all run here and no process is started."""
    monkeypatch.setenv("CERVER_MODEL_WORKERS", "0")
    adapter, before = adapter_for(OPENAI), _children(os.getpid())

    async def overlap() -> tuple[list[ModelResult], object]:
        results = await asyncio.gather(*(adapter.complete(OPENAI, TRANSCRIPT, OPTIONS) for _ in range(4)))
        return results, model_workers.pool()

    results, pool = asyncio.run(overlap())
    assert [r.text for r in results] == ["echo: " + PROMPT] * 4
    assert pool is None, "no pool to start workers from"
    assert _children(os.getpid()) == before


def test_the_worker_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERVER_MODEL_WORKERS", "3")
    assert model_workers.configured_size() == 3
    monkeypatch.delenv("CERVER_MODEL_WORKERS")
    assert model_workers.configured_size() == min(os.cpu_count() or 1, 4)
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("CERVER_MODEL_WORKERS", bad)
        with pytest.raises(ValueError, match="CERVER_MODEL_WORKERS must be a count"):
            model_workers.configured_size()


def test_a_bad_worker_count_stops_the_server_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.main import create_app

    monkeypatch.setenv("CERVER_MODEL_WORKERS", "many")
    with pytest.raises(ValueError, match="not 'many'"):
        create_app()

"""run-llm against real provider wire formats: a fake provider on loopback, litellm's real HTTP path."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import warehouse
from tests.fake_provider import FakeProvider
from tests.server import Server, mint_token

OPENAI, ANTHROPIC, GEMINI = "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"


def provider_env(fake: FakeProvider) -> dict[str, str]:
    """Where litellm finds each provider: keys and base URLs from the environment."""
    return {
        "OPENAI_API_KEY": "test-openai",
        "OPENAI_BASE_URL": fake.base_url + "/v1",
        "ANTHROPIC_API_KEY": "test-anthropic",
        "ANTHROPIC_API_BASE": fake.base_url,
        "GEMINI_API_KEY": "test-gemini",
        "GEMINI_API_BASE": fake.base_url,
        "CERVER_MODEL_TIMEOUT_S": "1.0",
        "CERVER_MODEL_RETRIES": "2",
        "NO_PROXY": "127.0.0.1,localhost",
    }


@contextlib.contextmanager
def providers_here(chunk_delay: float) -> Iterator[FakeProvider]:
    """A fake provider, with this process's environment pointing litellm at it while it runs."""
    with FakeProvider(chunk_delay=chunk_delay) as f, pytest.MonkeyPatch.context() as mp:
        for name, value in provider_env(f).items():
            mp.setenv(name, value)
        yield f


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        yield f


@pytest.fixture(scope="module")
def server(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("providers") / "cerver-data"
    data.mkdir()
    s = Server(data, provider_env(fake))
    s.token = mint_token(data, "acme")  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(server: Server, fake: FakeProvider) -> Iterator[httpx.Client]:
    fake.reset()
    with server.client(server.token) as c:  # type: ignore[attr-defined]
        yield c


def session(client: httpx.Client, **body: object) -> str:
    response = client.post("/v2/sessions", json={"user_id": "u1", **body})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def events(server: Server, session_id: str, kind: str) -> list[dict]:
    with warehouse.open(server.data, read_only=True) as reader:
        query = "select * from events where session_id = ? and type = ? order by ts"
        return reader.sql(query, [session_id, kind]).to_pylist()


def price(model: str, input_tokens: int, output_tokens: int) -> float:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    prompt, completion = litellm.cost_per_token(
        model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
    )
    return prompt + completion


def test_switching_providers_keeps_the_transcript(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    turn = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first q"}]}
    first = client.post(f"/v2/sessions/{sid}/run-llm", json=turn).json()
    assert first["output"] == "echo: first q" and first["model"] == OPENAI
    assert client.patch(f"/v2/sessions/{sid}", json={"model": ANTHROPIC}).json()["model"] == ANTHROPIC
    second = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "second q"}).json()
    assert second["output"] == "echo: second q" and second["model"] == ANTHROPIC
    client.patch(f"/v2/sessions/{sid}", json={"model": GEMINI})
    third = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "third q", "stream": False}).json()
    assert third["output"] == "echo: third q" and third["model"] == GEMINI

    openai_req, anthropic_req, gemini_req = fake.requests
    assert [m["role"] for m in openai_req.body["messages"]] == ["system", "user"]
    assert anthropic_req.provider == "anthropic"
    assert "be brief" in json.dumps(anthropic_req.body["system"])
    said = [(m["role"], json.dumps(m["content"])) for m in anthropic_req.body["messages"]]
    assert [r for r, _ in said] == ["user", "assistant", "user"]
    assert "first q" in said[0][1] and "echo: first q" in said[1][1] and "second q" in said[2][1]
    assert gemini_req.provider == "gemini"
    assert "be brief" in json.dumps(gemini_req.body["system_instruction"])
    roles = [c["role"] for c in gemini_req.body["contents"]]
    assert roles == ["user", "model", "user", "model", "user"]
    assert "third q" in json.dumps(gemini_req.body["contents"][-1])

    transcript = client.get(f"/v2/sessions/{sid}").json()["transcript"]
    assert [m["role"] for m in transcript] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    updates = events(client_server(client), sid, "session.updated")
    assert [u["model"] for u in updates] == [ANTHROPIC, GEMINI]


def client_server(client: httpx.Client) -> Server:
    return _SERVERS[str(client.base_url).rstrip("/")]


_SERVERS: dict[str, Server] = {}


@pytest.fixture(autouse=True)
def _register(server: Server) -> None:
    _SERVERS[server.url] = server


def test_tokens_and_cost_are_the_providers_and_litellms(client: httpx.Client, fake: FakeProvider) -> None:
    fake.usage = (1200, 345)
    for model in (OPENAI, ANTHROPIC, GEMINI):
        sid = session(client, model=model)
        answer = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "price me"}).json()
        assert answer["usage"] == {"input_tokens": 1200, "output_tokens": 345}, model
        assert answer["cost_usd"] == pytest.approx(price(model, 1200, 345), rel=1e-9), model
        metrics = client.get(f"/v2/sessions/{sid}/metrics").json()
        assert metrics["cost_usd"] == pytest.approx(answer["cost_usd"]) and metrics["input_tokens"] == 1200


def test_a_model_without_a_price_records_tokens_and_no_cost(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model="openai/my-private-finetune")
    answer = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "hi there"}).json()
    assert answer["usage"]["output_tokens"] == 3 and answer["cost_usd"] is None


def test_rate_limits_are_retried_and_each_attempt_recorded(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    fake.fail_next(429, times=2, retry_after=0)
    answer = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "persist"})
    assert answer.status_code == 200 and answer.json()["output"] == "echo: persist"
    [completed] = events(client_server(client), sid, "run.completed")
    attempts = json.loads(completed["attrs"])["attempts"]
    assert [(a["ok"], a.get("status")) for a in attempts] == [(False, 429), (False, 429), (True, None)]


def test_fallbacks_take_over_in_order(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI, fallbacks=[ANTHROPIC, GEMINI])
    fake.fail_next(500, times=3, provider="openai")
    answer = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "anyone"}).json()
    assert answer["model"] == ANTHROPIC and answer["output"] == "echo: anyone"
    assert [r.provider for r in fake.requests] == ["openai"] * 3 + ["anthropic"]


def test_when_every_model_fails_the_user_message_stays(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    fake.fail_next(500, times=3)
    response = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "doomed"})
    assert response.status_code == 502 and response.json()["error"]["code"] == "provider_error"
    [failed] = events(client_server(client), sid, "run.failed")
    assert failed["status"] == "error"
    assert "InternalServerError" in failed["error"] or "500" in failed["error"]
    transcript = client.get(f"/v2/sessions/{sid}").json()["transcript"]
    assert transcript == [{"role": "user", "content": "doomed"}]
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "again"}).status_code == 200


def test_a_timeout_is_a_504(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=ANTHROPIC)
    fake.delay_next(3.0, times=3)
    response = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "slow"})
    assert response.status_code == 504 and response.json()["error"]["code"] == "provider_timeout"
    [failed] = events(client_server(client), sid, "run.failed")
    assert failed["status"] == "timeout"


def test_one_run_at_a_time_per_session(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    fake.delay_next(0.8)
    results: list[int] = []
    first = threading.Thread(
        target=lambda: results.append(
            client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "a"}).status_code
        )
    )
    first.start()
    deadline = time.monotonic() + 5
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    second = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "b"})
    first.join()
    assert results == [200]
    assert second.status_code == 409 and second.json()["error"]["code"] == "run_in_flight"


def test_budget_stops_runs_with_429(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI, budget_usd=0.0000001)
    fake.usage = (1000, 1000)
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "spend"}).status_code == 200
    over = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "more"})
    assert over.status_code == 429 and over.json()["error"]["code"] == "budget_exceeded"
    assert len(fake.requests) == 1
    statuses = [e["status"] for e in events(client_server(client), sid, "run.failed")]
    assert statuses == ["budget_exceeded"]


def test_idempotency_key_means_one_model_call(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=GEMINI)
    for _ in range(3):
        r = client.post(
            f"/v2/sessions/{sid}/run-llm", json={"prompt": "once"}, headers={"Idempotency-Key": "abc"}
        )
        assert r.status_code == 200
    assert len(fake.requests) == 1


def test_streaming_through_a_provider(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=ANTHROPIC)
    with client.stream(
        "POST", f"/v2/sessions/{sid}/run-llm", json={"prompt": "a b c d", "stream": True}
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    deltas = [json.loads(f.split("data: ", 1)[1])["text"] for f in frames if f.startswith("event: delta")]
    done = json.loads(frames[-1].split("data: ", 1)[1])
    assert "".join(deltas) == done["output"] == "echo: a b c d"
    assert len(deltas) > 1 and 0 < done["ttft_ms"] < done["latency_ms"]
    assert fake.requests[0].stream


def test_a_broken_stream_fails_the_run_cleanly(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    fake.malformed_next()
    with client.stream(
        "POST", f"/v2/sessions/{sid}/run-llm", json={"prompt": "x y z w", "stream": True}
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    assert frames[-1].startswith("event: error")
    assert len(fake.requests) == 1  # output had reached the caller: no silent retry
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "next"}).status_code == 200


def test_a_long_json_turn_is_seen_running_before_it_ends(client: httpx.Client, fake: FakeProvider) -> None:
    """A lone JSON turn's start is not fsynced on its own (the answer's append covers it), but one
    still running after 50 ms has it synced: the server's own queries see the run running."""
    sid = session(client, model=OPENAI)
    fake.delay_next(2.0)
    server = client_server(client)
    answered: list[httpx.Response] = []
    with server.client(server.token) as runner:  # type: ignore[attr-defined]
        url = f"/v2/sessions/{sid}/run-llm"
        turn = threading.Thread(target=lambda: answered.append(runner.post(url, json={"prompt": "slow"})))
        turn.start()
        sql = {"sql": "SELECT status FROM runs WHERE session_id = ?", "params": [sid]}
        seen: list[list[object]] = []
        deadline = time.monotonic() + 1.5
        while seen != [["running"]] and time.monotonic() < deadline:
            seen = client.post("/v2/query", json=sql).json()["rows"]
            time.sleep(0.02)
        turn.join(30)
    assert seen == [["running"]], "the run's start was not visible while the model answered"
    assert answered and answered[0].status_code == 200, "the turn did not finish"
    assert client.post("/v2/query", json=sql).json()["rows"] == [["ok"]]


def test_kill_9_mid_run_marks_it_interrupted(fake: FakeProvider, tmp_path: Path) -> None:
    fake.reset()
    data = tmp_path / "cerver-data"
    data.mkdir()
    token = mint_token(data, "acme")
    server = Server(data, provider_env(fake)).start()
    with server.client(token) as c:
        sid = session(c, model=OPENAI)
        fake.delay_next(30.0)

        def doomed_run() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                c.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "lost?"})

        threading.Thread(target=doomed_run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop(signal.SIGKILL)
    fake.reset()
    server = Server(data, provider_env(fake)).start()
    try:
        with server.client(token) as c:
            body = c.get(f"/v2/sessions/{sid}").json()
            assert body["transcript"] == [{"role": "user", "content": "lost?"}]
            failed = events(server, sid, "run.failed")
            assert [e["status"] for e in failed] == ["interrupted"]
            after = c.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "back"})
            assert after.status_code == 200 and after.json()["output"] == "echo: back"
            assert [m["role"] for m in fake.requests[0].body["messages"]] == ["user", "user"]
    finally:
        server.stop()


def test_tool_messages_cross_providers_in_their_wire_format(client: httpx.Client, fake: FakeProvider) -> None:
    sid = session(client, model=OPENAI)
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
    }
    turn = [
        {"role": "system", "content": "use tools"},
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
        {"role": "user", "content": "so, a jacket?"},
    ]
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"messages": turn}).status_code == 200
    sent = fake.requests[0].body["messages"]
    assert sent[2]["tool_calls"][0]["id"] == "call_1" and sent[3]["tool_call_id"] == "call_1"
    client.patch(f"/v2/sessions/{sid}", json={"model": ANTHROPIC})
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "and tomorrow?"}).status_code == 200
    blocks = [b for m in fake.requests[1].body["messages"] for b in m["content"] if isinstance(b, dict)]
    kinds = [b["type"] for b in blocks]
    assert "tool_use" in kinds and "tool_result" in kinds
    use = next(b for b in blocks if b["type"] == "tool_use")
    result = next(b for b in blocks if b["type"] == "tool_result")
    assert use["id"] == result["tool_use_id"] == "call_1" and use["input"] == {"city": "Paris"}
    assert "sunny" in json.dumps(result["content"])


def test_a_broken_reply_is_retried_when_the_caller_has_seen_nothing(
    client: httpx.Client, fake: FakeProvider
) -> None:
    sid = session(client, model=OPENAI)
    fake.malformed_next()
    answer = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "x y z w"})
    assert answer.status_code == 200 and answer.json()["output"] == "echo: x y z w"
    assert len(fake.requests) == 2


def test_a_caller_that_goes_away_mid_stream_leaves_a_cancelled_run(
    client: httpx.Client, fake: FakeProvider
) -> None:
    sid = session(client, model=OPENAI)
    fake.script([" ".join(f"w{i}" for i in range(400))])  # about 2 s of streaming
    with client.stream("POST", f"/v2/sessions/{sid}/run-llm", json={"prompt": "long", "stream": True}) as r:
        next(r.iter_raw())  # the first frame, then hang up
    server = client_server(client)
    deadline = time.monotonic() + 10
    while not events(server, sid, "run.failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    [failed] = events(server, sid, "run.failed")
    assert failed["status"] == "cancelled"
    assert client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "still here"}).status_code == 200

"""api/hot_path.py: a plain turn is answered beneath FastAPI, and everything else exactly as the route would.

Most run-llm tests elsewhere go through the hot path without knowing it; these check what
is particular to it: bodies that arrive in pieces, bodies it must hand on (too large, not
JSON, with an Idempotency-Key), and that its answers and the route's are the same.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

import warehouse
from api.hot_path import _read, _replay
from api.routes.sessions import turn_answer
from api.schemas import RunLLM
from api.sessions.events import event
from api.sessions.runner import Runner
from api.sessions.state import SessionState
from api.settings import Settings
from tests.library import sessions_at
from tests.server import Server

TURN = {"prompt": "hello hot path"}


def session(client: httpx.Client) -> str:
    response = client.post("/v2/sessions", json={"user_id": "u1"})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def types_of(server: Server, session_id: str) -> list[str]:
    with warehouse.open(server.data, read_only=True) as reader:
        query = "select type from events where session_id = ? order by ts, event_id"
        return reader.sql(query, [session_id]).column(0).to_pylist()


def test_the_hot_path_and_the_route_answer_a_turn_alike(client: httpx.Client) -> None:
    sid = session(client)
    hot = client.post(f"/v2/sessions/{sid}/run-llm", json=TURN)
    routed = client.post(f"/v2/sessions/{sid}/run-llm", json=TURN, headers={"Idempotency-Key": "k1"})
    assert hot.status_code == routed.status_code == 200
    assert hot.headers["content-type"] == routed.headers["content-type"] == "application/json"
    hot_body, routed_body = hot.json(), routed.json()
    assert hot_body.keys() == routed_body.keys()
    for key in ("output", "model", "cost_usd", "ttft_ms"):
        assert hot_body[key] == routed_body[key], key
    assert hot_body["usage"].keys() == routed_body["usage"].keys()
    # The route remembered its answer by key; the hot path remembers nothing.
    again = client.post(f"/v2/sessions/{sid}/run-llm", json=TURN, headers={"Idempotency-Key": "k1"})
    assert again.json()["run_id"] == routed_body["run_id"] != hot_body["run_id"]


def test_errors_after_acceptance_have_the_api_shape(client: httpx.Client) -> None:
    sid = session(client)
    for path, body, status, code in [
        ("/v2/sessions/sess_nope/run-llm", TURN, 404, "not_found"),
        (f"/v2/sessions/{sid}/run-llm", {**TURN, "model": "nope"}, 422, "unknown_model"),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_a_body_in_pieces_is_read_whole(client: httpx.Client) -> None:
    sid = session(client)
    body = b'{"prompt": "in three pieces"}'

    def pieces() -> Iterator[bytes]:
        yield body[:5]
        yield body[5:17]
        yield body[17:]

    response = client.post(
        f"/v2/sessions/{sid}/run-llm", content=pieces(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "echo: in three pieces"


def test_bodies_it_hands_on_get_the_routes_answers_and_change_nothing(client: httpx.Client, api) -> None:
    sid = session(client)
    too_big = b'{"prompt": "' + b"x" * (2 << 20) + b'"}'

    def chunked() -> Iterator[bytes]:  # no Content-Length: the size shows only as it arrives
        step = 64 << 10
        for at in range(0, len(too_big), step):
            yield too_big[at : at + step]

    cases = [
        ({"content": chunked(), "headers": {"content-type": "application/json"}}, 413, "body_too_large"),
        ({"content": b'{"prompt": ', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
        ({"json": {"prompt": "x", "extra": 1}}, 422, "invalid_request"),
        ({"json": TURN, "headers": {"Authorization": "Bearer nope"}}, 401, "unauthorized"),
        ({"content": b'{"prompt": "x"}', "headers": {"content-type": "text/plain"}}, 422, "invalid_request"),
    ]
    for kwargs, status, code in cases:
        response = client.post(f"/v2/sessions/{sid}/run-llm", **kwargs)
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code
    assert types_of(api[0], sid) == ["session.created"]


def test_a_streamed_turn_on_the_hot_path(client: httpx.Client) -> None:
    sid = session(client)
    with client.stream("POST", f"/v2/sessions/{sid}/run-llm", json={**TURN, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
        kinds = [line.removeprefix("event: ") for line in r.iter_lines() if line.startswith("event: ")]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and kinds[:-1]


def test_replay_gives_the_app_the_body_as_it_came() -> None:
    async def scenario() -> list[dict]:
        parts = [b"ab", b"cd", b"ef"]
        messages = [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(parts)]
        queue = iter([*messages, {"type": "http.disconnect"}])

        async def receive() -> dict:
            return next(queue)

        body, more = await _read(receive, limit=3)  # stops past the limit, the rest still unread
        assert (body, more) == (b"abcd", True)
        again = _replay(body, more, receive)
        return [await again(), await again(), await again()]

    first, rest, gone = asyncio.run(scenario())
    assert first == {"type": "http.request", "body": b"abcd", "more_body": True}
    assert rest == {"type": "http.request", "body": b"ef", "more_body": False}
    assert gone == {"type": "http.disconnect"}


def test_a_caller_gone_before_its_stream_starts_leaves_the_session_free(client: httpx.Client, api) -> None:
    """Streamed turns whose sockets close as soon as they are sent: the session is not left locked."""
    sid = session(client)
    server, token = api[0], api[1]
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({**TURN, "stream": True}).encode()
    head = (
        f"POST /v2/sessions/{sid}/run-llm HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    for _ in range(20):
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(head + body)
    deadline = time.monotonic() + 10
    while (response := client.post(f"/v2/sessions/{sid}/run-llm", json=TURN)).status_code == 409:
        assert time.monotonic() < deadline, "the session stayed locked by a run that never ran"
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    assert client.get("/healthz").json()["runs_in_flight"] == 0


def test_a_run_whose_stream_never_began_frees_its_session(tmp_path: Path) -> None:
    """In the library: a started run that `execute` never saw (its stream was cancelled before
    its first frame) is abandoned, so the session takes runs again and nothing was written."""

    async def scenario() -> None:
        async with sessions_at(tmp_path / "data") as service:
            store = service.store
            runner = Runner(service, Settings())
            state = SessionState("t", "sess_a")
            await store.write(
                state, [event("session.created", "t", "sess_a", user_id="u", model="offline/echo")]
            )
            run = await runner.start("t", "sess_a", RunLLM(prompt="hi", stream=True))
            assert state.lock.locked() and runner.in_flight == 1
            await runner.abandon(run)
            assert not state.lock.locked() and runner.in_flight == 0
            await runner.abandon(run)  # twice is once
            assert runner.in_flight == 0
            answered = await turn_answer(runner, "t", "sess_a", RunLLM(prompt="again"))
            assert answered[0] == 200 and answered[1]["output"] == "echo: again"
            finished = await runner.start("t", "sess_a", RunLLM(prompt="third"))
            async for _ in runner.execute(finished):
                pass
            await runner.abandon(finished)  # a run that ran is not released twice
            assert not state.lock.locked() and runner.in_flight == 0
        with warehouse.open(str(tmp_path / "data"), read_only=True) as reader:
            kinds = reader.sql("select type from events order by ts, event_id").column(0).to_pylist()
        assert kinds.count("run.started") == 2  # the abandoned run wrote nothing

    asyncio.run(scenario())

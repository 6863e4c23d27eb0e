"""The session API end to end: a real server on loopback, the offline model, real events."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import warehouse
from tests.server import Server, mint_token


def new_session(client: httpx.Client, **body: object) -> dict:
    response = client.post("/v2/sessions", json={"user_id": "u1", **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_session_lives_through_turns_switches_and_close(client: httpx.Client) -> None:
    s = new_session(client, metadata={"app": "docs"})
    assert s["session_id"].startswith("sess_") and s["status"] == "ready" and s["model"] == "offline/echo"
    sid = s["session_id"]
    first = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "hello world"}).json()
    assert first["output"] == "echo: hello world"
    assert first["usage"] == {"input_tokens": 2, "output_tokens": 3}
    assert first["run_id"].startswith("run_") and first["latency_ms"] > 0
    assert first["ttft_ms"] is None  # a JSON run asks the model for the whole answer: no first token
    patched = client.patch(f"/v2/sessions/{sid}", json={"metadata": {"app": "docs", "v": 2}}).json()
    assert patched["session_id"] == sid and patched["metadata"] == {"app": "docs", "v": 2}
    client.post(f"/v2/sessions/{sid}/run-llm", json={"messages": [{"role": "user", "content": "again"}]})
    body = client.get(f"/v2/sessions/{sid}").json()
    assert [m["content"] for m in body["transcript"]] == [
        "hello world",
        "echo: hello world",
        "again",
        "echo: again",
    ]
    assert body["runs"] == 2 and body["messages"] == 4
    metrics = client.get(f"/v2/sessions/{sid}/metrics").json()
    assert metrics["runs"] == 2 and metrics["messages"] == 4
    assert metrics["input_tokens"] == 2 + 6 and metrics["output_tokens"] == 3 + 2  # turn 2 sends turn 1 too
    assert metrics["by_model"][0]["model"] == "offline/echo" and metrics["by_model"][0]["runs"] == 2
    assert metrics["latency_ms"]["p50"] is not None and metrics["children_cost_usd"] == 0
    closed = client.post(f"/v2/sessions/{sid}/close").json()
    assert closed["status"] == "closed"
    for call in (
        lambda: client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "x"}),
        lambda: client.patch(f"/v2/sessions/{sid}", json={"model": "offline/echo"}),
        lambda: client.post(f"/v2/sessions/{sid}/close"),
    ):
        response = call()
        assert response.status_code == 409 and response.json()["error"]["code"] == "session_closed"


def test_streaming_answers_server_sent_events(client: httpx.Client) -> None:
    sid = new_session(client)["session_id"]
    with client.stream(
        "POST", f"/v2/sessions/{sid}/run-llm", json={"prompt": "one two", "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in r.read().decode().split("\n\n") if f]
    kinds = [f.splitlines()[0] for f in frames]
    assert kinds == ["event: delta"] * 3 + ["event: done"]
    done = httpx.Response(200, content=frames[-1].splitlines()[1].removeprefix("data: ")).json()
    assert done["output"] == "echo: one two" and done["usage"]["output_tokens"] == 3


def test_a_new_sessions_answer_is_the_views_row(client: httpx.Client) -> None:
    """Create and fork answer without a query of the `sessions` view (a new session's row is
    known); a later GET reads the view, and they agree field for field."""
    made = new_session(client, metadata={"app": "docs"}, budget_usd=1.5)
    sid = made["session_id"]
    assert client.get(f"/v2/sessions/{sid}").json() == made
    client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "hello"}).raise_for_status()
    forked = client.post(f"/v2/sessions/{sid}/fork", json={})
    assert forked.status_code == 201, forked.text
    fork = forked.json()
    assert fork["transcript"] and fork["messages"] == 0, "a fork reads its transcript through the source"
    assert client.get(f"/v2/sessions/{fork['session_id']}").json() == fork


def test_idempotent_create(client: httpx.Client) -> None:
    body = {"user_id": "u1", "session_id": "my-own-id", "metadata": {"k": 1}}
    first = client.post("/v2/sessions", json=body)
    again = client.post("/v2/sessions", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["session_id"] == "my-own-id"
    other = client.post("/v2/sessions", json={**body, "metadata": {"k": 2}})
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"


def test_idempotency_key_returns_the_first_answer(client: httpx.Client, api) -> None:
    sid = new_session(client)["session_id"]
    headers = {"Idempotency-Key": "k-123"}
    first = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "once"}, headers=headers)
    second = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "once"}, headers=headers)
    assert first.json() == second.json()
    assert client.get(f"/v2/sessions/{sid}").json()["runs"] == 1
    clash = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "other"}, headers=headers)
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "idempotency_conflict"


def test_listing_filters_and_pages(api: tuple[Server, str, str]) -> None:
    server, _, _ = api
    token = mint_token(server.data, "lister")  # minted while the server runs: honoured at once
    with server.client(token) as client:
        ids = [new_session(client, user_id=f"user-{i % 2}")["session_id"] for i in range(5)]
        client.post(f"/v2/sessions/{ids[0]}/close")
        page = client.get("/v2/sessions", params={"limit": 2}).json()
        seen = [s["session_id"] for s in page["sessions"]]
        while page["next_cursor"]:
            page = client.get("/v2/sessions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
            seen += [s["session_id"] for s in page["sessions"]]
        assert seen == ids
        mine = client.get("/v2/sessions", params={"user_id": "user-1"}).json()["sessions"]
        assert [s["session_id"] for s in mine] == [ids[1], ids[3]]
        closed = client.get("/v2/sessions", params={"status": "closed"}).json()["sessions"]
        assert [s["session_id"] for s in closed] == [ids[0]]
        bad = client.get("/v2/sessions", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400


def test_tenants_are_sealed(api: tuple[Server, str, str]) -> None:
    server, acme, globex = api
    with server.client(acme) as a, server.client(globex) as g:
        sid = new_session(a)["session_id"]
        for response in (
            g.get(f"/v2/sessions/{sid}"),
            g.get(f"/v2/sessions/{sid}/metrics"),
            g.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "steal"}),
            g.patch(f"/v2/sessions/{sid}", json={"metadata": {}}),
            g.post(f"/v2/sessions/{sid}/close"),
        ):
            assert response.status_code == 404, response.text
            assert response.json() == {"error": {"code": "not_found", "message": "no such session"}}
        assert sid not in [s["session_id"] for s in g.get("/v2/sessions").json()["sessions"]]
        # Same id, other tenant: a different session, not a conflict.
        assert g.post("/v2/sessions", json={"user_id": "x", "session_id": sid}).status_code == 201
        assert a.get(f"/v2/sessions/{sid}").json()["user_id"] == "u1"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "post",
            "/v2/sessions",
            {"content": b'{"user_id": ', "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "extra": 1}}, 422, "invalid_request"),
        ("post", "/v2/sessions", {"json": {"user_id": 7}}, 422, "invalid_request"),
        ("post", "/v2/sessions", {"json": {}}, 422, "invalid_request"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "model": "nope"}}, 422, "unknown_model"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "model": "offline/nope"}}, 422, "unknown_model"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "harness": "emacs"}}, 422, "unknown_harness"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "compute": "mainframe"}}, 422, "unknown_provider"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "budget_usd": -1}}, 422, "invalid_request"),
        ("post", "/v2/sessions", {"json": {"user_id": "u", "pad": "x" * (2 << 20)}}, 413, "body_too_large"),
        ("get", "/v2/sessions/nope", {}, 404, "not_found"),
    ],
)
def test_bad_requests_get_clear_errors(client, method, path, kwargs, status, code) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_body_over_the_limit_without_a_length_is_a_413_too(client: httpx.Client) -> None:
    """Sent in chunks, the size shows only as it arrives; it used to surface as a 400 parse error."""
    big = b'{"user_id": "' + b"x" * (2 << 20) + b'"}'
    chunks = (big[at : at + (64 << 10)] for at in range(0, len(big), 64 << 10))
    before = client.get("/v2/sessions", params={"limit": 1000}).json()["sessions"]
    response = client.post("/v2/sessions", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"
    assert client.get("/v2/sessions", params={"limit": 1000}).json()["sessions"] == before


def test_bad_turns_write_nothing(client: httpx.Client, api) -> None:
    sid = new_session(client)["session_id"]
    bodies = [
        {"prompt": ""},
        {"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
        {},
        {"messages": []},
        {"prompt": "x", "model": "nope"},
        {"prompt": "x", "temperature": 9},
    ]
    for body in bodies:
        response = client.post(f"/v2/sessions/{sid}/run-llm", json=body)
        assert response.status_code == 422, (body, response.text)
    with warehouse.open(api[0].data, read_only=True) as reader:
        rows = reader.sql("select type from events where session_id = ?", [sid]).column(0).to_pylist()
    assert rows == ["session.created"]


def test_no_token_or_a_wrong_one_is_401(api: tuple[Server, str, str]) -> None:
    server = api[0]
    for token in (None, "cvr_wrong"):
        with server.client(token) as c:
            response = c.get("/v2/sessions")
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_openapi_docs_are_served(api: tuple[Server, str, str]) -> None:
    server = api[0]
    assert httpx.get(server.url + "/docs").status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert "/v2/sessions/{session_id}/run-llm" in paths


def test_data_dir_is_the_servers(api: tuple[Server, str, str]) -> None:
    assert Path(api[0].data / "api" / "tokens.jsonl").exists()


def test_first_start_mints_a_token_and_the_env_token_works(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    server = Server(data, {"CERVER_API_TOKEN": "", "CERVER_DEFAULT_MODEL": "offline/echo"}).start()
    try:
        printed = server.log.read_text()
        assert "minted one for tenant 'default'" in printed
        token = next(word for word in printed.split() if word.startswith("cvr_"))
        with server.client(token) as c:
            assert c.post("/v2/sessions", json={"user_id": "u"}).status_code == 201
    finally:
        server.stop()
    server = Server(
        data, {"CERVER_API_TOKEN": "from-the-env", "CERVER_DEFAULT_MODEL": "offline/echo"}
    ).start()
    try:
        with server.client("from-the-env") as c, server.client(token) as minted:
            created = c.post("/v2/sessions", json={"user_id": "u"}).json()["session_id"]
            assert minted.get(f"/v2/sessions/{created}").status_code == 200  # both are the default tenant
        assert "minted one" not in server.log.read_text()  # a token existed: none minted
    finally:
        server.stop()

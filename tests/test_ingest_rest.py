"""POST /v2/events end to end: JSON and NDJSON, gzip, partial rejection, idempotent re-posts."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

import warehouse
from ingest import rest
from tests.server import Server


def ev(i: int, session: str = "ext-1", **fields: object) -> dict:
    return {
        "event_id": f"{session}-e{i}",
        "ts": f"2026-11-20T10:00:{i:02d}Z",
        "session_id": session,
        "user_id": "ext-user",
        "type": "message",
        "role": "user",
        "content": f"m{i}",
        **fields,
    }


def test_a_batch_lands_once_and_shows_as_a_session(client: httpx.Client) -> None:
    batch = [ev(i) for i in range(5)] + [
        ev(
            5,
            type="run.completed",
            role=None,
            model="openai/gpt-4o",
            input_tokens=10,
            output_tokens=4,
            cost_usd=0.5,
        )
    ]
    first = client.post("/v2/events", json=batch)
    assert first.status_code == 200 and first.json() == {"accepted": 6, "duplicates": 0, "rejected": []}
    again = client.post("/v2/events", json=batch)
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 6, "rejected": []}
    listed = {s["session_id"]: s for s in client.get("/v2/sessions").json()["sessions"]}
    assert listed["ext-1"]["messages"] == 5 and listed["ext-1"]["runs"] == 1
    assert listed["ext-1"]["cost_usd"] == 0.5 and listed["ext-1"]["model"] == "openai/gpt-4o"
    assert client.get("/v2/sessions/ext-1/metrics").json()["input_tokens"] == 10


def test_ndjson_and_gzip(client: httpx.Client) -> None:
    lines = "\n".join(json.dumps(ev(i, "ext-2")) for i in range(4)).encode() + b"\n"
    response = client.post(
        "/v2/events",
        content=gzip.compress(lines),
        headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200 and response.json()["accepted"] == 4


def test_bad_events_are_reported_and_the_rest_stored(client: httpx.Client) -> None:
    lines = [
        json.dumps(ev(0, "ext-3")),
        "{not json",
        json.dumps(ev(2, "ext-3", ts=None)),
        json.dumps(ev(3, "ext-3", type="bogus")),
        json.dumps(ev(4, "ext-3", tenant_id="globex")),
        json.dumps([1, 2]),
        json.dumps({k: v for k, v in ev(6, "ext-3").items() if k != "event_id"}),  # an id is made
    ]
    response = client.post(
        "/v2/events", content="\n".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5]
    errors = [r["error"] for r in body["rejected"]]
    assert "not JSON" in errors[0] and "'ts': required" in errors[1] and "'bogus' is not one of" in errors[2]
    assert "tenant_id comes from the token" in errors[3] and "expected an event object" in errors[4]
    transcript = client.get("/v2/sessions/ext-3").json()["transcript"]
    assert [m["content"] for m in transcript] == ["m0", "m6"]


def test_nothing_valid_is_a_400_and_stores_nothing(client: httpx.Client) -> None:
    response = client.post("/v2/events", json=[ev(0, "ext-4", type="nope"), ev(1, "ext-4", ts="soon")])
    assert response.status_code == 400 and response.json()["accepted"] == 0
    assert client.get("/v2/sessions/ext-4").status_code == 404


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"[1, 2", {}, 400, "malformed_body"),
        (b'"a string"', {}, 400, "malformed_body"),
        (b"[]", {}, 400, "empty_batch"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "malformed_body"),
        (b"[]", {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
        (gzip.compress(b" " * (101 << 20)), {"Content-Encoding": "gzip"}, 413, "body_too_large"),
        (b"[" + b" " * (11 << 20) + b"]", {}, 413, "body_too_large"),
    ],
)
def test_unreadable_bodies(
    client: httpx.Client, content: bytes, headers: dict, status: int, code: str
) -> None:
    response = client.post(
        "/v2/events", content=content, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_ingested_events_are_the_callers_tenants_only(api: tuple[Server, str, str]) -> None:
    server, acme, globex = api
    with server.client(acme) as a, server.client(globex) as g:
        assert a.post("/v2/events", json=[ev(0, "private")]).status_code == 200
        assert g.get("/v2/sessions/private").status_code == 404
        assert "private" not in [s["session_id"] for s in g.get("/v2/sessions").json()["sessions"]]
        # The same ids under another tenant are that tenant's own events, not duplicates.
        assert g.post("/v2/events", json=[ev(0, "private")]).json()["accepted"] == 1


def test_events_ingested_into_an_api_session_join_its_transcript(client: httpx.Client) -> None:
    sid = client.post("/v2/sessions", json={"user_id": "u1"}).json()["session_id"]
    client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "hello"})
    note = {
        "ts": "2099-01-01T00:00:00Z",
        "session_id": sid,
        "type": "message",
        "role": "user",
        "content": "later",
    }
    assert client.post("/v2/events", json=[note]).status_code == 200
    transcript = client.get(f"/v2/sessions/{sid}").json()["transcript"]
    assert [m["content"] for m in transcript] == ["hello", "echo: hello", "later"]


def test_requests_grouped_into_one_append_each_get_their_own_answer(wh: warehouse.Warehouse) -> None:
    """Requests that arrive together share one append; the answers must still be per request."""
    first = rest.Batch("acme", [ev(0, "g1"), ev(1, "g1")])
    bad = rest.Batch("acme", [ev(2, "g2"), ev(3, "g2", type="nope"), "not an event"])
    again = rest.Batch("acme", [ev(0, "g1"), ev(4, "g3")])  # one duplicate of `first`
    other = rest.Batch("zeta", [ev(0, "g1")])  # the same id under another tenant is another event
    results = rest.ingest_many(wh, [first, bad, again, other])
    assert [(r.accepted, r.duplicates) for r in results] == [(2, 0), (1, 0), (1, 1), (1, 0)]
    assert [(x.index, x.error.split(":")[0]) for x in results[1].rejected] == [
        (1, "field 'type'"),
        (2, "expected an event object, got str"),
    ]
    assert results[0].sessions == {"g1"} and results[2].sessions == {"g1", "g3"}
    counts = wh.sql("select tenant_id, count(*) as n from events group by 1 order by 1").to_pylist()
    assert counts == [{"tenant_id": "acme", "n": 4}, {"tenant_id": "zeta", "n": 1}]

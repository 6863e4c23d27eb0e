"""Spawn, select and fork through a real `cerver serve`, with models on the fake provider (loopback).

The fake answers each model after its own delay (and fails the models a test names), so a spawn's
wall time can be compared with its slowest variant's: parallel, not the sum.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import queries
import warehouse
from api.schemas import Spawn, Variant
from api.sessions.events import event
from api.sessions.fanout import FanOut
from api.sessions.runner import Runner
from api.sessions.state import SessionState
from api.settings import Settings
from tests.fake_provider import FakeProvider, RecordedRequest, Reply
from tests.fake_wire import last_user_text
from tests.library import sessions_at
from tests.server import Server, mint_token
from tests.test_api_providers import provider_env

# Five OpenAI models the price map knows, each answering after its own delay.
DELAYS = {"gpt-4o-mini": 0.1, "gpt-4o": 0.2, "gpt-4.1-mini": 0.3, "gpt-4.1-nano": 0.4, "gpt-4.1": 0.5}
MODELS = [f"openai/{name}" for name in DELAYS]


class Models:
    """The fake's responder: per-model delays and failures, and a scripted judge."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.judge_reply: str | None = None
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> str | Reply:
        if request.model == "gpt-4-turbo" and self.judge_reply is not None:
            return self.judge_reply
        time.sleep(DELAYS.get(request.model, 0.0))
        if request.model in self.failing:
            raise RuntimeError(f"{request.model} is down")
        return f"{request.model} says: {last_user_text(request.provider, request.body)}"


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


@pytest.fixture(scope="module")
def fake(models: Models) -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        f.responder = models
        yield f


@pytest.fixture(scope="module")
def server(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fanout") / "cerver-data"
    env = {**provider_env(fake), "CERVER_MODEL_RETRIES": "0", "CERVER_MODEL_TIMEOUT_S": "5"}
    s = Server(data, env)
    data.mkdir(parents=True)
    s.token = mint_token(data, "acme")  # type: ignore[attr-defined]
    s.other = mint_token(data, "globex")  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(server: Server, fake: FakeProvider, models: Models) -> Iterator[httpx.Client]:
    fake.reset()
    fake.responder = models
    models.failing.clear()
    models.judge_reply = None
    with server.client(server.token) as c:  # type: ignore[attr-defined]
        c.timeout = 30
        yield c


def new_session(client: httpx.Client, **body: object) -> str:
    response = client.post("/v2/sessions", json={"user_id": "u1", "model": MODELS[0], **body})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def spawn(client: httpx.Client, sid: str, **body: object) -> httpx.Response:
    return client.post(f"/v2/sessions/{sid}/spawn", json={"prompt": "name a colour", **body})


def test_five_variants_run_at_once_and_answer_side_by_side(client: httpx.Client, server: Server) -> None:
    sid = new_session(client)
    client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "hello"}).raise_for_status()
    variants = [{"model": m, "label": f"v{i}"} for i, m in enumerate(MODELS)]
    began = time.perf_counter()
    response = spawn(client, sid, variants=variants)
    wall = time.perf_counter() - began
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [v["label"] for v in answer["variants"]] == ["v0", "v1", "v2", "v3", "v4"]
    for variant, model in zip(answer["variants"], MODELS, strict=True):
        assert variant["status"] == "ok" and variant["error"] is None
        assert variant["model"] == model
        assert variant["output"] == f"{model.split('/')[1]} says: name a colour"
        assert variant["usage"]["input_tokens"] > 0 and variant["cost_usd"] > 0
    slowest = max(DELAYS.values())
    assert slowest <= wall < sum(DELAYS.values()), f"spawn took {wall:.2f}s: not in parallel"
    assert answer["cost_usd"] == pytest.approx(sum(v["cost_usd"] for v in answer["variants"]))

    # Each child saw the parent's transcript, then the prompt.
    child = client.get(f"/v2/sessions/{answer['variants'][0]['session_id']}").json()
    assert child["parent_session_id"] == sid
    assert [m["content"] for m in child["transcript"]] == [
        "hello",
        "gpt-4o-mini says: hello",
        "name a colour",
        "gpt-4o-mini says: name a colour",
    ]
    parent = client.get(f"/v2/sessions/{sid}").json()
    assert [c["session_id"] for c in parent["children"]] == [v["session_id"] for v in answer["variants"]]
    assert all(c["kind"] == "spawn" and not c["selected"] for c in parent["children"])
    assert parent["transcript"][-1] == {"role": "user", "content": "name a colour"}

    with warehouse.open(server.data, read_only=True) as wh:
        spawned = wh.sql(
            "select attrs from events where session_id = ? and type = 'session.spawned' order by ts", [sid]
        ).column("attrs")
        kids = [json.loads(a)["child_session_id"] for a in spawned.to_pylist()]
        assert kids == [v["session_id"] for v in answer["variants"]]
        orphans = wh.sql(
            "select count(*) from events where list_contains(?, session_id) and parent_session_id is null",
            [kids],
        )
        assert orphans.column(0)[0].as_py() == 0  # every child event names its parent


def test_one_failing_variant_does_not_fail_the_others(client: httpx.Client, models: Models) -> None:
    sid = new_session(client)
    models.failing.add("gpt-4o")
    answer = spawn(client, sid, variants=[{"model": m} for m in MODELS[:3]]).json()
    statuses = {v["model"]: v["status"] for v in answer["variants"]}
    assert statuses == {MODELS[0]: "ok", MODELS[1]: "error", MODELS[2]: "ok"}
    failed = answer["variants"][1]
    assert "gpt-4o is down" in failed["error"] and failed["output"] is None
    runs = client.get(f"/v2/sessions/{failed['session_id']}/metrics").json()
    assert runs["runs"] == 1  # recorded as a failed run of that child


def test_a_variant_past_its_deadline_times_out_alone(client: httpx.Client, server: Server) -> None:
    sid = new_session(client)
    began = time.perf_counter()
    answer = spawn(client, sid, variants=[{"model": MODELS[0]}, {"model": MODELS[4]}], timeout_s=0.3).json()
    assert time.perf_counter() - began < 2.0
    assert [v["status"] for v in answer["variants"]] == ["ok", "timeout"]
    late = answer["variants"][1]
    with warehouse.open(server.data, read_only=True) as wh:
        run = wh.sql("select status, error from runs where session_id = ?", [late["session_id"]])
        assert run.to_pylist() == [{"status": "timeout", "error": "the variant ran past its 0.3 s deadline"}]


def test_a_judge_scores_each_answer(
    client: httpx.Client, models: Models, server: Server, fake: FakeProvider
) -> None:
    sid = new_session(client)
    models.judge_reply = json.dumps(
        {
            "scores": [
                {"candidate": 1, "score": 4, "reason": "too plain"},
                {"candidate": 2, "score": 9, "reason": "vivid\nand a second line that is dropped"},
            ]
        }
    )
    judge = {"model": "openai/gpt-4-turbo", "rubric": "prefer vivid colours"}
    answer = spawn(client, sid, variants=[{"model": m} for m in MODELS[:2]], judge=judge).json()
    assert [(v["score"], v["reason"]) for v in answer["variants"]] == [(4.0, "too plain"), (9.0, "vivid")]
    assert answer["judge"]["error"] is None and answer["judge"]["cost_usd"] > 0
    asked = [r for r in fake.requests if r.model == "gpt-4-turbo"]
    assert "prefer vivid colours" in json.dumps(asked[0].body) and "Candidate 2" in json.dumps(asked[0].body)
    metrics = client.get(f"/v2/sessions/{sid}/metrics").json()
    children = sum(v["cost_usd"] for v in answer["variants"])
    assert metrics["children_cost_usd"] == pytest.approx(children)
    assert metrics["cost_usd"] == pytest.approx(answer["judge"]["cost_usd"])  # the judge is the parent's run
    with warehouse.open(server.data, read_only=True) as wh:
        rows = queries.run(wh, "fanout_comparison", {"parent": sid}).to_pylist()
    assert [(r["model"], r["judge_score"]) for r in rows] == [(MODELS[0], 4.0), (MODELS[1], 9.0)]


def test_a_judge_that_answers_nonsense_leaves_the_variants_unscored(
    client: httpx.Client, models: Models
) -> None:
    sid = new_session(client)
    models.judge_reply = "I liked the second one best."
    judge = {"model": "openai/gpt-4-turbo", "rubric": "any"}
    answer = spawn(client, sid, variants=[{"model": m} for m in MODELS[:2]], judge=judge).json()
    assert [v["status"] for v in answer["variants"]] == ["ok", "ok"]
    assert [v["score"] for v in answer["variants"]] == [None, None]
    assert "no JSON object" in answer["judge"]["error"]


def test_select_keeps_the_winner_and_the_parent_continues_from_it(
    client: httpx.Client, fake: FakeProvider
) -> None:
    sid = new_session(client)
    answer = spawn(client, sid, variants=[{"model": m} for m in MODELS[:3]]).json()
    winner, *losers = (v["session_id"] for v in answer["variants"])
    kept = client.post(f"/v2/sessions/{sid}/select", json={"session_id": winner})
    assert kept.status_code == 200, kept.text
    parent = kept.json()
    assert parent["transcript"][-2:] == [
        {"role": "user", "content": "name a colour"},
        {"role": "assistant", "content": "gpt-4o-mini says: name a colour"},
    ]
    assert [c["selected"] for c in parent["children"]] == [True, False, False]
    assert [client.get(f"/v2/sessions/{c}").json()["status"] for c in losers] == ["closed", "closed"]
    assert client.get(f"/v2/sessions/{winner}").json()["status"] != "closed"

    again = client.post(f"/v2/sessions/{sid}/select", json={"session_id": losers[0]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_selected"

    client.patch(f"/v2/sessions/{sid}", json={"model": MODELS[2]}).raise_for_status()
    nxt = client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "and another"}).json()
    assert nxt["output"] == "gpt-4.1-mini says: and another"
    sent = fake.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["name a colour", "gpt-4o-mini says: name a colour", "and another"]
    trail = client.get(f"/v2/sessions/{sid}/metrics").json()["cost_trail"]
    assert [(t["model"], t["selected"]) for t in trail] == [
        (MODELS[0], True),
        (MODELS[1], False),
        (MODELS[2], False),
    ]


def test_select_refuses_what_is_not_a_child(client: httpx.Client, server: Server) -> None:
    sid, stranger = new_session(client), new_session(client)
    refused = client.post(f"/v2/sessions/{sid}/select", json={"session_id": stranger})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_a_child"
    with server.client(server.other) as other:  # type: ignore[attr-defined]
        theirs = other.post("/v2/sessions", json={"user_id": "x", "model": MODELS[0]}).json()["session_id"]
    refused = client.post(f"/v2/sessions/{sid}/select", json={"session_id": theirs})
    assert refused.status_code == 409


def test_cost_roll_up_equals_the_sum_of_children(client: httpx.Client) -> None:
    sid = new_session(client)
    first = spawn(client, sid, variants=[{"model": m} for m in MODELS[:2]]).json()
    client.post(f"/v2/sessions/{sid}/select", json={"session_id": first["variants"][1]["session_id"]})
    second = spawn(client, sid, prompt="and a shape", variants=[{"model": m} for m in MODELS[2:]]).json()
    metrics = client.get(f"/v2/sessions/{sid}/metrics").json()
    every = first["variants"] + second["variants"]
    assert metrics["children_cost_usd"] == pytest.approx(sum(v["cost_usd"] for v in every))
    assert metrics["total_cost_usd"] == pytest.approx(metrics["cost_usd"] + metrics["children_cost_usd"])
    assert [t["spawn_id"] for t in metrics["cost_trail"]] == [first["spawn_id"]] * 2 + [
        second["spawn_id"]
    ] * 3


def test_fork_from_an_earlier_message(client: httpx.Client, fake: FakeProvider) -> None:
    sid = new_session(client)
    for prompt in ("one", "two", "three"):
        client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": prompt}).raise_for_status()
    source = client.get(f"/v2/sessions/{sid}").json()
    at = source["message_ids"][1]  # the answer to "one"
    forked = client.post(f"/v2/sessions/{sid}/fork", json={"at_event_id": at})
    assert forked.status_code == 201, forked.text
    fork = forked.json()
    assert fork["session_id"] != sid and fork["parent_session_id"] == sid
    assert [m["content"] for m in fork["transcript"]] == ["one", "gpt-4o-mini says: one"]
    assert fork["message_ids"] == source["message_ids"][:2]
    client.post(f"/v2/sessions/{fork['session_id']}/run-llm", json={"prompt": "branch"}).raise_for_status()
    sent = [m["content"] for m in fake.requests[-1].body["messages"]]
    assert sent == ["one", "gpt-4o-mini says: one", "branch"]
    # The source is untouched, and a fork of the fork reads through both.
    assert len(client.get(f"/v2/sessions/{sid}").json()["transcript"]) == 6
    deeper = client.post(f"/v2/sessions/{fork['session_id']}/fork", json={}).json()
    assert [m["content"] for m in deeper["transcript"]] == [
        "one",
        "gpt-4o-mini says: one",
        "branch",
        "gpt-4o-mini says: branch",
    ]
    bad = client.post(f"/v2/sessions/{sid}/fork", json={"at_event_id": "evt_nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_message"


def test_forks_survive_a_restart(server: Server, client: httpx.Client) -> None:
    """After a restart, a fork's transcript is rebuilt from its parent's events (nothing was copied)."""
    sid = new_session(client)
    client.post(f"/v2/sessions/{sid}/run-llm", json={"prompt": "before"}).raise_for_status()
    answer = spawn(client, sid, variants=[{"model": m} for m in MODELS[:2]]).json()
    child = answer["variants"][0]["session_id"]
    expected = client.get(f"/v2/sessions/{child}").json()["transcript"]
    server.stop()
    server.start()
    with server.client(server.token) as fresh:  # type: ignore[attr-defined]
        assert fresh.get(f"/v2/sessions/{child}").json()["transcript"] == expected
        kept = fresh.post(f"/v2/sessions/{sid}/select", json={"session_id": child})
        assert kept.status_code == 200, kept.text
        assert kept.json()["transcript"][-1]["content"] == "gpt-4o-mini says: name a colour"
        with warehouse.open(server.data, read_only=True) as wh:
            copied = wh.sql(
                "select count(*) from messages where session_id = ? and content = 'before'", [child]
            )
            assert copied.column(0)[0].as_py() == 0  # the child's own rows never repeat the parent's


def test_bad_spawns_change_nothing(client: httpx.Client, server: Server) -> None:
    sid = new_session(client, budget_usd=0.000001)
    before = client.get(f"/v2/sessions/{sid}").json()
    cases = [
        ({"variants": [{"model": "nope/nothing"}]}, 422, "unknown_model"),
        ({"variants": []}, 422, "invalid_request"),
        ({"variants": [{"model": MODELS[0]}] * 9}, 422, "too_many_variants"),
        (
            {"variants": [{"model": MODELS[0]}], "judge": {"model": "nope/x", "rubric": "r"}},
            422,
            "unknown_model",
        ),
        ({"variants": [{"model": MODELS[0], "harness": "no-such"}]}, 422, "unknown_harness"),
        ({"variants": [{"model": MODELS[0], "compute": "mainframe"}]}, 422, "unknown_provider"),
        ({"variants": [{"model": m} for m in MODELS]}, 429, "budget_exceeded"),
    ]
    for body, status, code in cases:
        response = spawn(client, sid, **body)
        assert response.status_code == status and response.json()["error"]["code"] == code, (
            body,
            response.text,
        )
    after = client.get(f"/v2/sessions/{sid}").json()
    assert after["transcript"] == before["transcript"] and after["children"] == []
    client.post(f"/v2/sessions/{sid}/close").raise_for_status()
    closed = spawn(client, sid, variants=[{"model": MODELS[0]}])
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "session_closed"
    with server.client(server.other) as other:  # type: ignore[attr-defined]
        assert spawn(other, sid, variants=[{"model": MODELS[0]}]).status_code == 404


def test_spawn_streams_each_variant(client: httpx.Client) -> None:
    sid = new_session(client)
    frames: list[tuple[str, dict]] = []
    body = {"prompt": "stream it", "variants": [{"model": m} for m in MODELS[:2]], "stream": True}
    with client.stream("POST", f"/v2/sessions/{sid}/spawn", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                frames.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in frames]
    assert kinds[-1] == "done" and kinds.count("variant") == 2 and "delta" in kinds
    done = frames[-1][1]
    for variant in done["variants"]:
        text = "".join(
            f["text"] for k, f in frames if k == "delta" and f["session_id"] == variant["session_id"]
        )
        assert text == variant["output"] and variant["ttft_ms"] is not None


def test_children_share_the_parent_transcript_instead_of_copying_it(tmp_path: Path) -> None:
    """In the library, no server: a spawned child holds a reference to its parent, not a copy."""

    async def scenario() -> None:
        async with sessions_at(tmp_path / "data") as service:
            store, settings = service.store, Settings()
            fanout = FanOut(service, Runner(service, settings), settings)
            parent = SessionState("t", "sess_p")
            turns = [event("message", "t", "sess_p", role="user", content=f"m{i}") for i in range(300)]
            await store.write(parent, [event("session.created", "t", "sess_p", model="offline/echo"), *turns])
            body = Spawn(prompt="go", variants=[Variant(model="offline/echo")] * 3)
            plan = await fanout.start("t", "sess_p", body)
            async for kind, answer in fanout.execute(plan):
                if kind == "done":
                    assert [v["status"] for v in answer["variants"]] == ["ok"] * 3
            for child in plan.children:
                assert child.state.base is parent and child.state.base_len == 300
                assert len(child.state.own) == 2  # the prompt and its answer, nothing of the parent's
                assert child.state.transcript[:300] == parent.transcript[:300]

    asyncio.run(scenario())

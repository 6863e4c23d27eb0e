"""Sessions written by the real `claude` and `codex` CLIs (tests/clis) through a real `cerver serve`.

The CLIs run in the session's local workspace against the fake provider on loopback (Anthropic Messages and
OpenAI Responses, streaming); every proxy variable points at the fake, so anything a CLI tries to send
elsewhere is refused and listed in `fake.foreign_requests`. The only stand-in: for the malformed-line case,
CERVER_CLAUDE_BIN is a two-line shell wrapper that prints a non-JSON line, then runs the real `claude`
(no real CLI prints one on purpose).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import warehouse
from tests.agent_clis import cli_path
from tests.fake_provider import FakeProvider, Reply, ToolCall
from tests.server import Server, mint_token

CLAUDE, GPT = "anthropic/claude-sonnet-4-6", "openai/gpt-5.5"
HANG_TIMEOUT_S = 5.0  # the run timeout of the `hanging` server
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-harness-test", "OPENAI_API_KEY": "sk-openai-harness-test"}
SHELL = "printf 'hi\\n' > hello.txt && cat hello.txt"


def server_env(fake: FakeProvider, **extra: str) -> dict[str, str]:
    """Keys and base URLs as litellm reads them (the CLIs get theirs from the same), proxies on the fake."""
    return {
        **KEYS,
        "ANTHROPIC_API_BASE": fake.base_url,
        "OPENAI_BASE_URL": fake.base_url + "/v1",
        "HTTP_PROXY": fake.base_url,
        "HTTPS_PROXY": fake.base_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "CERVER_MODEL_RETRIES": "0",
        **extra,
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        yield f


def start_server(root: Path, env: dict[str, str]) -> Server:
    data = root / "cerver-data"
    data.mkdir()
    server = Server(data, env)
    server.token = mint_token(data, "acme")  # type: ignore[attr-defined]
    return server.start()


@pytest.fixture(scope="module")
def server(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Both CLIs installed (found through CERVER_CLAUDE_BIN / CERVER_CODEX_BIN).

    CERVER_CLAUDE_BIN is a wrapper that runs the real claude, printing a malformed line first while the
    `malformed` switch file exists; moving the wrapper away uninstalls claude.
    """
    root = tmp_path_factory.mktemp("harness")
    wrapper, switch = root / "bin" / "claude", root / "malformed"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\n[ -e {switch} ] && echo "this is not json" && echo "wrapper: said something odd" >&2\n'
        f'exec {cli_path("claude")} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = server_env(fake, CERVER_CLAUDE_BIN=str(wrapper), CERVER_CODEX_BIN=str(cli_path("codex")))
    s = start_server(root, env)
    s.switch, s.wrapper = switch, wrapper  # type: ignore[attr-defined]
    yield s
    s.stop()


@pytest.fixture
def client(server: Server, fake: FakeProvider) -> Iterator[httpx.Client]:
    fake.reset()
    with server.client(server.token) as c:  # type: ignore[attr-defined]
        c.timeout = 90
        yield c
    assert not fake.foreign_requests, fake.foreign_requests


def create(client: httpx.Client, harness: str, model: str) -> str:
    r = client.post("/v2/sessions", json={"user_id": "u1", "harness": harness, "model": model})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def run(client: httpx.Client, session: str, prompt: str, status: int = 200) -> dict[str, Any]:
    r = client.post(f"/v2/sessions/{session}/run-llm", json={"prompt": prompt})
    assert r.status_code == status, r.text
    return r.json()


def stream(client: httpx.Client, session: str, prompt: str) -> tuple[str, dict[str, Any]]:
    """The streamed text and the `done` frame's body."""
    said, done = [], None
    with client.stream(
        "POST", f"/v2/sessions/{session}/run-llm", json={"prompt": prompt, "stream": True}
    ) as r:
        assert r.status_code == 200
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                assert kind in ("delta", "done"), data
                if kind == "delta":
                    said.append(data["text"])
                else:
                    done = data
    assert done is not None
    return "".join(said), done


def events(server: Server, session: str) -> list[dict[str, Any]]:
    with warehouse.open(server.data, read_only=True) as reader:
        rows = reader.sql("SELECT * FROM events WHERE session_id = ? ORDER BY ts, event_id", [session])
        return rows.to_pylist()


def of(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["type"] == kind]


def attrs(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["attrs"] or "{}")


def workspace(server: Server, session: str) -> Path:
    return server.data / "workspaces" / "acme" / session


def texts(request_body: dict[str, Any]) -> str:
    """Everything a provider request carried, as one string to search."""
    return json.dumps(request_body)


@pytest.mark.parametrize(
    ("harness", "model", "call", "provider"),
    [
        ("claude-code", CLAUDE, ToolCall("Bash", {"command": SHELL, "description": "write"}), "anthropic"),
        ("codex", GPT, ToolCall("exec_command", {"cmd": SHELL}), "openai-responses"),
    ],
)
def test_two_turns_with_a_shell_call_then_a_resume(
    client: httpx.Client,
    server: Server,
    fake: FakeProvider,
    harness: str,
    model: str,
    call: ToolCall,
    provider: str,
) -> None:
    """Turn 1 runs a shell command in the workspace (tool.call, tool.result); turn 2 (streamed) resumes."""
    session = create(client, harness, model)
    fake.script(
        [
            Reply("I'll write it.", (call,), usage=(1101, 21), cache=(501, 31)),
            Reply("hello.txt says hi.", usage=(1202, 22), cache=(602, 0)),
            Reply("You're welcome!", usage=(1303, 23), cache=(703, 0)),
        ]
    )
    first = run(client, session, "Create hello.txt saying hi, then show it.")
    assert (workspace(server, session) / "hello.txt").read_text() == "hi\n"
    assert first["output"] == "hello.txt says hi."
    assert first["model"] == model
    cache = (501 + 31 + 602) if provider == "anthropic" else 0  # the Messages API counts input without cache
    assert first["usage"] == {"input_tokens": 1101 + 1202 + cache, "output_tokens": 43}
    assert first["cost_usd"] > 0 and first["ttft_ms"] > 0 and first["latency_ms"] >= first["ttft_ms"]

    said, done = stream(client, session, "Thanks!")
    assert said == done["output"] == "You're welcome!"
    assert set(done) == set(first)
    assert done["usage"]["output_tokens"] == 23

    rows = events(server, session)
    calls, results = of(rows, "tool.call"), of(rows, "tool.result")
    assert len(calls) == len(results) == 1
    assert calls[0]["run_id"] == results[0]["run_id"] == first["run_id"]
    assert attrs(calls[0])["call_id"] == attrs(results[0])["call_id"]
    assert "hello.txt" in calls[0]["content"] and results[0]["content"].strip() == "hi"
    assert results[0]["status"] == "ok"
    completed = of(rows, "run.completed")
    assert [r["harness"] for r in completed] == [harness, harness]
    assert [r["run_id"] for r in completed] == [first["run_id"], done["run_id"]]
    assert completed[0]["cost_usd"] == pytest.approx(first["cost_usd"])
    assert completed[0]["cache_read_tokens"] == 501 + 602
    assert all(r["compute"] == "local" for r in completed)
    refs = [attrs(r)["cli"]["session_id"] for r in completed]
    assert refs[0] and refs[0] == refs[1]  # the second turn resumed the first's CLI session
    answers = [m for m in of(rows, "message") if m["role"] == "assistant"]
    assert [m["content"] for m in answers] == ["hello.txt says hi.", "You're welcome!"]

    asked = fake.requests_for(provider)
    assert "Create hello.txt" in texts(asked[-1].body)  # resumed: the CLI sent its own history
    assert "conversation_so_far" not in texts(asked[-1].body)
    key = KEYS["ANTHROPIC_API_KEY"] if provider == "anthropic" else KEYS["OPENAI_API_KEY"]
    header = asked[-1].headers.get("x-api-key") or asked[-1].headers.get("authorization", "")
    assert header.endswith(key)  # the server's key reached the CLI, through its environment
    assert client.get("/healthz").json()["runs_in_flight"] == 0  # both CLI turns have ended


def test_each_session_has_its_own_cli_home_outside_the_workspace(
    client: httpx.Client, server: Server, fake: FakeProvider
) -> None:
    """Nothing of the CLI (settings, keys, session files) lands in the workspace or in another session."""
    one, two = create(client, "codex", GPT), create(client, "codex", GPT)
    first, second = run(client, one, "hello"), run(client, two, "hello")
    assert first["output"] == second["output"] == "echo: hello"
    homes = server.data / "harness-homes" / "acme"
    for session in (one, two):
        home = homes / session / "codex"
        config = (home / ".codex" / "config.toml").read_text()
        assert 'env_key = "OPENAI_API_KEY"' in config and fake.base_url in config
        assert KEYS["OPENAI_API_KEY"] not in config
        assert list(home.glob(".codex/sessions/*/*/*/rollout-*.jsonl"))
        assert not list(workspace(server, session).rglob("*"))  # the turn wrote nothing there
    refs = {attrs(of(events(server, s), "run.completed")[0])["cli"]["session_id"] for s in (one, two)}
    assert len(refs) == 2
    client.post(f"/v2/sessions/{one}/close").raise_for_status()  # a closed session's CLI home goes
    deadline = time.monotonic() + 10
    while (homes / one).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (homes / one).exists() and (homes / two / "codex").is_dir()


def test_switching_harness_carries_the_transcript(
    client: httpx.Client, server: Server, fake: FakeProvider
) -> None:
    """litellm → claude-code → codex in one session: each newcomer is given what it has not seen."""
    session = create(client, "litellm", CLAUDE)
    fake.script(
        ["The capital is Paris.", "It is about 2.1 million people.", "Roughly 105 square kilometres."]
    )
    assert run(client, session, "What is the capital of France?")["output"] == "The capital is Paris."

    r = client.patch(f"/v2/sessions/{session}", json={"harness": "claude-code"})
    assert r.status_code == 200 and r.json()["harness"] == "claude-code"
    assert run(client, session, "How many live there?")["output"] == "It is about 2.1 million people."
    sent = texts(fake.requests_for("anthropic")[-1].body)
    assert "conversation_so_far" in sent and "What is the capital of France?" in sent
    assert "The capital is Paris." in sent

    r = client.patch(f"/v2/sessions/{session}", json={"harness": "codex", "model": GPT})
    assert r.status_code == 200
    assert run(client, session, "And its area?")["output"] == "Roughly 105 square kilometres."
    sent = texts(fake.requests_for("openai-responses")[-1].body)
    for earlier in (
        "What is the capital of France?",
        "The capital is Paris.",
        "How many live there?",
        "2.1 million",
    ):
        assert earlier in sent

    view = client.get(f"/v2/sessions/{session}").json()
    assert view["session_id"] == session and view["harness"] == "codex"
    assert [m["role"] for m in view["transcript"]] == ["user", "assistant"] * 3
    rows = events(server, session)
    assert [attrs(u)["changed"] for u in of(rows, "session.updated")] == [["harness"], ["harness", "model"]]
    assert [r["harness"] for r in of(rows, "run.completed")] == ["litellm", "claude-code", "codex"]


def test_a_spawn_runs_a_model_and_both_clis_side_by_side(
    client: httpx.Client, server: Server, fake: FakeProvider
) -> None:
    """One prompt, three intelligence layers: litellm, claude-code and codex children at once."""
    parent = create(client, "litellm", CLAUDE)
    variants = [
        {"model": CLAUDE, "label": "model"},
        {"model": CLAUDE, "harness": "claude-code", "label": "claude"},
        {"model": GPT, "harness": "codex", "label": "codex"},
    ]
    r = client.post(f"/v2/sessions/{parent}/spawn", json={"prompt": "name a colour", "variants": variants})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [(v["label"], v["status"]) for v in answer["variants"]] == [
        ("model", "ok"),
        ("claude", "ok"),
        ("codex", "ok"),
    ]
    assert all("name a colour" in v["output"] for v in answer["variants"]), answer
    for variant, harness in zip(answer["variants"], ("litellm", "claude-code", "codex"), strict=True):
        rows = events(server, variant["session_id"])
        assert [e["harness"] for e in of(rows, "run.completed")] == [harness]
        assert all(e["parent_session_id"] == parent for e in rows)
    trail = client.get(f"/v2/sessions/{parent}/metrics").json()["cost_trail"]
    assert [t["harness"] for t in trail] == ["litellm", "claude-code", "codex"]


def test_compute_does_not_move_under_a_running_cli(
    client: httpx.Client, server: Server, fake: FakeProvider
) -> None:
    """While the CLI runs in the workspace, moving the session's compute is refused (409); after, not."""
    session = create(client, "codex", GPT)
    fake.delay_next(3, provider="openai-responses")
    done: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: done.append(run(client, session, "slowly")))
    worker.start()
    deadline = time.monotonic() + 60
    while not fake.requests_for("openai-responses") and time.monotonic() < deadline:
        time.sleep(0.05)
    moved = client.post(f"/v2/sessions/{session}/compute", json={"provider": "local"})
    worker.join(90)
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "exec_in_flight"
    assert done and done[0]["output"] == "echo: slowly"
    assert client.post(f"/v2/sessions/{session}/compute", json={"provider": "local"}).status_code == 200


def test_a_harness_that_cannot_drive_the_model_is_refused(client: httpx.Client, server: Server) -> None:
    session = create(client, "litellm", CLAUDE)
    r = client.patch(f"/v2/sessions/{session}", json={"harness": "codex"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_model"
    assert client.get(f"/v2/sessions/{session}").json()["harness"] == "litellm"
    r = client.post("/v2/sessions", json={"user_id": "u1", "harness": "gemini-cli"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_harness"
    claude = create(client, "claude-code", CLAUDE)
    r = client.post(f"/v2/sessions/{claude}/run-llm", json={"prompt": "x" * 130_000})
    assert r.status_code == 422 and r.json()["error"]["code"] == "prompt_too_long"
    assert of(events(server, claude), "message") == []  # refused before anything was written


# --- failures -----------------------------------------------------------------------------------------------


def assert_transcript_kept(client: httpx.Client, session: str, prompts: list[str], answers: int) -> None:
    transcript = client.get(f"/v2/sessions/{session}").json()["transcript"]
    assert [m["content"] for m in transcript if m["role"] == "user"] == prompts
    assert len([m for m in transcript if m["role"] == "assistant"]) == answers


def test_a_missing_cli_is_a_422_naming_the_package(client: httpx.Client, server: Server) -> None:
    session = create(client, "litellm", CLAUDE)
    wrapper: Path = server.wrapper  # type: ignore[attr-defined]
    wrapper.rename(wrapper.with_name("moved"))
    try:
        r = client.post("/v2/sessions", json={"user_id": "u1", "harness": "claude-code", "model": CLAUDE})
        refused = client.patch(f"/v2/sessions/{session}", json={"harness": "claude-code"})
    finally:
        wrapper.with_name("moved").rename(wrapper)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "harness_unavailable" and "npm i -g @anthropic-ai/claude-code" in error["message"]
    assert refused.status_code == 422 and "@anthropic-ai/claude-code" in refused.json()["error"]["message"]
    assert of(events(server, session), "session.updated") == []


def test_a_cli_that_exits_non_zero_fails_the_run(
    client: httpx.Client, server: Server, fake: FakeProvider
) -> None:
    """The provider refuses: claude prints an error result, exits 1 → run.failed, 502, transcript intact."""
    session = create(client, "claude-code", CLAUDE)
    fake.fail_next(500, provider="anthropic", message="fake provider: no, not this time")
    body = run(client, session, "first", status=502)
    assert body["error"]["code"] == "harness_failed" and "not this time" in body["error"]["message"]
    failed = of(events(server, session), "run.failed")
    assert len(failed) == 1 and failed[0]["status"] == "error" and failed[0]["harness"] == "claude-code"
    assert "not this time" in failed[0]["error"]
    assert_transcript_kept(client, session, ["first"], 0)
    assert "second" in run(client, session, "second")["output"]  # the session goes on (the fake echoes)
    assert_transcript_kept(client, session, ["first", "second"], 1)
    assert client.get("/healthz").json()["runs_in_flight"] == 0  # a failed CLI run has ended too


def test_a_malformed_line_fails_the_run_with_the_stderr_tail(client: httpx.Client, server: Server) -> None:
    session = create(client, "claude-code", CLAUDE)
    switch: Path = server.switch  # type: ignore[attr-defined]
    switch.touch()
    try:
        body = run(client, session, "hello", status=502)
    finally:
        switch.unlink()
    assert "malformed line" in body["error"]["message"]
    failed = of(events(server, session), "run.failed")[0]
    assert "this is not json" in failed["error"] and "wrapper: said something odd" in failed["error"]
    assert "wrapper: said something odd" in attrs(failed)["stderr"]
    assert_transcript_kept(client, session, ["hello"], 0)


@pytest.fixture(scope="module")
def hanging(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a short run timeout (so a hung CLI does not hold the suite up for long)."""
    env = server_env(
        fake, CERVER_CLAUDE_BIN=str(cli_path("claude")), CERVER_HARNESS_TIMEOUT_S=str(HANG_TIMEOUT_S)
    )
    s = start_server(tmp_path_factory.mktemp("hanging"), env)
    yield s
    s.stop()


def test_a_hung_cli_is_killed_at_the_run_timeout(hanging: Server, fake: FakeProvider) -> None:
    fake.reset()
    fake.delay_next(60, provider="anthropic")  # the CLI waits on the model, and waits
    with hanging.client(hanging.token) as client:  # type: ignore[attr-defined]
        session = create(client, "claude-code", CLAUDE)
        began = time.monotonic()
        body = run(client, session, "are you there?", status=504)
        took = time.monotonic() - began
        assert HANG_TIMEOUT_S <= took < HANG_TIMEOUT_S + 10
        assert body["error"]["code"] == "harness_timeout"
        failed = of(events(hanging, session), "run.failed")[0]
        assert failed["status"] == "timeout" and "killed" in failed["error"]
        home = hanging.data / "harness-homes" / "acme" / session / "claude-code"
        assert not _processes_under(home)  # the CLI (and what it started) is gone
        assert_transcript_kept(client, session, ["are you there?"], 0)


def _processes_under(home: Path) -> list[int]:
    """Processes whose environment has HOME set to `home` (how a harness's CLI is told apart)."""
    found = []
    needle = f"HOME={home}".encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found if os.name == "posix" else []

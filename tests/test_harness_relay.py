"""Agent CLI harnesses on relay compute: the real `claude` and `codex` CLIs run by a real `cerver relay`.

One `cerver serve` and two `cerver relay` processes on loopback serve the module; the CLIs (tests/clis)
talk to the fake provider on loopback, with every proxy variable of the relay machine pointing at the
fake, so anything they try to send elsewhere shows in `fake.foreign_requests`. Relay `box` has both
CLIs: `claude` through `--claude-bin`, a two-line wrapper that counts its runs in a file (so a test can
tell the CLI ran on the relay's side, not the server's), and `codex` through CERVER_CODEX_BIN in its
environment. Relay `bare` has none. The e2b case uses tests/e2b_double.py, the in-process double of
the e2b SDK (E2B needs an account).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_clis import cli_path
from tests.compute_support import SECRETS, RelayProcess, wait_until
from tests.fake_provider import FakeProvider, Reply, ToolCall
from tests.server import Server, mint_token
from tests.test_harness_cli import CLAUDE, GPT, KEYS, SHELL, attrs, create, events, of, run, server_env, texts

TENANT = "acme"


class Relay(RelayProcess):
    """A `cerver relay` started with its own environment (the relay machine's), not the test's."""

    def __init__(self, server: Server, token: str, name: str, tmp: Path, env: dict[str, str]):
        super().__init__(server.url, token, name, tmp / name, tmp / f"relay-{name}.log")
        self.env = env
        self.root, self.homes = tmp / name, tmp / f"{name}-homes"

    def start(self) -> Relay:
        """Start it with `self.env` only."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        return self


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        yield f


@pytest.fixture(scope="module")
def world(fake: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The server (its own CLIs, for local compute), relay `box` (both CLIs) and relay `bare` (none)."""
    tmp = tmp_path_factory.mktemp("harness-relay")
    data = tmp / "cerver-data"
    data.mkdir()
    token = mint_token(data, TENANT)
    env = server_env(fake, CERVER_CLAUDE_BIN=str(cli_path("claude")), CERVER_CODEX_BIN=str(cli_path("codex")))
    server = Server(data, env).start()
    counter, wrapper = tmp / "relay-claude-runs", tmp / "relay-bin" / "claude"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho run >> {counter}\nexec {cli_path("claude")} "$@"\n')
    wrapper.chmod(0o755)
    machine = {  # the relay machine's own environment: its proxies, and secrets that must not reach a command
        "PATH": f"{Path(_node()).parent}:/usr/bin:/bin",
        "HTTP_PROXY": fake.base_url,
        "HTTPS_PROXY": fake.base_url,
        "NO_PROXY": "127.0.0.1,localhost",
        **SECRETS,
    }
    box = Relay(server, token, "box", tmp, {**machine, "CERVER_CODEX_BIN": str(cli_path("codex"))})
    box.args += ["--claude-bin", str(wrapper)]
    bare = Relay(server, token, "bare", tmp, machine)
    relays = [box.start(), bare.start()]
    try:
        with server.client(token) as client:
            client.timeout = 90
            wait_until(lambda: {"box", "bare"} <= _connected(client), what="both relays")
            yield {
                "server": server,
                "client": client,
                "token": token,
                "box": box,
                "bare": bare,
                "runs": counter,
            }
    finally:
        for relay in relays:
            relay.stop()
        server.stop()


@pytest.fixture
def client(world: dict[str, Any], fake: FakeProvider) -> Iterator[httpx.Client]:
    fake.reset()
    yield world["client"]
    assert not fake.foreign_requests, fake.foreign_requests


def _node() -> str:
    from shutil import which

    node = which("node")
    assert node, "node is needed to run the CLIs"
    return node


def _connected(client: httpx.Client) -> set[str]:
    try:
        return {r["name"] for r in client.get("/v2/relays").json()["relays"]}
    except httpx.HTTPError:
        return set()


def attach(client: httpx.Client, session: str, relay: str) -> dict[str, Any]:
    r = client.post(f"/v2/sessions/{session}/compute", json={"provider": "relay", "options": {"name": relay}})
    assert r.status_code == 200, r.text
    return r.json()


def timed_stream(client: httpx.Client, session: str, prompt: str) -> tuple[list[tuple[float, str]], dict]:
    """The streamed deltas with the time each arrived, and the `done` frame's body (with its time)."""
    frames: list[tuple[float, str | None, dict[str, Any]]] = []  # (arrival, event, data)
    body = {"prompt": prompt, "stream": True}
    with client.stream("POST", f"/v2/sessions/{session}/run-llm", json=body) as r:
        assert r.status_code == 200
        kind = None
        for line in r.iter_lines():
            kind = line[7:] if line.startswith("event: ") else kind
            if line.startswith("data: "):
                frames.append((time.monotonic(), kind, json.loads(line[6:])))
    assert [k for _, k, _ in frames[:-1]] == ["delta"] * (len(frames) - 1) and frames[-1][1] == "done"
    at, _, done = frames[-1]
    return [(t, data["text"]) for t, _, data in frames[:-1]], {**done, "at": at}


def assert_no_key_on_disk(*folders: Path) -> None:
    """No file under these folders holds a provider key, whole or its last 12 characters."""
    needles = [k.encode() for key in KEYS.values() for k in (key, key[-12:])]
    files = [f for folder in folders for f in folder.rglob("*") if f.is_file() and not f.is_symlink()]
    assert files, "nothing to search"
    for file in files:
        data = file.read_bytes()
        assert not any(n in data for n in needles), f"a key is written in {file}"


def test_two_claude_turns_on_a_relay_resume_and_run_bash_there(
    client: httpx.Client, world: dict[str, Any], fake: FakeProvider
) -> None:
    """Turn 1 runs Bash in the relay's workspace; turn 2 (streamed, line by line over the relay) resumes."""
    box, server = world["box"], world["server"]
    session = create(client, "claude-code", CLAUDE)
    assert attach(client, session, "box")["compute"] == "relay"
    call = ToolCall("Bash", {"command": SHELL, "description": "write"})
    words = "one two three four five six seven eight nine ten"
    fake.script([Reply("I'll write it.", (call,)), "hello.txt says hi.", words])

    first = run(client, session, "Create hello.txt saying hi, then show it.")
    assert first["output"] == "hello.txt says hi."
    assert (box.root / session / "hello.txt").read_text() == "hi\n"  # the Bash call ran on the relay's side
    assert not (server.data / "workspaces" / TENANT / session).exists()

    fake.chunk_delay = (
        0.1  # the reply's words arrive 0.1 s apart: a stream that only flushed at the end shows
    )
    try:
        deltas, done = timed_stream(client, session, "Count to ten.")
    finally:
        fake.chunk_delay = 0.005
    assert "".join(text for _, text in deltas) == done["output"] == words
    assert len(deltas) >= 5 and done["at"] - deltas[0][0] > 0.5  # the first words came well before the end

    rows = events(server, session)
    calls, results = of(rows, "tool.call"), of(rows, "tool.result")
    assert len(calls) == len(results) == 1 and results[0]["content"].strip() == "hi"
    completed = of(rows, "run.completed")
    assert [r["compute"] for r in completed] == ["relay", "relay"]
    refs = [attrs(r)["cli"]["session_id"] for r in completed]
    assert refs[0] and refs[0] == refs[1]  # the second turn resumed the first's Claude Code session
    assert "Create hello.txt" in texts(fake.requests_for("anthropic")[-1].body)
    assert "conversation_so_far" not in texts(fake.requests_for("anthropic")[-1].body)

    home = box.homes / TENANT / session / "claude-code"
    assert list(home.glob(f".claude/projects/*/{refs[0]}.jsonl"))  # its session file, on the relay's machine
    assert not (server.data / "harness-homes" / TENANT / session).exists()
    assert world["runs"].read_text().count("run") >= 2  # the relay's claude (--claude-bin), not the server's
    header = fake.requests_for("anthropic")[-1].headers.get("x-api-key", "")
    assert header == KEYS["ANTHROPIC_API_KEY"]  # the server's key, through the exec's environment
    assert_no_key_on_disk(box.root, box.homes)


def test_a_codex_turn_on_a_relay(client: httpx.Client, world: dict[str, Any], fake: FakeProvider) -> None:
    """Codex found through the relay's CERVER_CODEX_BIN; its config.toml in the relay's home, keyless."""
    box = world["box"]
    session = create(client, "codex", GPT)
    attach(client, session, "box")
    answer = run(client, session, "hello")
    assert answer["output"] == "echo: hello"
    home = box.homes / TENANT / session / "codex"
    config = (home / ".codex" / "config.toml").read_text()
    assert 'env_key = "OPENAI_API_KEY"' in config and fake.base_url in config
    assert list(home.glob(".codex/sessions/*/*/*/rollout-*.jsonl"))
    assert not list((box.root / session).rglob("*"))  # nothing of the CLI's in the workspace
    completed = of(events(world["server"], session), "run.completed")
    assert completed[0]["compute"] == "relay" and completed[0]["harness"] == "codex"
    auth = fake.requests_for("openai-responses")[-1].headers.get("authorization", "")
    assert auth == f"Bearer {KEYS['OPENAI_API_KEY']}"  # the server's key, not the relay machine's
    assert_no_key_on_disk(box.root, box.homes)


def test_a_session_moves_from_local_to_a_relay_between_claude_turns(
    client: httpx.Client, world: dict[str, Any], fake: FakeProvider
) -> None:
    """The CLI home stays behind on the server: on the relay the CLI starts afresh, given the transcript."""
    server, box = world["server"], world["box"]
    session = create(client, "claude-code", CLAUDE)
    fake.script(["The capital is Paris.", "About 2.1 million people."])
    assert run(client, session, "What is the capital of France?")["output"] == "The capital is Paris."
    moved = attach(client, session, "box")
    assert moved["from"] == "local"

    second = run(client, session, "How many live there?")
    assert second["output"] == "About 2.1 million people."
    sent = texts(fake.requests_for("anthropic")[-1].body)
    assert "conversation_so_far" in sent and "The capital is Paris." in sent  # taken over with the transcript
    completed = of(events(server, session), "run.completed")
    assert [r["compute"] for r in completed] == ["local", "relay"]
    refs = [attrs(r)["cli"]["session_id"] for r in completed]
    assert refs[0] != refs[1]
    assert list((box.homes / TENANT / session / "claude-code").glob(f".claude/projects/*/{refs[1]}.jsonl"))
    view = client.get(f"/v2/sessions/{session}").json()
    assert [m["role"] for m in view["transcript"]] == ["user", "assistant"] * 2


def test_a_relay_without_the_cli_is_a_422_naming_the_package(
    client: httpx.Client, world: dict[str, Any], fake: FakeProvider
) -> None:
    """Relay `bare` has no claude: the turn is refused before a CLI starts, saying what to install where."""
    relays = {r["name"]: r for r in client.get("/v2/relays").json()["relays"]}
    assert relays["bare"]["clis"] == [] and relays["box"]["clis"] == ["claude", "codex"]
    session = create(client, "claude-code", CLAUDE)
    attach(client, session, "bare")
    r = client.post(f"/v2/sessions/{session}/run-llm", json={"prompt": "hello"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "harness_unavailable"
    assert "relay 'bare'" in error["message"] and "npm i -g @anthropic-ai/claude-code" in error["message"]
    assert "--claude-bin" in error["message"]
    failed = of(events(world["server"], session), "run.failed")
    assert len(failed) == 1 and "relay 'bare'" in failed[0]["error"] and failed[0]["compute"] == "relay"
    assert not (world["bare"].homes / TENANT / session).exists()
    # the session goes on once it moves to compute that has the CLI
    attach(client, session, "box")
    fake.script(["Here I am."])
    assert run(client, session, "again")["output"] == "Here I am."


def test_e2b_compute_cannot_run_a_cli_turn(tmp_path: Path) -> None:
    """On e2b the answer says why (the CLI would have to be in the sandbox template), not a stray error."""
    from api.adapters.compute import ComputeConfig, compute_for
    from api.adapters.harness import HarnessUnavailable, harness_for
    from api.adapters.harness.place import place_cli
    from tests.e2b_double import DoubleSandbox

    compute = compute_for("e2b", ComputeConfig(tmp_path, extra={"e2b_sandbox": DoubleSandbox}))

    async def place() -> None:
        workspace = await compute.open(TENANT, "s1", {})
        try:
            await place_cli(
                harness_for("claude-code"),  # type: ignore[arg-type]
                workspace,
                provider="e2b",
                local_home=tmp_path / "home",
                model=CLAUDE,
            )
        finally:
            await workspace.stop()

    with pytest.raises(HarnessUnavailable, match="not on e2b") as caught:
        asyncio.run(place())
    assert "@anthropic-ai/claude-code" in str(caught.value) and "sandbox" in str(caught.value)
    assert not (tmp_path / "home").exists()


def test_a_cli_home_keeps_its_files_inside(tmp_path: Path) -> None:
    """What a relay is asked to write stays in the session's home; ids unfit as folder names are refused."""
    from api.adapters.harness.machine import home_folder, prepare_home

    home = home_folder(tmp_path, TENANT, "s1", "codex")
    assert prepare_home(home, {".codex/config.toml": "x = 1"}, ".codex/*.toml")
    assert not prepare_home(home, {}, ".codex/sessions/*.jsonl")
    for bad in ("../escape", "/etc/passwd"):
        with pytest.raises(ValueError, match="inside the CLI home"):
            prepare_home(home, {bad: "x"})
    for session in ("..", "a/b", ""):
        with pytest.raises(ValueError, match="cannot keep a CLI home"):
            home_folder(tmp_path, TENANT, session, "codex")


def test_a_relay_that_drops_mid_turn_fails_the_run_cleanly(
    client: httpx.Client, world: dict[str, Any], fake: FakeProvider
) -> None:
    """The relay stops while its CLI waits on the model: 502 at once, `run.failed`, the transcript kept."""
    box = world["box"]
    flaky = Relay(world["server"], world["token"], "flaky", box.root.parent, box.env)
    flaky.args += ["--claude-bin", str(cli_path("claude"))]
    flaky.start()
    try:
        wait_until(lambda: "flaky" in _connected(client), what="relay flaky")
        session = create(client, "claude-code", CLAUDE)
        attach(client, session, "flaky")
        fake.delay_next(30, provider="anthropic")
        out: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: out.update(
                r=client.post(f"/v2/sessions/{session}/run-llm", json={"prompt": "are you there?"})
            )
        )
        worker.start()
        wait_until(lambda: fake.requests_for("anthropic"), timeout=60, what="the CLI to call the model")
        flaky.stop()  # SIGTERM: the relay kills its commands and hangs up
        stopped = time.monotonic()
        worker.join(30)
    finally:
        flaky.stop()
    response = out["r"]
    assert response.status_code == 502, response.text
    assert time.monotonic() - stopped < 10
    failed = of(events(world["server"], session), "run.failed")
    assert len(failed) == 1 and failed[0]["status"] == "error" and "flaky" in failed[0]["error"]
    assert [m["content"] for m in client.get(f"/v2/sessions/{session}").json()["transcript"]] == [
        "are you there?"
    ]

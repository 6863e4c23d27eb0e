"""One contract over every registered harness: its declared capabilities, its checks, and a real turn.

The CLI harnesses run their real CLI (tests/clis) in a local workspace against the fake provider on
loopback; `litellm` runs the offline echo model. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.adapters.compute.local import LocalWorkspace
from api.adapters.harness import (
    NAMES,
    Capabilities,
    HarnessUnavailable,
    TurnRequest,
    TurnResult,
    UnknownHarness,
    harness_for,
)
from api.adapters.harness.base import REGISTRY
from api.adapters.harness.cli import CliHarness
from api.adapters.models import CallOptions, ModelResult, UnknownModel
from api.errors import ApiError
from api.sessions.service import check_harness
from tests.agent_clis import cli_path
from tests.fake_provider import FakeProvider

MODELS = {"litellm": "offline/echo", "claude-code": "anthropic/claude-sonnet-4-6", "codex": "openai/gpt-5.5"}
BINARIES = {"CERVER_CLAUDE_BIN": "claude", "CERVER_CODEX_BIN": "codex"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as f:
        yield f


@pytest.fixture
def provider_env(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    """The server environment a harness reads: pinned CLIs, keys and URLs on the fake, proxies trapped."""
    for variable, binary in BINARIES.items():
        monkeypatch.setenv(variable, str(cli_path(binary)))
    for name, value in {
        "ANTHROPIC_API_KEY": "sk-ant-contract",
        "ANTHROPIC_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-contract",
        "OPENAI_BASE_URL": fake.base_url + "/v1",
        "HTTPS_PROXY": fake.base_url,
        "HTTP_PROXY": fake.base_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    fake.reset()
    return fake


def test_every_name_is_served_by_its_own_harness() -> None:
    assert set(NAMES) == set(REGISTRY) == set(MODELS)
    for name in NAMES:
        harness = harness_for(name)
        assert harness.name == name and harness_for(name) is harness
        assert isinstance(harness.capabilities, Capabilities)
    with pytest.raises(UnknownHarness, match="available: litellm, claude-code, codex"):
        harness_for("gemini-cli")


@pytest.mark.parametrize("name", NAMES)
def test_capabilities_say_what_the_runner_relies_on(name: str) -> None:
    """A harness in a workspace is a CLI that resumes, is never retried and names its package."""
    caps = harness_for(name).capabilities
    assert caps.in_workspace == isinstance(harness_for(name), CliHarness)
    if caps.in_workspace:
        assert caps.resumes and not caps.retries
        assert caps.package and caps.binary and caps.binary_env in BINARIES
    else:
        assert caps.retries and caps.package is None


@pytest.mark.parametrize("name", NAMES)
def test_check_refuses_what_it_cannot_run(
    name: str, provider_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    harness = harness_for(name)
    harness.check(MODELS[name])
    with pytest.raises(UnknownModel):
        harness.check("offline/nope" if name == "litellm" else "gemini/gemini-2.5-flash")
    caps = harness.capabilities
    if caps.binary_env is None:
        return
    monkeypatch.setenv(caps.binary_env, str(tmp_path / "missing"))
    with pytest.raises(HarnessUnavailable, match=f"npm i -g {caps.package}"):
        harness.check(MODELS[name])
    monkeypatch.delenv(caps.binary_env)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessUnavailable, match="not on PATH"):
        harness.check(MODELS[name])
    # A turn on other compute (a relay) needs the CLI there, not here: only the model is checked.
    harness.check(MODELS[name], here=False)
    with pytest.raises(UnknownModel):
        harness.check("gemini/gemini-2.5-flash", here=False)
    with pytest.raises(ApiError) as refused:
        check_harness(name, MODELS[name], "local")
    assert refused.value.code == "harness_unavailable"
    check_harness(name, MODELS[name], "relay")


@pytest.mark.parametrize("name", NAMES)
def test_a_turn_streams_its_answer_and_ends_with_one_result(
    name: str, provider_env: FakeProvider, tmp_path: Path
) -> None:
    harness = harness_for(name)
    workspace = LocalWorkspace(tmp_path / "work") if harness.capabilities.in_workspace else None
    home = tmp_path / "home" if workspace else None
    request = TurnRequest(
        MODELS[name],
        [{"role": "user", "content": "say hi"}],
        CallOptions(timeout_s=120),
        True,
        "say hi",
        workspace,
        home,
    )

    async def turn() -> list[object]:
        return [item async for item in harness.turn(request)]

    items = asyncio.run(turn())
    results = [i for i in items if isinstance(i, ModelResult)]
    assert len(results) == 1 and items[-1] is results[0]
    result = results[0]
    said = "".join(i for i in items if isinstance(i, str))
    assert said.endswith(result.text) and "say hi" in result.text
    assert result.model == MODELS[name]
    assert result.usage.input_tokens and result.usage.output_tokens
    assert result.cost_usd is not None
    if isinstance(harness, CliHarness):
        assert isinstance(result, TurnResult) and result.session_ref
        assert harness.can_resume(home, result.session_ref)  # type: ignore[arg-type]
        assert not harness.can_resume(home, "0" * 36)  # type: ignore[arg-type]
        assert not list((tmp_path / "work").iterdir())  # the CLI's own files stay in its home
        assert not provider_env.foreign_requests

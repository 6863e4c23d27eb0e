"""Record the harness stream fixtures: `.venv/bin/python -m tests.make_harness_fixtures`.

Runs the pinned `claude` and `codex` CLIs offline against the fake provider exactly as the harnesses run
them (their argv, environment and config, in a local workspace), and keeps each process's stdout, line for
line, under `tests/fixtures/harness/`: a first turn with a shell tool call, a resumed second turn, and a
turn the provider fails. `expected.json` beside them is the ground truth the parsing tests assert, taken
from what the fake provider answered (never from the streams).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from api.adapters.compute.local import LocalWorkspace
from api.adapters.harness import TurnRequest, harness_for
from api.adapters.harness.cli import CliHarness
from api.adapters.models import CallOptions
from tests.agent_clis import cli_path, cli_version
from tests.fake_provider import FakeProvider, Reply, ToolCall

FIXTURES = Path(__file__).parent / "fixtures" / "harness"
RUN_ROOT = Path(tempfile.gettempdir()) / "cerver-harness-fixtures"
CASES: dict[str, dict[str, Any]] = {
    "claude-code": {
        "binary": "claude",
        "model": "anthropic/claude-sonnet-4-6",
        "call": ToolCall(
            "Bash", {"command": "printf 'hi\\n' > hello.txt && cat hello.txt", "description": "x"}
        ),
        "fault": (500, 3),
    },
    "codex": {
        "binary": "codex",
        "model": "openai/gpt-5.5",
        "call": ToolCall("exec_command", {"cmd": "printf 'hi\\n' > hello.txt && cat hello.txt"}),
        "fault": (400, 1),
    },
}


async def record(harness_name: str, fake: FakeProvider) -> dict[str, Any]:
    """Three turns of one harness (tool call, resume, provider failure); returns the expected figures."""
    case = CASES[harness_name]
    harness = harness_for(harness_name)
    assert isinstance(harness, CliHarness)
    root = RUN_ROOT / harness_name
    shutil.rmtree(root, ignore_errors=True)
    workspace = LocalWorkspace(root / "work")
    fake.reset()
    fake.script(
        [
            Reply("I'll write it.", (case["call"],), usage=(1101, 21), cache=(501, 31)),
            Reply("hello.txt says hi.", usage=(1202, 22), cache=(602, 0)),
            Reply("You're welcome!", usage=(1303, 23), cache=(703, 0)),
        ]
    )
    prompts = ["Create hello.txt saying hi, then show it.", "Thanks!", "Once more?"]
    resume: dict[str, Any] | None = None
    for n, prompt in enumerate(prompts, 1):
        if n == 3:
            status, times = case["fault"]  # codex retries a 5xx on its own, not a 400
            fake.fail_next(status, times=times, message="fake provider: failed on purpose")
        request = TurnRequest(
            case["model"], [], CallOptions(timeout_s=120), True, prompt, workspace, root / "home", resume
        )
        binary = harness.locate()
        harness.prepare(request.home, request)
        (root / "home" / "tmp").mkdir(parents=True, exist_ok=True)
        env = {**harness.base_env(binary, root / "home"), **harness.env(root / "home")}
        lines: list[str] = []
        async for item in workspace.exec_lines(harness.argv(binary, request), 120, env):
            if isinstance(item, str):
                lines.append(item)
        (FIXTURES / f"{harness_name}-{n}.jsonl").write_text("".join(line + "\n" for line in lines))
        if n < 3:
            parser = harness.parser(request)
            for line in lines:
                parser.feed(line)
            resume = parser.finish().cli
    answers = [
        {
            "text": r.text,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "cache_read_tokens": r.cache_read_tokens,
            "cache_write_tokens": r.cache_creation_tokens,
        }
        for r in fake.responses
    ]
    return {"cli": cli_version(case["binary"]), "model": case["model"], "answers": answers}


async def main() -> None:
    """Record both CLIs' fixtures and write expected.json."""
    os.environ["CERVER_CLAUDE_BIN"] = str(cli_path("claude"))
    os.environ["CERVER_CODEX_BIN"] = str(cli_path("codex"))
    os.environ["CLAUDE_CODE_MAX_RETRIES"] = "0"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    expected = {}
    with FakeProvider() as fake:
        os.environ.update(
            {
                "ANTHROPIC_API_KEY": "sk-ant-fake-key",
                "ANTHROPIC_BASE_URL": fake.base_url,
                "OPENAI_API_KEY": "sk-fake-key",
                "OPENAI_BASE_URL": fake.base_url + "/v1",
                "HTTPS_PROXY": fake.base_url,
                "HTTP_PROXY": fake.base_url,
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        for name in CASES:
            expected[name] = await record(name, fake)
        assert not fake.foreign_requests, fake.foreign_requests
    (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {FIXTURES}")


if __name__ == "__main__":
    asyncio.run(main())

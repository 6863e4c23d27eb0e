"""Regenerate the agent CLI transcript fixtures: `.venv/bin/python -m tests.make_fixtures`.

Runs the pinned `claude` and `codex` CLIs offline against the fake provider through the scripted
conversations below, copies what each wrote into `tests/fixtures/claude-code/` and `tests/fixtures/codex/`
(keeping the layout the CLI uses under its home) and writes `expected.json` beside them: the ground truth an
importer test asserts, taken from what the fake provider recorded, never from the transcripts.

The runs happen under fixed folders in the system's temp dir, so that the paths inside the transcripts (cwd,
Claude Code's project folder) stay the same from one regeneration to the next. See `tests/fixtures/README.md`.
"""

from __future__ import annotations

import json
import platform
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agent_clis import AgentRun, run_claude, run_codex
from tests.fake_provider import FakeProvider, RecordedRequest, RecordedResponse, Reply, ToolCall

FIXTURES = Path(__file__).parent / "fixtures"
RUN_ROOT = Path(tempfile.gettempdir()) / "cerver-fixtures"
CLAUDE_SESSION_ID = "0b5e55ed-c1a0-4dec-8000-00000000c0de"


@dataclass(frozen=True)
class Conversation:
    """The user's prompts, and the model's replies in the order the CLI asks for them."""

    prompts: tuple[str, ...]
    replies: tuple[Reply, ...]


def claude_conversation(cwd: Path) -> Conversation:
    """Three turns: write and read a file (Write, Bash), a subagent that lists files (Agent), thanks."""
    hello = str(cwd / "hello.txt")
    helper = {
        "description": "List the files",
        "prompt": "List the files in the working directory.",
        "subagent_type": "general-purpose",
        "run_in_background": False,
    }
    return Conversation(
        prompts=(
            "Create hello.txt saying hi, then show it.",
            "Ask a helper to list the files here.",
            "Thanks!",
        ),
        replies=(
            Reply(
                "I'll write the file.",
                (ToolCall("Write", {"file_path": hello, "content": "hi\n"}),),
                usage=(1101, 21),
                cache=(5001, 301),
            ),
            Reply(
                "",
                (ToolCall("Bash", {"command": "cat hello.txt", "description": "Show hello.txt"}),),
                (1202, 22),
                (5102, 302),
            ),
            Reply("hello.txt says hi.", usage=(1303, 23), cache=(5203, 303)),
            Reply("I'll ask a helper.", (ToolCall("Agent", helper),), usage=(1404, 24), cache=(5304, 304)),
            # the subagent's two calls (its own transcript, isSidechain: true)
            Reply(
                "", (ToolCall("Bash", {"command": "ls", "description": "List files"}),), (705, 25), (0, 305)
            ),
            Reply("There is one file: hello.txt.", usage=(806, 26), cache=(0, 306)),
            Reply("The helper found one file, hello.txt.", usage=(1507, 27), cache=(5405, 307)),
            Reply("You're welcome!", usage=(1608, 28), cache=(5506, 308)),
        ),
    )


def codex_conversation() -> Conversation:
    """Three turns: one shell call, then two parallel ones, then thanks."""
    return Conversation(
        prompts=(
            "Create hello.txt saying hi, then show it.",
            "How big is it, and what else is here?",
            "Thanks!",
        ),
        replies=(
            Reply(
                "I'll create it.",
                (ToolCall("exec_command", {"cmd": "printf 'hi\\n' > hello.txt && cat hello.txt"}),),
                usage=(2101, 31),
                cache=(2001, 0),
            ),
            Reply("hello.txt says hi.", usage=(2202, 32), cache=(2102, 0)),
            Reply(
                "",
                (
                    ToolCall("exec_command", {"cmd": "wc -c hello.txt"}),
                    ToolCall("exec_command", {"cmd": "ls"}),
                ),
                usage=(2303, 33),
                cache=(2203, 0),
            ),
            Reply("It is 3 bytes, and it is the only file.", usage=(2404, 34), cache=(2304, 0)),
            Reply("You're welcome!", usage=(2505, 35), cache=(2405, 0)),
        ),
    )


def is_subagent(request: RecordedRequest) -> bool:
    """Whether Claude Code sent this request for a subagent (its billing header says so)."""
    system = request.body.get("system")
    texts = (
        [b.get("text", "") for b in system if isinstance(b, dict)] if isinstance(system, list) else [system]
    )
    return any("cc_is_subagent=true" in str(text) for text in texts)


def returned_tool_results(requests: list[RecordedRequest]) -> set[str]:
    """Ids of the tool calls whose results the CLI sent back to the model, in any later request."""
    ids: set[str] = set()
    for request in requests:
        if request.provider == "anthropic":
            for message in request.body.get("messages", []):
                content = message.get("content")
                blocks = content if isinstance(content, list) else []
                ids |= {
                    b["tool_use_id"] for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"
                }
        elif request.provider == "openai-responses":
            items = request.body.get("input") or []
            ids |= {
                i["call_id"] for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
            }
    return ids


def _response_record(response: RecordedResponse) -> dict[str, Any]:
    return {
        "id": response.id,
        "request_id": response.request_id,
        "model": response.model,
        "subagent": is_subagent(response.request),
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "cache_read_input_tokens": response.cache_read_tokens,
        "cache_creation_input_tokens": response.cache_creation_tokens,
        "text": response.text,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls],
    }


def expected(run: AgentRun, fake: FakeProvider, home_dir: Path, transcripts: list[Path]) -> dict[str, Any]:
    """The ground truth for one fixture, from the fake provider's records."""
    responses = fake.responses
    calls = [c.id for r in responses for c in r.tool_calls]
    returned = returned_tool_results(fake.requests)
    totals = {
        key: sum(r[key] for r in map(_response_record, responses))
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    }
    return {
        "cli": run.cli,
        "cli_version": run.version,
        "session_id": run.session_id,
        "transcripts": [str(p.relative_to(home_dir)) for p in transcripts],
        "commands": [list(c) for c in run.commands],
        "user_prompts": len(run.outputs),
        "model_responses": len(responses),
        "subagent_responses": sum(is_subagent(r.request) for r in responses),
        "models": sorted({r.model for r in responses}),
        "assistant_text_messages": sum(bool(r.text) for r in responses),
        "tool_calls": len(calls),
        "tool_results": len([c for c in calls if c in returned]),
        "usage_totals": totals,
        "responses": [_response_record(r) for r in responses],
    }


def scrub(text: str) -> str:
    """Replace what names this machine (kernel release, host name) with fixed stand-ins."""
    text = text.replace(platform.release(), "0.0.0-fixture")
    host = socket.gethostname()
    return text.replace(host, "fixture-host") if len(host) >= 4 else text


def _copy_tree(source: Path, target: Path) -> list[Path]:
    """Copy the transcript files (scrubbed); return the copies."""
    copies = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(scrub(path.read_text()))
            copies.append(copy)
    return copies


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def make_claude_code() -> Path:
    """Run the Claude Code conversation; write tests/fixtures/claude-code/. Returns the expected.json path."""
    root = _fresh(RUN_ROOT / "claude-code")
    home, cwd = root / "home", root / "work"
    cwd.mkdir()
    talk = claude_conversation(cwd)
    with FakeProvider() as fake:
        fake.script(talk.replies)
        run = run_claude(fake, home, talk.prompts, cwd, session_id=CLAUDE_SESSION_ID)
        _check_all_answered(fake, talk)
    target = _fresh(FIXTURES / "claude-code")
    session_dir = run.transcript.parent
    copies = _copy_tree(session_dir, target / session_dir.relative_to(home / ".claude"))
    main = target / run.transcript.relative_to(home / ".claude")
    transcripts = [main] + [p for p in copies if p.suffix == ".jsonl" and p != main]
    truth = expected(run, fake, target, transcripts)
    (target / "expected.json").write_text(scrub(json.dumps(truth, indent=2)) + "\n")
    return target / "expected.json"


def make_codex() -> Path:
    """Run the Codex conversation; write tests/fixtures/codex/. Returns the expected.json path."""
    root = _fresh(RUN_ROOT / "codex")
    home, cwd = root / "home", root / "work"
    talk = codex_conversation()
    with FakeProvider() as fake:
        fake.script(talk.replies)
        run = run_codex(fake, home, talk.prompts, cwd)
        _check_all_answered(fake, talk)
    target = _fresh(FIXTURES / "codex")
    sessions = home / ".codex"
    copy = target / run.transcript.relative_to(sessions)
    copy.parent.mkdir(parents=True)
    copy.write_text(scrub(run.transcript.read_text()))
    truth = expected(run, fake, target, [copy])
    (target / "expected.json").write_text(scrub(json.dumps(truth, indent=2)) + "\n")
    return target / "expected.json"


def _check_all_answered(fake: FakeProvider, talk: Conversation) -> None:
    """Every scripted reply was used, and nothing tried to leave the machine."""
    if len(fake.responses) != len(talk.replies):
        raise RuntimeError(
            f"the CLI made {len(fake.responses)} model calls, the script has {len(talk.replies)}"
        )
    if fake.foreign_requests:
        raise RuntimeError(f"the CLI tried to reach other hosts: {fake.foreign_requests}")


def main() -> None:
    """Regenerate both fixtures and say where they are."""
    for make in (make_claude_code, make_codex):
        print("wrote", make().parent)


if __name__ == "__main__":
    main()

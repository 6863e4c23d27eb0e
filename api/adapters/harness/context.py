"""The prompt a CLI harness is sent: the new turn, after whatever of the session it has not seen.

An agent CLI keeps its own conversation, so it is sent only the new turn, except when the
session has messages its CLI session never saw: its first turn after a harness switch (or
in a fork, or after its session files were lost), or messages another harness wrote since
its last turn. Those come first, as plain text:

    <conversation_so_far>
    Earlier messages of this conversation, which you have not seen (you are taking it over):

    [user]
    Create hello.txt saying hi.

    [assistant]
    Done: hello.txt says hi.
    </conversation_so_far>

    Thanks! What else is there?

The prompt travels as one command-line argument, which Linux caps at 128 KiB: a turn's own
text may take up to MAX_PROMPT_BYTES (`too_long` says when it does not), and the earlier
messages only the room left, newest first (older ones are counted in a line saying so).
"""

from __future__ import annotations

import json
from typing import Any

MAX_PROMPT_BYTES = 120_000  # under the kernel's 131,072-byte limit on one argument
OPEN, CLOSE = "<conversation_so_far>", "</conversation_so_far>"
INTRO = "Earlier messages of this conversation, which you have not seen (you are taking it over):"


def text_of(message: dict[str, Any]) -> str:
    """A chat message's text: its content, text parts joined, or its content and tool calls as JSON."""
    content = message.get("content")
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        if all(isinstance(t, str) for t in texts):
            content = "\n".join(texts)  # type: ignore[arg-type]
    if not isinstance(content, str):
        content = "" if content is None else json.dumps(content, ensure_ascii=False)
    if message.get("tool_calls"):
        content += ("\n" if content else "") + json.dumps(message["tool_calls"], ensure_ascii=False)
    return content


def own_text(turn: list[dict[str, Any]]) -> str:
    """The turn's own messages as the CLI reads them (a user's text as is, others labelled)."""
    return "\n\n".join(
        text_of(m) if m.get("role") == "user" else f"[{m.get('role')}]\n{text_of(m)}" for m in turn
    )


def too_long(turn: list[dict[str, Any]]) -> bool:
    """Whether the turn alone is more than a CLI can be given."""
    return len(own_text(turn).encode()) > MAX_PROMPT_BYTES


def prompt(unseen: list[dict[str, Any]], turn: list[dict[str, Any]]) -> str:
    """The text sent to the CLI: the unseen messages as context (if any), then the turn's own text."""
    own = own_text(turn)
    if not unseen:
        return own
    room = MAX_PROMPT_BYTES - len(own.encode()) - 1000  # the wrapping lines
    blocks: list[str] = []
    for message in reversed(unseen):
        block = f"[{message.get('role') or 'user'}]\n{text_of(message)}"
        size = len(block.encode()) + 2
        if size > room:
            break
        blocks.append(block)
        room -= size
    left_out = len(unseen) - len(blocks)
    head = [INTRO] + ([f"({left_out} older messages left out.)"] if left_out else [])
    context = "\n\n".join([*head, *reversed(blocks)])
    return f"{OPEN}\n{context}\n{CLOSE}\n\n{own}"

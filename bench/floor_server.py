"""The floor for bench/overhead.py: a server in front of litellm that does nothing else.

It speaks just enough of Cerver's API for the benchmark's client (`POST /v2/sessions`,
`POST /v2/sessions/{id}/run-llm` with `prompt` and `stream`, answered as JSON or as Cerver's
SSE frames) and keeps each session's transcript in a dict: no token, no validation, no
events, nothing on disk. It runs on the same uvicorn, event loop and HTTP parser as
`cerver serve`. What it adds over calling litellm in-process is what any Python server in
front of litellm adds on this machine (a hop over loopback, HTTP in and out); what Cerver
adds over it is Cerver's own work.

    python bench/floor_server.py --port 8801    # OPENAI_BASE_URL and OPENAI_API_KEY as for cerver
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import uvicorn

TURN = re.compile(r"/v2/sessions/([^/]+)/run-llm")
transcripts: dict[str, list[dict[str, str]]] = {}
ids = itertools.count(1)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/v2/sessions":
        session_id = f"floor_{next(ids)}"
        transcripts[session_id] = []
        await _json(send, 201, {"session_id": session_id})
    elif (turn := TURN.fullmatch(scope["path"])) is not None:
        await _turn(send, transcripts[turn.group(1)], json.loads(body))
    else:
        await _json(send, 200, {"status": "ok", "warm": True})


async def _turn(send: Any, transcript: list[dict[str, str]], request: dict[str, Any]) -> None:
    transcript.append({"role": "user", "content": request["prompt"]})
    model = "openai/gpt-4o-mini"
    if not request.get("stream"):
        response = await litellm.acompletion(model=model, messages=list(transcript), num_retries=0)
        text = response.choices[0].message.content
        transcript.append({"role": "assistant", "content": text})
        await _json(send, 200, {"output": text, "usage": {"input_tokens": response.usage.prompt_tokens}})
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    options = {"stream": True, "stream_options": {"include_usage": True}, "num_retries": 0}
    stream = await litellm.acompletion(model=model, messages=list(transcript), **options)
    parts = []
    async for chunk in stream:
        for choice in chunk.choices or ():
            if choice.delta.content:
                parts.append(choice.delta.content)
                frame = _frame("delta", {"text": parts[-1]})
                await send({"type": "http.response.body", "body": frame, "more_body": True})
    transcript.append({"role": "assistant", "content": "".join(parts)})
    await send({"type": "http.response.body", "body": _frame("done", {"output": "".join(parts)})})


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _json(send: Any, status: int, data: dict[str, Any]) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")

"""POST /v1/traces: the real OpenTelemetry SDK exporting GenAI spans to a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import warehouse
from tests.server import Server, mint_token

T0 = 1_790_000_000_000_000_000  # ns


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data = tmp_path_factory.mktemp("otlp") / "cerver-data"
    data.mkdir()
    token = mint_token(data, "acme")
    server = Server(data).start()
    yield server, token
    server.stop()


def price(model: str, input_tokens: int, output_tokens: int) -> float:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    prompt, completion = litellm.cost_per_token(
        model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
    )
    return prompt + completion


def test_the_sdk_exporter_lands_genai_spans_as_runs(api: tuple[Server, str]) -> None:
    server, token = api
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "my-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    chat = tracer.start_span(
        "chat gpt-4o-mini",
        start_time=T0,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 345,
            "gen_ai.conversation.id": "conv-1",
            "user.id": "u-42",
        },
    )
    chat.end(end_time=T0 + 1_234_500_000)
    failed = tracer.start_span(
        "chat claude",
        start_time=T0 + 2_000_000_000,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.conversation.id": "conv-1",
        },
    )
    failed.set_status(Status(StatusCode.ERROR, "overloaded"))
    failed.end(end_time=T0 + 2_500_000_000)
    tracer.start_span("GET /health", start_time=T0).end(end_time=T0 + 1_000_000)  # not GenAI
    assert provider.force_flush()
    provider.shutdown()

    with server.client(token) as c:
        metrics = c.get("/v2/sessions/conv-1/metrics").json()
        assert metrics["runs"] == 2
        assert (metrics["input_tokens"], metrics["output_tokens"]) == (1200, 345)
        assert metrics["cost_usd"] == pytest.approx(price("openai/gpt-4o-mini", 1200, 345))
        assert metrics["latency_ms"]["max"] == pytest.approx(1234.5)
        assert {m["model"] for m in metrics["by_model"]} == {
            "openai/gpt-4o-mini",
            "anthropic/claude-haiku-4-5",
        }
        listed = {s["session_id"]: s for s in c.get("/v2/sessions").json()["sessions"]}
        assert listed["conv-1"]["user_id"] == "u-42"
    with warehouse.open(server.data, read_only=True) as reader:
        rows = reader.sql("select type, status, error, harness from events order by ts").to_pylist()
    assert rows == [
        {"type": "run.completed", "status": "ok", "error": None, "harness": "import:otlp"},
        {"type": "run.failed", "status": "error", "error": "overloaded", "harness": "import:otlp"},
    ]


def _json_export(span_id: str) -> dict:
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
    ]
    span = {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": span_id,
        "name": "chat",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 50_000_000),
        "attributes": attrs,
    }
    other = {**span, "spanId": "00000000000000ff", "attributes": []}
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span, other]}]}]}


def test_otlp_json_is_idempotent_and_counts_what_it_skips(api: tuple[Server, str]) -> None:
    server, token = api
    with server.client(token) as c:
        first = c.post("/v1/traces", json=_json_export("EEE19B7EC3C1B174"))
        assert first.status_code == 200
        assert first.json()["cerver"] == {"runs": 1, "duplicates": 0, "skipped_spans": 1}
        again = c.post("/v1/traces", json=_json_export("EEE19B7EC3C1B174"))
        assert again.json()["cerver"] == {"runs": 0, "duplicates": 1, "skipped_spans": 1}
        session = "otel-5b8efff798038103d269b633813fc60c"  # no conversation id: the trace is the session
        metrics = c.get(f"/v2/sessions/{session}/metrics").json()
        assert metrics["runs"] == 1 and metrics["latency_ms"]["p50"] == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{nope", "application/json"),
        (b"[1]", "application/json"),
        (b"\xff\x00garbage", "application/x-protobuf"),
    ],
)
def test_unreadable_exports_are_400(api: tuple[Server, str], content: bytes, content_type: str) -> None:
    server, token = api
    with server.client(token) as c:
        response = c.post("/v1/traces", content=content, headers={"Content-Type": content_type})
        assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_body"


def test_traces_need_a_token(api: tuple[Server, str]) -> None:
    assert httpx.post(api[0].url + "/v1/traces", json={}).status_code == 401

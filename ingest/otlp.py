"""OTLP traces: spans that follow the OpenTelemetry GenAI conventions become run events.

A GenAI span (one with `gen_ai.operation.name`, `gen_ai.provider.name` or the older
`gen_ai.system`) becomes `run.completed` (`run.failed` when its status is ERROR) in
the session named by `gen_ai.conversation.id` (else `otel-<trace id>`), with model,
tokens, latency from the span's times and every attribute kept in `attrs`. Its
event id is made from the trace and span ids, so a re-sent export adds nothing.
Other spans are counted and skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

GENAI_MARKERS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system")
PROTOBUF = ("application/x-protobuf", "application/protobuf")
# OpenTelemetry provider names, as litellm spells them.
_PROVIDERS = {
    "gcp.gemini": "gemini",
    "gcp.gen_ai": "gemini",
    "gcp.vertex_ai": "vertex_ai",
    "aws.bedrock": "bedrock",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure_ai",
    "x_ai": "xai",
    "mistral_ai": "mistral",
}
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")


class TraceError(ValueError):
    """The export cannot be read at all."""


@dataclass
class Converted:
    """Events made from an export, and how many spans were not GenAI."""

    events: list[dict[str, Any]]
    skipped: int


def decode(body: bytes, content_type: str | None) -> dict[str, Any]:
    """An ExportTraceServiceRequest as OTLP/JSON's dict shape, from JSON or protobuf."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind in PROTOBUF:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        try:
            return MessageToDict(ExportTraceServiceRequest.FromString(body))
        except DecodeError as exc:
            raise TraceError(f"body is not an OTLP protobuf export: {exc}") from None
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise TraceError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TraceError("expected an OTLP ExportTraceServiceRequest object")
    return data


def to_events(tenant_id: str, request: dict[str, Any], protobuf: bool = False) -> Converted:
    """The GenAI spans of an export as events of `tenant_id`."""
    events, skipped = [], 0
    for resource_spans in request.get("resourceSpans") or []:
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                attrs = _attributes(span.get("attributes"))
                if not any(marker in attrs for marker in GENAI_MARKERS):
                    skipped += 1
                    continue
                events.append(_event(tenant_id, span, attrs, resource, protobuf))
    return Converted(events, skipped)


def _event(tenant_id: str, span: dict, attrs: dict, resource: dict, protobuf: bool) -> dict[str, Any]:
    trace_id, span_id = _hex(span.get("traceId"), protobuf), _hex(span.get("spanId"), protobuf)
    start, end = int(span.get("startTimeUnixNano") or 0), int(span.get("endTimeUnixNano") or 0)
    failed = (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR")
    provider = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    return {
        "event_id": f"otel-{trace_id}-{span_id}",
        "ts": dt.datetime.fromtimestamp((end or start) / 1e9, dt.UTC),
        "tenant_id": tenant_id,
        "user_id": _text(attrs.get("user.id") or attrs.get("enduser.id")),
        "session_id": _text(attrs.get("gen_ai.conversation.id")) or f"otel-{trace_id}",
        "run_id": span_id,
        "type": "run.failed" if failed else "run.completed",
        "harness": "import:otlp",
        "model": _model(provider, model),
        "input_tokens": _int(attrs.get("gen_ai.usage.input_tokens")),
        "output_tokens": _int(attrs.get("gen_ai.usage.output_tokens")),
        "cache_read_tokens": _int(next((attrs[k] for k in _CACHE_READ if k in attrs), None)),
        "cache_write_tokens": _int(next((attrs[k] for k in _CACHE_WRITE if k in attrs), None)),
        "latency_ms": (end - start) / 1e6 if end and start else None,
        "status": "error" if failed else "ok",
        "error": ((span.get("status") or {}).get("message") or "span status ERROR") if failed else None,
        "attrs": json.dumps(
            {
                "span": {
                    "name": span.get("name"),
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "parent_span_id": _hex(span.get("parentSpanId"), protobuf) or None,
                },
                "attributes": attrs,
                "resource": resource,
            },
            default=str,
            separators=(",", ":"),
        ),
    }


def _attributes(items: list[dict] | None) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value") or {}) for item in items or [] if "key" in item}


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # int64 travels as a string in OTLP/JSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values") or []]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _hex(raw: str | None, protobuf: bool) -> str:
    """Trace and span ids: hex in OTLP/JSON; base64 when they came from protobuf."""
    if not raw:
        return ""
    return base64.b64decode(raw).hex() if protobuf else raw.lower()


def _model(provider: Any, model: Any) -> str | None:
    if not model:
        return None
    if not provider or "/" in str(model):
        return str(model)
    return f"{_PROVIDERS.get(str(provider), str(provider))}/{model}"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None

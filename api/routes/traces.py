"""POST /v1/traces: OTLP/HTTP, JSON or protobuf; GenAI spans become run events (ingest/otlp.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep, TenantDep
from api.errors import ApiError
from ingest import otlp, pricing, rest

router = APIRouter(tags=["ingest"])


@router.post("/v1/traces", response_model=None)
async def ingest_traces(request: Request, tenant: TenantDep, service: ServiceDep) -> Response:
    """Store the GenAI spans of an OTLP export as runs; count and skip the others."""
    content_type = request.headers.get("content-type")
    protobuf = (content_type or "").split(";")[0].strip().lower() in otlp.PROTOBUF
    try:
        body = rest.inflate(await request.body(), request.headers.get("content-encoding"))
        converted = otlp.to_events(tenant, otlp.decode(body, content_type), protobuf)
    except (otlp.TraceError, rest.BodyError) as exc:
        raise ApiError(getattr(exc, "status", 400), "malformed_body", str(exc)) from None
    result = rest.IngestResult()
    if converted.events:
        await run_in_threadpool(pricing.price_events, converted.events)
        result = await request.app.state.ingest.submit(rest.Batch(tenant, converted.events))
        for session_id in result.sessions:
            service.store.forget(tenant, session_id)
    rejected = len(result.rejected)
    headers = {"X-Cerver-Runs": str(result.accepted), "X-Cerver-Skipped": str(converted.skipped)}
    if protobuf:
        return Response(
            _protobuf_answer(rejected, result), media_type="application/x-protobuf", headers=headers
        )
    answer: dict[str, Any] = {
        "cerver": {
            "runs": result.accepted,
            "duplicates": result.duplicates,
            "skipped_spans": converted.skipped,
        }
    }
    if rejected:
        answer["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": result.rejected[0].error}
    return JSONResponse(answer, headers=headers)


def _protobuf_answer(rejected: int, result: rest.IngestResult) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.rejected_spans = rejected
        answer.partial_success.error_message = result.rejected[0].error
    return answer.SerializeToString()

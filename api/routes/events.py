"""POST /v2/events: batches of events produced elsewhere (ingest/rest.py does the work)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ServiceDep, TenantDep
from api.errors import ApiError
from ingest import rest

router = APIRouter(tags=["ingest"])


@router.post("/v2/events", response_model=None)
async def ingest_events(request: Request, tenant: TenantDep, service: ServiceDep) -> JSONResponse:
    """Store a JSON array or NDJSON of events (gzip accepted): 200 all stored, 207 some, 400 none."""
    try:
        body = rest.inflate(await request.body(), request.headers.get("content-encoding"))
        items, bad = rest.parse(body, request.headers.get("content-type"))
    except rest.BodyError as exc:
        code = {413: "body_too_large", 415: "unsupported_encoding"}.get(exc.status, "malformed_body")
        raise ApiError(exc.status, code, str(exc)) from None
    if not items:
        raise ApiError(400, "empty_batch", "the batch holds no events")
    result = await request.app.state.ingest.submit(rest.Batch(tenant, items, bad))
    for session_id in result.sessions:
        service.store.forget(tenant, session_id)  # its cached state may not know these events
    status = 200 if not result.rejected else (207 if result.accepted or result.duplicates else 400)
    return JSONResponse(result.as_json(), status)

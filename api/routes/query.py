"""SQL over the caller's own sessions: POST /v2/query, and the named queries under /v2/queries.

Statements run in warehouse/sandbox.py, which sees only the caller's tenant; this module
binds the request, maps the sandbox's errors, and writes the rows as JSON, CSV, Arrow or
Parquet, as the Accept header asks.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import io
import json
import math
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

import queries
import warehouse
from api.deps import TenantDep
from api.errors import ApiError
from api.schemas import Strict
from warehouse.sandbox import Answer, Limits, QueryBusy, QueryTimeout, QueryTooLarge, Refused

router = APIRouter(tags=["query"])

JSON, CSV = "application/json", "text/csv"
ARROW, PARQUET = "application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"
_MEDIA = {JSON: JSON, CSV: CSV, ARROW: ARROW, PARQUET: PARQUET, "application/x-parquet": PARQUET}


class QueryBody(Strict):
    """POST /v2/query."""

    sql: str = Field(min_length=1, max_length=100_000)
    params: dict[str, Any] | list[Any] | None = None
    limit: int | None = Field(default=None, ge=1)


async def _warehouse(request: Request) -> warehouse.Warehouse:
    return request.app.state.warehouse


WarehouseDep = Annotated[warehouse.Warehouse, Depends(_warehouse)]


@router.post("/v2/query", response_model=None)
async def run_query(body: QueryBody, request: Request, tenant: TenantDep, wh: WarehouseDep) -> Response:
    """One read-only SELECT over the caller's own events, sessions, messages and runs."""
    limits = Limits.from_env()
    if body.limit is not None:
        if body.limit > limits.max_rows:
            raise ApiError(422, "invalid_request", f"limit: at most {limits.max_rows} rows per query")
        limits = dataclasses.replace(limits, max_rows=body.limit)
    media = _negotiate(request.headers.get("accept"))
    answer = await _confined(wh, tenant, body.sql, body.params, None, limits)
    return _respond(answer, media)


@router.get("/v2/queries")
async def list_queries(tenant: TenantDep) -> dict[str, Any]:
    """The named queries: name, summary and parameters (type, default, what each means)."""
    return {"queries": [_describe(q) for q in queries.catalog()]}


@router.get("/v2/queries/{name}", response_model=None)
async def run_named_query(name: str, request: Request, tenant: TenantDep, wh: WarehouseDep) -> Response:
    """Run a named query over the caller's own data; its parameters come from the query string."""
    try:
        query = queries.get(name)
    except queries.UnknownQuery as exc:
        raise ApiError(404, "unknown_query", str(exc)) from None
    try:
        values = queries.bind(query, dict(request.query_params))
    except queries.BadParams as exc:
        raise ApiError(422, "invalid_params", str(exc)) from None
    media = _negotiate(request.headers.get("accept"))
    tables = await run_in_threadpool(queries.extra_tables, query)
    answer = await _confined(wh, tenant, query.sql, values, tables, Limits.from_env())
    return _respond(answer, media)


def _describe(query: queries.NamedQuery) -> dict[str, Any]:
    params = [
        {
            "name": p.name,
            "type": p.type,
            "required": p.required,
            "default": _jsonable(p.default),
            "doc": p.doc,
        }
        for p in query.params
    ]
    return {"name": query.name, "summary": query.summary, "params": params}


async def _confined(
    wh: warehouse.Warehouse,
    tenant: str,
    sql: str,
    params: Any,
    tables: dict[str, pa.Table] | None,
    limits: Limits,
) -> Answer:
    """Run the statement off the event loop; the sandbox's errors become the API's."""
    try:
        return await run_in_threadpool(wh.confined_sql, tenant, sql, params, tables=tables, limits=limits)
    except Refused as exc:
        raise ApiError(400, "refused", str(exc)) from None
    except QueryTimeout as exc:
        raise ApiError(400, "query_timeout", str(exc)) from None
    except QueryTooLarge as exc:
        raise ApiError(400, "query_too_large", str(exc)) from None
    except QueryBusy as exc:
        raise ApiError(429, "too_many_queries", str(exc), {"Retry-After": "1"}) from None
    except warehouse.QueryError as exc:
        raise ApiError(400, "invalid_sql", str(exc)) from None


def _negotiate(accept: str | None) -> str:
    """The format the Accept header prefers among ours (JSON unless it says otherwise)."""
    best, best_q = None, 0.0
    for item in (accept or "*/*").split(","):
        kind, *options = (part.strip() for part in item.split(";"))
        q = next((_quality(o[2:]) for o in options if o.startswith("q=")), 1.0)
        media = JSON if kind in ("*/*", "application/*") else _MEDIA.get(kind.lower())
        if media is not None and q > best_q:
            best, best_q = media, q
    if best is None:
        raise ApiError(406, "not_acceptable", f"answers come as {', '.join(_MEDIA)}")
    return best


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _respond(answer: Answer, media: str) -> Response:
    table = answer.table
    if media == JSON:
        columns = [{"name": n, "type": t} for n, t in zip(table.column_names, answer.types, strict=True)]
        values = [[_jsonable(v) for v in column.to_pylist()] for column in table.columns]
        rows = [list(row) for row in zip(*values, strict=True)] if values else [[]] * table.num_rows
        body = {"columns": columns, "rows": rows, "row_count": table.num_rows, "truncated": answer.truncated}
        return JSONResponse(body)
    headers = {"X-Cerver-Row-Count": str(table.num_rows), "X-Cerver-Truncated": str(answer.truncated).lower()}
    return Response(_encode(table, media), media_type=media, headers=headers)


def _encode(table: pa.Table, media: str) -> bytes:
    sink = io.BytesIO()
    if media == ARROW:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    elif media == PARQUET:
        import pyarrow.parquet as pq

        pq.write_table(table, sink)
    else:
        import pyarrow.csv as csv

        csv.write_csv(_flat(table), sink)
    return sink.getvalue()


def _flat(table: pa.Table) -> pa.Table:
    """Columns CSV cannot hold (lists, structs, maps, intervals) as JSON text."""
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type) or pa.types.is_interval(field.type):
            texts = [None if v is None else json.dumps(_jsonable(v)) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(texts, pa.string()))
    return table


def _jsonable(value: Any) -> Any:
    """A JSON-safe form: ISO 8601 times, numbers for decimals, null for NaN, base64 for bytes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent >= 0
            else float(value)
        )
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a MAP's entries
            return {str(k): _jsonable(v) for k, v in value}
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return f"PT{value.total_seconds():g}S"
    if isinstance(value, pa.MonthDayNano):
        return f"P{value.months}M{value.days}DT{value.nanoseconds / 1e9:g}S"
    return str(value)

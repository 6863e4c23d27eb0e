"""Errors as the API answers them: `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import warehouse


class ApiError(Exception):
    """An answer other than success: raise it anywhere below a route."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def not_found(what: str = "session") -> ApiError:
    """404 for unknown ids, and for another tenant's: never confirm they exist."""
    return ApiError(404, "not_found", f"no such {what}")


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON shape every error has."""
    return {"error": {"code": code, "message": message}}


def response_for(exc: ApiError | warehouse.StorageError) -> JSONResponse:
    """The answer for an ApiError, or for storage that failed under a request (503)."""
    if isinstance(exc, ApiError):
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)
    return JSONResponse(error_body("storage_unavailable", str(exc)), 503)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Route every error through the one JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = any(err.get("type") == "json_invalid" for err in exc.errors())
        if malformed:
            return JSONResponse(error_body("malformed_json", _describe(exc)), 400)
        return JSONResponse(error_body("invalid_request", _describe(exc)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "error"
        )
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(warehouse.StorageError)
    async def _storage(request: Request, exc: warehouse.StorageError) -> JSONResponse:
        return response_for(exc)

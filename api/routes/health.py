"""Liveness and the warehouse's state."""

from fastapi import APIRouter, Request

router = APIRouter()


@router.get("/healthz")
def read_health(request: Request) -> dict[str, object]:
    """Ok while the warehouse is open; reports the table version and the unflushed tail."""
    return {"status": "ok", "warehouse": request.app.state.warehouse.info()}

"""Liveness and the warehouse's state."""

from fastapi import APIRouter, Request

from api.adapters.models import workers

router = APIRouter()


@router.get("/healthz")
async def read_health(request: Request) -> dict[str, object]:
    """Ok while the warehouse is open; reports the table version and the unflushed tail.

    `warm` turns true once the server has loaded the model library in the background (a few
    seconds after start-up); until then requests are answered, but the first may be slower.
    `runs_in_flight` counts the turns running now, whatever writes them; `model_workers`, the
    processes that take litellm calls while the server is busy, the calls they have taken and
    those queued for a slot (api/adapters/models/workers.py; none start until two turns overlap).
    """
    state = request.app.state
    return {
        "status": "ok",
        "warm": state.warm.is_set(),
        "runs_in_flight": state.runner.in_flight,
        "model_workers": workers.status(),
        "warehouse": state.warehouse.info(),
    }

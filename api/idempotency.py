"""`Idempotency-Key` on POSTs: a retried request gets the first answer, with no second effect.

Answers are kept in memory for 24 hours (or the 10,000 newest), per tenant and key. A
retry that arrives while the first request is still running waits for its answer. The
same key with a different request is a 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from api.errors import ApiError

Answer = tuple[int, Any]
TTL_S = 24 * 3600
CAPACITY = 10_000


class IdempotencyCache:
    """First answers by (tenant, key)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, float, asyncio.Future[Answer]]] = OrderedDict()

    async def answer(
        self, tenant_id: str, key: str | None, request: Any, produce: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """`produce()` once per key; later calls with the same key and request get its answer."""
        if key is None:
            return await produce()
        if len(key) > 255:
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is at most 255 characters")
        digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        self._expire()
        entry = self._entries.get((tenant_id, key))
        if entry is not None:
            if entry[0] != digest:
                raise ApiError(
                    409, "idempotency_conflict", "this Idempotency-Key was used with another request"
                )
            return await asyncio.shield(entry[2])
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._entries[(tenant_id, key)] = (digest, time.monotonic(), future)
        try:
            answer = await produce()
        except ApiError as exc:
            if exc.status >= 500 or exc.status == 429:  # worth a retry: forget the key
                del self._entries[(tenant_id, key)]
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
                raise
            answer = (exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except BaseException:
            del self._entries[(tenant_id, key)]
            future.cancel()
            raise
        future.set_result(answer)
        return answer

    def _expire(self) -> None:
        now = time.monotonic()
        while self._entries:
            key, (_, at, future) = next(iter(self._entries.items()))
            if now - at < TTL_S and len(self._entries) <= CAPACITY:
                break
            if not future.done():
                break
            del self._entries[key]

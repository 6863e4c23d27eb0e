"""A lean HTTP/1.1 keep-alive client for load generation: one connection, one request at a time.

httpx costs a few hundred microseconds of Python per request, which on a 2-core machine is CPU
taken from the server being measured; like wrk, this writes pre-built request bytes and reads
just enough of the answer (status, Content-Length, body). It speaks only what `cerver serve`
answers: HTTP/1.1 with Content-Length (no chunked bodies).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class Connection:
    """One keep-alive connection to `url`'s host; `post(path, body)` -> (status, body bytes)."""

    def __init__(self, url: str, headers: dict[str, str]):
        split = urlsplit(url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        lines = [f"{k}: {v}" for k, v in {"Host": f"{self.host}:{self.port}", **headers}.items()]
        self._head = "\r\n".join(lines).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        request = b"POST %s HTTP/1.1\r\n%s\r\nContent-Length: %d\r\n\r\n" % (
            path.encode(),
            self._head,
            len(body),
        )
        self._writer.write(request + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self._reader.readexactly(length)
        if b"connection: close" in head.lower():
            await self.close()
        return status, answer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

"""The relay's wire format, shared by the server's hub and the relay process.

One WebSocket per relay. Text frames are JSON messages:

- relay -> server, first: `{"type": "hello", "name", "root", "version", "clis"}` (`clis`: the
  agent CLIs it found, e.g. `["claude", "codex"]`); the server answers
  `{"type": "ready", "tenant", "name"}` (the tenant is the relay token's).
- server -> relay: requests `{"id", "op", "ws", ...}` with `op` one of exec, exec_lines,
  write_file, read_file, snapshot, restore, stop, cli_home; and `{"id", "op": "cancel"}` to
  abandon one. `cli_home` `{"harness", "binary", "files", "glob"}` asks for an agent CLI's place
  on the relay's machine: the result is `{"binary", "home", "env", "resumable"}` (see
  api/adapters/harness/place.py), or `{"binary": null, "missing"}` when it has no such CLI.
- relay -> server: `{"id", "type": "line", "line"}` (exec_lines), then exactly one
  `{"id", "type": "result", "value"}` or `{"id", "type": "error", "code", "message"}`.

Binary frames carry file and tarball bytes in chunks of at most `base.CHUNK`: 8 bytes of request
id (big-endian) then the data. Uploads (write_file, restore) follow their request and end with
an empty chunk; downloads (read_file, snapshot) come before their result. Nothing is base64
except an exec's stdin, which is small.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = 1
ID_BYTES = 8
MAX_FRAME = 16 << 20  # larger than a chunk plus headers, and an exec's stdin in base64
PATH = "/v2/relay"
REPLACED = (
    4001  # close code for a relay pushed off by a newer one of its name: it stops instead of redialling
)


def encode(**fields: Any) -> str:
    """A text frame."""
    return json.dumps(fields, separators=(",", ":"))


def data_frame(request_id: int, chunk: bytes) -> bytes:
    """A binary frame: the request id, then the chunk (empty: the end of an upload)."""
    return request_id.to_bytes(ID_BYTES, "big") + chunk


def parse_data_frame(frame: bytes) -> tuple[int, bytes]:
    """(request id, chunk) of a binary frame."""
    return int.from_bytes(frame[:ID_BYTES], "big"), frame[ID_BYTES:]


def socket_url(server: str) -> str:
    """The relay endpoint of a server given as http(s)://host:port (or already ws(s)://)."""
    base = server.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(plain):
            base = secure + base[len(plain) :]
    if not base.startswith(("ws://", "wss://")):
        base = "ws://" + base
    return base if base.endswith(PATH) else base + PATH

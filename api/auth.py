"""API tokens: minted once, stored as hashes in the data folder, mapped to tenants."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from pathlib import Path

DEFAULT_TENANT = "default"
PREFIX = "cvr_"


def bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """`<data>/api/tokens.jsonl`: one line per token, `{sha256, tenant, created}`.

    The file is re-read whenever it changes, so a token minted by `cerver tokens
    create` in another process works at once. `CERVER_API_TOKEN` names the default
    tenant's token without storing anything.
    """

    def __init__(self, data: Path):
        self.path = data / "api" / "tokens.jsonl"
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._tenants: dict[str, str] = {}

    def create(self, tenant: str) -> str:
        """Mint a token for `tenant`; only its hash is kept. Returns the token (shown once)."""
        if not tenant or len(tenant) > 128 or not tenant.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a tenant is 1-128 letters, digits, '-' or '_'")
        token = PREFIX + secrets.token_urlsafe(32)
        line = json.dumps({"sha256": _digest(token), "tenant": tenant, "created": int(time.time())})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return token

    def any(self) -> bool:
        """Whether any token can authenticate (stored or from the environment)."""
        return bool(os.environ.get("CERVER_API_TOKEN")) or bool(self._load())

    def tenant_for(self, token: str) -> str | None:
        """The tenant a presented token belongs to, or None."""
        env = os.environ.get("CERVER_API_TOKEN")
        if env and hmac.compare_digest(token.encode(), env.encode()):
            return DEFAULT_TENANT
        return self._load().get(_digest(token))

    def _load(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._seen != (stat.st_mtime_ns, stat.st_size):
                tenants = {}
                for line in self.path.read_text().splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        tenants[entry["sha256"]] = entry["tenant"]
                self._tenants, self._seen = tenants, (stat.st_mtime_ns, stat.st_size)
            return self._tenants

"""Where a warehouse lives: its table at a URL (a folder or `s3://bucket/prefix`), its log on local disk.

The table, and every Parquet file in it, is reached the same way wherever it is: Delta
(`deltalake`) through its own object store, DuckDB and pyarrow through one filesystem each
(the local disk, or pyarrow's S3 filesystem, which DuckDB reads through an fsspec wrapper
registered on the connection: no DuckDB extension is downloaded at run time). S3 settings
come from the standard variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
(or AWS_DEFAULT_REGION) and, for an S3-compatible server, AWS_ENDPOINT_URL.

The log, its LOCK and its WRITER_ID stay on local disk, in the local folder: `wal`, else
`$CERVER_WAL`, else the data folder itself for a local table (as before) and `./cerver-wal`
for a table in object storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from warehouse.errors import WarehouseError

REMOTE_SCHEMES = ("s3",)
DEFAULT_REMOTE_WAL = "cerver-wal"
TABLE = "events"


@dataclass(frozen=True)
class Location:
    """A warehouse's two places: the table's URL (`table_uri`) and the local folder for its log."""

    url: str
    local: Path
    scheme: str = "file"

    @property
    def remote(self) -> bool:
        """Whether the table is in object storage."""
        return self.scheme != "file"

    @property
    def table_uri(self) -> str:
        """The Delta table: `<url>/events`."""
        return f"{self.url.rstrip('/')}/{TABLE}"

    def delta_options(self) -> dict[str, str]:
        """Storage options for `deltalake` (the credentials it reads from the environment itself).

        S3 commits use conditional puts (`If-None-Match: *` on the log entry), so two writers can
        never both create version N: the loser re-reads the log and retries at N+1. Set here
        rather than left to the library's default, so a change of default cannot undo it.
        """
        if not self.remote:
            return {}
        options = {"conditional_put": "etag"}
        if _endpoint().startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
        return options

    def arrow_filesystem(self) -> Any:
        """The pyarrow filesystem holding the table's files, each reached by `path_of(uri)`."""
        if not self.remote:
            import pyarrow.fs as pafs

            return pafs.LocalFileSystem()
        return _s3_filesystem()

    def path_of(self, uri: str) -> str:
        """A file's path on `arrow_filesystem()`: `bucket/key` on S3, a plain path locally."""
        if self.remote:
            return uri.split("://", 1)[1]
        return uri.removeprefix("file://")

    def connect_duckdb(self, con: Any) -> Any:
        """Let DuckDB connection `con` read the table's files by URI (a no-op for a local table)."""
        if self.remote:
            con.register_filesystem(_duckdb_filesystem())
        return con


LOCAL_FILES = Location("/", Path("/"))  # files named by absolute paths on this machine


def locate(url: str | os.PathLike[str], wal: str | os.PathLike[str] | None = None) -> Location:
    """Parse a warehouse URL and pick its local folder (see the module's docstring)."""
    text = os.fspath(url)
    wal_text = os.fspath(wal) if wal is not None else os.environ.get("CERVER_WAL") or None
    scheme = urlsplit(text).scheme if "://" in text else "file"
    if scheme == "file":
        root = Path(text.removeprefix("file://")).expanduser().absolute()
        local = Path(wal_text).expanduser().absolute() if wal_text else root
        return Location(str(root), local)
    if scheme not in REMOTE_SCHEMES:
        raise WarehouseError(
            f"{text}: {scheme}:// is not a storage this version supports; use a local folder or s3://bucket/prefix"
        )
    if not urlsplit(text).netloc:
        raise WarehouseError(f"{text}: expected s3://bucket[/prefix]")
    local = Path(wal_text or DEFAULT_REMOTE_WAL).expanduser().absolute()
    return Location(text.rstrip("/"), local, scheme)


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


_filesystems: dict[tuple[str, str | None], Any] = {}


def _s3_filesystem() -> Any:
    """pyarrow's S3 filesystem for the environment's endpoint and region (one per process and setting)."""
    key = (_endpoint(), _region())
    fs = _filesystems.get(key)
    if fs is None:
        import pyarrow.fs as pafs

        endpoint, region = key
        options: dict[str, Any] = {"region": region} if region else {}
        if endpoint:
            parts = urlsplit(endpoint)
            options.update(endpoint_override=parts.netloc or parts.path, scheme=parts.scheme or "https")
        fs = _filesystems[key] = pafs.S3FileSystem(**options)
    return fs


def _duckdb_filesystem() -> Any:
    """The S3 filesystem wrapped for DuckDB (fsspec), answering `s3://` paths."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class S3Files(ArrowFSWrapper):  # DuckDB routes a path to the filesystem naming its scheme
        protocol = ("s3", "s3a")

    return S3Files(_s3_filesystem())

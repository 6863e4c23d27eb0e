"""A real S3-compatible server on loopback (moto in server mode), started by the tests that need it.

`endpoint()` starts one `moto.server` process the first time a test asks (stopped when the
test run ends); `new_bucket` gives a test its own fresh bucket and points the standard AWS
variables at the server, exactly as a deployment would point them at S3. A test module
wraps it in its own `s3_url` fixture.
"""

from __future__ import annotations

import atexit
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.server import free_port

_buckets = itertools.count()
_server: tuple[subprocess.Popen[bytes], str] | None = None


def endpoint() -> str:
    """The URL of the moto S3 server on a loopback port (started on first use)."""
    global _server
    if _server is not None and _server[0].poll() is None:
        return _server[1]
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    atexit.register(_stop, process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto did not start:\n{Path(log.name).read_text()}") from None
            time.sleep(0.1)
    _server = (process, url)
    return url


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def aws_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables for `endpoint` (moto takes any credentials)."""
    return {
        "AWS_ACCESS_KEY_ID": "cerver-test",
        "AWS_SECRET_ACCESS_KEY": "cerver-test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def new_bucket(monkeypatch: pytest.MonkeyPatch) -> str:
    """`s3://<a new bucket>/warehouse`, with the AWS variables set (for this test) to reach it."""
    for name, value in aws_env(endpoint()).items():
        monkeypatch.setenv(name, value)
    bucket = f"cerver-test-{next(_buckets)}-{time.monotonic_ns()}"
    s3_client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/warehouse"


def s3_client() -> object:
    """A boto3 S3 client from the environment (for looking at the bucket from outside)."""
    import boto3

    return boto3.client("s3")


def keys(url: str) -> list[str]:
    """Every object key under `url` (s3://bucket/prefix)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]

"""An S3-compatible bucket for the tests: moto in server mode, one per test session.

Loaded for the whole session by `pytest_plugins` in tests/conftest.py; also used by
bench/storage_cost.py (`moto_s3`).

The `s3` fixture starts `moto.server.ThreadedMotoServer` on 127.0.0.1, creates a bucket
and points this process, and every process it starts (workers, render processes), at it
with the standard AWS variables, which s3fs honours through botocore:

    AWS_ENDPOINT_URL_S3     the endpoint (botocore's service-specific endpoint variable)
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION   dummy values

So `REPORTRUNNER_OUTPUT_URL=s3://<bucket>/<prefix>` needs no code-level options. Each
test takes its own prefix (`s3_url`), so tests never see each other's objects. The
server counts the requests it answers (`S3Endpoint.requests`), whoever sends them.

Without moto or s3fs the fixture skips with the reason, except under CI (`CI=true`),
where these tests must run.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

BUCKET = "reportrunner-test"
REGION = "us-east-1"  # moto's default: a bucket needs no location constraint there


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the S3 tests: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # /<bucket>/<key>
    query: str


@dataclass
class RequestLog:
    """Every request the server answered, in order (thread-safe)."""

    entries: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: Request) -> None:
        with self._lock:
            self.entries.append(request)

    def mark(self) -> int:
        with self._lock:
            return len(self.entries)

    def since(self, mark: int = 0, prefix: str | None = None) -> list[Request]:
        """The requests after `mark`; with `prefix`, only those under /<bucket>/<prefix>
        (object requests by key, listings by their `prefix=` parameter)."""
        with self._lock:
            found = self.entries[mark:]
        if prefix is None:
            return found
        return [r for r in found if prefix in r.path or f"prefix={prefix}" in r.query]


def _counting(app: Any, log: RequestLog) -> Any:
    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        log.add(
            Request(
                environ.get("REQUEST_METHOD", "?"),
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
            )
        )
        return app(environ, start_response)

    return counted


@dataclass
class S3Endpoint:
    """A running moto S3 server with one bucket."""

    url: str  # http://127.0.0.1:<port>
    bucket: str
    requests: RequestLog

    def env(self) -> dict[str, str]:
        """What a process needs to reach the bucket through s3fs."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance for credentials
        }

    def output_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix` (relative to it), sorted."""
        start = prefix.rstrip("/") + "/" if prefix else ""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=start)
        )
        return sorted(o["Key"][len(start) :] for page in pages for o in page.get("Contents", []))


@contextmanager
def moto_s3(bucket: str = BUCKET) -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 (a free port), create `bucket`, stop at exit.

    The caller sets `endpoint.env()` where s3fs should find it (the fixture below puts
    it in os.environ for the whole session).
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    log = RequestLog()

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            pass  # one stderr line per request otherwise

    class CountingMotoServer(ThreadedMotoServer):
        # ThreadedMotoServer's own server, with the request log in front of the app.
        def _server_entry(self) -> None:
            app = _counting(DomainDispatcherApplication(create_backend_app), log)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=QuietHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    # Port 0: the kernel picks a free port as the server binds, so no other process can
    # take it between choosing and binding (free_port()'s window).
    server = CountingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = S3Endpoint(url=f"http://{host}:{port}", bucket=bucket, requests=log)
        endpoint.client().create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    """The session's S3 bucket (moto); its endpoint and dummy credentials in os.environ."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        _unavailable(f"S3 tests need moto[server] and s3fs (requirements-dev.lock): {exc}")
    with moto_s3() as endpoint, pytest.MonkeyPatch.context() as patch:
        for name, value in endpoint.env().items():
            patch.setenv(name, value)  # workers and render processes inherit it
        yield endpoint


@pytest.fixture
def s3_url(s3) -> str:
    """A fresh output root in the session's bucket: s3://<bucket>/<unique prefix>."""
    return s3.output_url(f"t-{uuid.uuid4().hex[:10]}")

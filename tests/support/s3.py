"""A real S3 endpoint for tests: moto's server on 127.0.0.1, started once per session.

Tests reach it over HTTP through s3fs with the ``storage_options`` of :class:`MotoS3`, never
through patched clients. When the server cannot start, tests are skipped with a message saying
how to enable them, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NoReturn

import pytest

START_TIMEOUT = 15.0
ENABLE_HINT = (
    "install the development extras (`.venv/bin/pip install -e '.[dev]'`, which brings "
    "moto[server] and s3fs) to run the S3 tests; under CI=true this is a failure"
)


@dataclass(frozen=True)
class MotoS3:
    """A running moto S3 server: where it listens and the options s3fs needs to reach it."""

    endpoint_url: str
    storage_options: Mapping[str, Any] = field(repr=False)

    @cached_property
    def admin(self) -> Any:
        """An s3fs filesystem on the server, for arranging and inspecting tests."""
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options, skip_instance_cache=True)

    def create_bucket(self, prefix: str = "fittwin") -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.admin.call_s3("create_bucket", Bucket=name)
        return name


def moto_storage_options(endpoint_url: str) -> dict[str, Any]:
    """s3fs options for a moto endpoint (moto accepts any credentials).

    Every filesystem made with these options shares one aiobotocore session, which keeps the
    service model loaded: a new S3 client then costs milliseconds instead of a tenth of a second.
    """
    from aiobotocore.session import AioSession

    return {
        "endpoint_url": endpoint_url,
        "key": "fittwin-test-key",
        "secret": "fittwin-test-secret",
        "client_kwargs": {"region_name": "us-east-1"},
        "session": AioSession(),
    }


def service_unavailable(reason: str) -> NoReturn:
    """Skip the tests that need S3, or fail them under ``CI=true``."""
    message = f"moto S3 server unavailable: {reason}; {ENABLE_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def start_moto_s3() -> tuple[Any, MotoS3]:
    """Start moto's threaded server on a free port of 127.0.0.1 and check that it answers.

    Returns the server (call ``stop()`` when done) and its :class:`MotoS3`. Raises when the
    server cannot be imported, started within :data:`START_TIMEOUT` seconds, or reached.
    """
    from moto.server import ThreadedMotoServer

    # moto's request log would flood the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits without a time limit for a server that may never come up: bound the wait.
    starter = threading.Thread(target=server.start, name="moto-s3-start", daemon=True)
    starter.start()
    starter.join(START_TIMEOUT)
    if starter.is_alive():
        raise TimeoutError(f"moto did not start within {START_TIMEOUT:g} s")
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    options = moto_storage_options(endpoint_url)
    service = MotoS3(endpoint_url=endpoint_url, storage_options=options)
    try:
        service.admin.call_s3("list_buckets")
    except Exception:
        server.stop()
        raise
    return server, service


def moto_s3_session() -> Iterator[MotoS3]:
    """Body of a session fixture: a running moto S3 server, stopped at the end of the session."""
    try:
        server, service = start_moto_s3()
    except Exception as exc:
        service_unavailable(f"{type(exc).__name__}: {exc}")
    try:
        yield service
    finally:
        server.stop()

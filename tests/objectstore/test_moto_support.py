"""The rule for tests that need moto's S3 server: skip locally, fail under CI=true."""

from __future__ import annotations

import pytest

from tests.support.s3 import MotoS3, service_unavailable


def test_an_unavailable_server_skips_with_a_hint_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception) as skipped:
        service_unavailable("port in use")

    assert "port in use" in str(skipped.value)
    assert "pip install -e '.[dev]'" in str(skipped.value)


def test_an_unavailable_server_fails_the_run_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception) as failed:
        service_unavailable("port in use")

    assert "port in use" in str(failed.value)


@pytest.mark.s3
def test_the_server_listens_on_loopback_and_creates_fresh_buckets(moto_s3: MotoS3) -> None:
    assert moto_s3.endpoint_url.startswith("http://127.0.0.1:")

    first, second = moto_s3.create_bucket(), moto_s3.create_bucket()

    assert first != second
    assert moto_s3.admin.exists(first)
    assert moto_s3.admin.ls(first) == []

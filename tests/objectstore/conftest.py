"""Fixtures for the object store tests: moto's S3 server and fresh buckets on it."""

from __future__ import annotations

import uuid

import pytest

from tests.support.s3 import MotoS3


@pytest.fixture(scope="session")
def s3_buckets(moto_s3: MotoS3) -> dict[str, str]:
    """Two buckets, one per test region (``eu``, ``us``), shared by the session's tests."""
    return {region: moto_s3.create_bucket(f"fittwin-{region}") for region in ("eu", "us")}


@pytest.fixture
def s3_urls(s3_buckets: dict[str, str]) -> dict[str, str]:
    """A fresh, empty prefix in each region's bucket: ``{region: "s3://bucket/prefix"}``."""
    prefix = f"media-{uuid.uuid4().hex}"
    return {region: f"s3://{bucket}/{prefix}" for region, bucket in s3_buckets.items()}

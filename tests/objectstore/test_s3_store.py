"""FsspecObjectStore on S3 (moto's server, over HTTP through s3fs) beyond the contract."""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from fittwin_adapters.objectstore import FsspecObjectStore, InterruptedObjectStore, checksum
from fittwin_core.domain.errors import ConfigurationError, NotFound, StoreUnavailable
from fittwin_core.testing.contract.objects import fetch
from tests.support.s3 import MotoS3

pytestmark = pytest.mark.s3

KEY = "avatars/0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f/v3.glb"
MESH = "model/gltf-binary"


@pytest.fixture
def store(s3_urls: dict[str, str], moto_s3: MotoS3) -> FsspecObjectStore:
    return FsspecObjectStore(s3_urls, default_region="eu", storage_options=moto_s3.storage_options)


def s3_path(url: str, key: str) -> str:
    return f"{url.removeprefix('s3://')}/{key}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_each_region_writes_to_its_own_bucket(
    store: FsspecObjectStore, s3_urls: dict[str, str], moto_s3: MotoS3
) -> None:
    store.put(KEY, b"eu mesh", region="eu")

    assert moto_s3.admin.cat_file(s3_path(s3_urls["eu"], KEY)) == b"eu mesh"
    assert not moto_s3.admin.exists(s3_path(s3_urls["us"], KEY))

    store.put(KEY, b"us mesh", region="us")

    assert moto_s3.admin.cat_file(s3_path(s3_urls["us"], KEY)) == b"us mesh"
    assert moto_s3.admin.cat_file(s3_path(s3_urls["eu"], KEY)) == b"eu mesh"


def test_content_type_and_checksum_are_object_metadata(
    store: FsspecObjectStore, s3_urls: dict[str, str], moto_s3: MotoS3
) -> None:
    store.put(KEY, b"mesh", content_type=MESH)

    bucket, object_key, _ = moto_s3.admin.split_path(s3_path(s3_urls["eu"], KEY))
    head = moto_s3.admin.call_s3("head_object", Bucket=bucket, Key=object_key)
    assert head["ContentType"] == MESH
    assert head["Metadata"] == {"sha256": checksum(b"mesh").removeprefix("sha256:")}
    # No sidecar records on S3: the object is the only thing under the prefix.
    assert moto_s3.admin.find(s3_urls["eu"].removeprefix("s3://")) == [s3_path(s3_urls["eu"], KEY)]


def test_an_object_uploaded_by_another_tool_is_described_from_its_bytes(
    store: FsspecObjectStore, s3_urls: dict[str, str], moto_s3: MotoS3
) -> None:
    moto_s3.admin.pipe_file(
        s3_path(s3_urls["eu"], "imports/photo.jpg"), b"\xff\xd8 jpeg", ContentType="image/jpeg"
    )

    described = store.info("imports/photo.jpg")

    assert described.checksum == checksum(b"\xff\xd8 jpeg")
    assert described.size == 7
    assert described.content_type == "image/jpeg"


def test_presigned_urls_are_sigv4_and_carry_the_lifetime(store: FsspecObjectStore) -> None:
    store.put(KEY, b"mesh", content_type=MESH)

    url = store.signed_url(KEY, expires_in=90)

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["90"]
    assert fetch(url) == b"mesh"


def test_a_silently_truncated_upload_is_caught_and_removed(s3_urls: dict[str, str], moto_s3: MotoS3) -> None:
    store = InterruptedObjectStore(
        s3_urls, default_region="eu", storage_options=moto_s3.storage_options, fail_after=10, silent=True
    )

    with pytest.raises(StoreUnavailable, match="not stored as sent"):
        store.put(KEY, bytes(100), content_type=MESH)

    assert store.interrupted == 1
    assert not moto_s3.admin.exists(s3_path(s3_urls["eu"], KEY))


def test_another_store_on_the_same_bucket_sees_puts_and_deletes_at_once(
    store: FsspecObjectStore, s3_urls: dict[str, str], moto_s3: MotoS3
) -> None:
    other = FsspecObjectStore(s3_urls, default_region="eu", storage_options=moto_s3.storage_options)
    assert not other.exists(KEY)

    store.put(KEY, b"first")
    assert other.exists(KEY)
    assert other.info(KEY).checksum == checksum(b"first")

    store.put(KEY, b"second, longer")
    assert other.info(KEY).checksum == checksum(b"second, longer")

    store.delete(KEY)
    assert not other.exists(KEY)
    with pytest.raises(NotFound):
        other.info(KEY)


def test_listings_cached_by_other_s3fs_users_do_not_make_answers_stale(
    store: FsspecObjectStore, s3_urls: dict[str, str], moto_s3: MotoS3
) -> None:
    import s3fs

    store.put(KEY, b"mesh")
    # Code elsewhere in the process lists the prefix with an s3fs of the same options (a cached
    # instance with a listings cache), then the object is deleted by someone else.
    lister = s3fs.S3FileSystem(**moto_s3.storage_options, config_kwargs={"signature_version": "s3v4"})
    folder = s3_path(s3_urls["eu"], KEY).rsplit("/", 1)[0]
    assert lister.ls(folder) == [s3_path(s3_urls["eu"], KEY)]
    moto_s3.admin.rm_file(s3_path(s3_urls["eu"], KEY))

    assert not store.exists(KEY)
    with pytest.raises(NotFound):
        store.info(KEY)


def test_a_missing_bucket_is_a_configuration_error_for_writes_and_absence_for_reads(
    moto_s3: MotoS3,
) -> None:
    store = FsspecObjectStore("s3://fittwin-no-such-bucket/media", storage_options=moto_s3.storage_options)

    with pytest.raises(ConfigurationError, match="missing bucket"):
        store.put(KEY, b"mesh")
    with pytest.raises(NotFound):
        store.get(KEY)
    assert not store.exists(KEY)
    store.delete(KEY)


OPERATIONS: dict[str, Callable[[FsspecObjectStore], Any]] = {
    "put": lambda store: store.put(KEY, b"mesh"),
    "get": lambda store: store.get(KEY),
    "info": lambda store: store.info(KEY),
    "exists": lambda store: store.exists(KEY),
    "delete": lambda store: store.delete(KEY),
    "signed_url": lambda store: store.signed_url(KEY),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unreachable_endpoint_is_store_unavailable_without_secrets(operation: str) -> None:
    secret = "fittwin-secret-value-not-for-logs"
    store = FsspecObjectStore(
        "s3://fittwin-media/prefix",
        storage_options={
            "endpoint_url": f"http://127.0.0.1:{closed_port()}",
            "key": "fittwin-key-id",
            "secret": secret,
            "client_kwargs": {"region_name": "us-east-1"},
            # Fail fast: one attempt, short connect timeout.
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        },
    )

    with pytest.raises(StoreUnavailable) as failed:
        OPERATIONS[operation](store)

    assert failed.value.__cause__ is not None
    assert secret not in str(failed.value)
    assert secret not in repr(store)

"""FsspecObjectStore beyond the contract, on memory:// and file://: where bytes and records
land, configuration, failures the store must catch itself, and folder housekeeping."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from fittwin_adapters.objectstore import (
    FsspecObjectStore,
    InjectedUploadFailure,
    InterruptedObjectStore,
    checksum,
)
from fittwin_core.domain.errors import ConfigurationError, NotFound, StoreUnavailable, ValidationError
from fittwin_core.ports import StoredObject

KEY = "avatars/0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f/v2.glb"
MESH = "model/gltf-binary"


def memory_url(name: str = "media") -> str:
    return f"memory://fittwin-{uuid.uuid4().hex}/{name}"


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty location on each file-like backend."""
    return memory_url() if request.param == "memory" else (tmp_path / "media").as_uri()


def plain(url: str) -> tuple[Any, str]:
    """An ordinary fsspec filesystem and root path for ``url``, to look behind the store's back."""
    options = {"auto_mkdir": True} if url.startswith("file:") else {}
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
    return fs, root.rstrip("/")


# ----------------------------------------------------------------------------- where things land


def test_each_region_writes_under_its_own_url(tmp_path: Path) -> None:
    urls = {"eu": memory_url("eu-media"), "us": (tmp_path / "us-media").as_uri()}
    store = FsspecObjectStore(urls, default_region="eu")

    store.put(KEY, b"eu mesh", region="eu")
    store.put(KEY, b"us mesh", region="us")

    eu_fs, eu_root = plain(urls["eu"])
    assert eu_fs.cat_file(f"{eu_root}/{KEY}") == b"eu mesh"
    assert (tmp_path / "us-media" / KEY).read_bytes() == b"us mesh"


def test_an_object_put_without_region_lands_in_the_default_region(tmp_path: Path) -> None:
    urls = {"eu": (tmp_path / "eu").as_uri(), "us": (tmp_path / "us").as_uri()}
    store = FsspecObjectStore(urls, default_region="us")

    store.put(KEY, b"mesh")

    assert (tmp_path / "us" / KEY).read_bytes() == b"mesh"
    assert not (tmp_path / "eu").exists()


def test_a_single_url_serves_every_region(url: str) -> None:
    store = FsspecObjectStore(url)

    store.put(KEY, b"mesh", region="eu")

    assert store.get(KEY, region="ap-south") == b"mesh"
    assert store.get(KEY) == b"mesh"


def test_region_storage_options_apply_to_their_region_only(tmp_path: Path) -> None:
    urls = {"eu": (tmp_path / "eu").as_uri(), "us": (tmp_path / "us").as_uri()}
    store = FsspecObjectStore(urls, default_region="eu", region_storage_options={"us": {"auto_mkdir": False}})

    store.put(KEY, b"mesh", region="eu")
    with pytest.raises(ConfigurationError):
        # Without auto_mkdir the folders for the key do not exist in the us location.
        store.put(KEY, b"mesh", region="us")

    assert (tmp_path / "eu" / KEY).read_bytes() == b"mesh"


def test_a_one_region_map_needs_no_default(tmp_path: Path) -> None:
    store = FsspecObjectStore({"eu": (tmp_path / "eu").as_uri()})

    store.put(KEY, b"mesh")

    assert store.get(KEY, region="eu") == b"mesh"


def test_a_region_must_be_a_string(url: str) -> None:
    store = FsspecObjectStore({"eu": url})

    with pytest.raises(ValidationError) as refused:
        store.get(KEY, region=7)  # type: ignore[arg-type]

    assert refused.value.field == "region"


# ----------------------------------------------------------------------------- records


def test_content_type_and_checksum_live_in_a_sidecar_record(url: str) -> None:
    store = FsspecObjectStore(url)
    store.put(KEY, b"mesh", content_type=MESH)

    fs, root = plain(url)
    (record,) = fs.find(f"{root}/.fittwin-meta")
    assert json.loads(fs.cat_file(record)) == {
        "key": KEY,
        "size": 4,
        "content_type": MESH,
        "checksum": checksum(b"mesh"),
    }
    assert fs.cat_file(f"{root}/{KEY}") == b"mesh"


def test_delete_removes_the_record_too(url: str) -> None:
    store = FsspecObjectStore(url)
    store.put(KEY, b"mesh", content_type=MESH)

    store.delete(KEY)

    fs, root = plain(url)
    assert fs.find(f"{root}/.fittwin-meta") == []


def test_an_object_written_by_another_tool_is_described_from_its_bytes(url: str) -> None:
    fs, root = plain(url)
    fs.pipe_file(f"{root}/imports/photo.jpg", b"\xff\xd8 jpeg bytes")
    store = FsspecObjectStore(url)

    assert store.info("imports/photo.jpg") == StoredObject(
        key="imports/photo.jpg",
        size=13,
        content_type="application/octet-stream",
        checksum=checksum(b"\xff\xd8 jpeg bytes"),
    )


def test_an_object_replaced_behind_the_stores_back_is_not_described_by_the_stale_record(url: str) -> None:
    store = FsspecObjectStore(url)
    store.put(KEY, b"mesh", content_type=MESH)
    fs, root = plain(url)

    fs.pipe_file(f"{root}/{KEY}", b"a longer replacement")

    assert store.info(KEY).checksum == checksum(b"a longer replacement")
    assert store.info(KEY).size == 20


def test_keys_in_the_record_folder_are_refused(url: str) -> None:
    store = FsspecObjectStore(url)

    with pytest.raises(ValidationError) as refused:
        store.put(".fittwin-meta/forged.json", b"{}")

    assert refused.value.field == "key"


# ----------------------------------------------------------------------------- failed uploads


def test_an_interrupted_upload_is_reported_and_cleaned_up(url: str) -> None:
    store = InterruptedObjectStore(url, fail_after=10)

    with pytest.raises(StoreUnavailable) as failed:
        store.put(KEY, bytes(100), content_type=MESH)

    assert isinstance(failed.value.__cause__, InjectedUploadFailure)
    assert store.interrupted == 1
    fs, root = plain(url)
    assert not fs.exists(f"{root}/{KEY}")
    assert fs.find(f"{root}/.fittwin-meta") == []


def test_a_silently_truncated_upload_is_caught_by_the_check_after_writing(url: str) -> None:
    store = InterruptedObjectStore(url, fail_after=10, silent=True)

    with pytest.raises(StoreUnavailable, match="not stored as sent"):
        store.put(KEY, bytes(100))

    assert store.interrupted == 1
    fs, root = plain(url)
    assert not fs.exists(f"{root}/{KEY}")
    assert not store.exists(KEY)


def test_uploads_within_the_limit_or_with_no_limit_go_through(url: str) -> None:
    store = InterruptedObjectStore(url, fail_after=4)

    store.put("small.bin", b"1234")
    store.fail_after = None
    store.put("large.bin", bytes(1000))

    assert store.get("small.bin") == b"1234"
    assert store.get("large.bin") == bytes(1000)
    assert store.interrupted == 0


# ----------------------------------------------------------------------------- folders on disk


def test_delete_removes_folders_it_leaves_empty_but_not_the_root(tmp_path: Path) -> None:
    root = tmp_path / "media"
    store = FsspecObjectStore(root.as_uri())
    store.put("avatars/u1/v1.glb", b"one")
    store.put("avatars/u2/v1.glb", b"two")

    store.delete("avatars/u1/v1.glb")

    assert not (root / "avatars" / "u1").exists()
    assert (root / "avatars" / "u2" / "v1.glb").read_bytes() == b"two"
    store.delete("avatars/u2/v1.glb")
    assert not (root / "avatars").exists()
    assert root.is_dir()


def test_an_empty_folder_left_behind_does_not_block_its_name_as_a_key(tmp_path: Path) -> None:
    root = tmp_path / "media"
    (root / "avatars" / "u1").mkdir(parents=True)
    store = FsspecObjectStore(root.as_uri())

    store.put("avatars/u1", b"mesh")

    assert store.get("avatars/u1") == b"mesh"


# ----------------------------------------------------------------------------- signing


def test_signed_url_lifetime_is_capped_at_seven_days(url: str) -> None:
    store = FsspecObjectStore(url)
    store.put(KEY, b"mesh")

    with pytest.raises(ValidationError) as refused:
        store.signed_url(KEY, expires_in=7 * 24 * 3600 + 1)

    assert refused.value.field == "expires_in"


def test_signing_on_a_backend_that_cannot_sign_names_the_backend(url: str) -> None:
    store = FsspecObjectStore(url)
    store.put(KEY, b"mesh")

    with pytest.raises(ConfigurationError, match=r"(memory|file):// cannot sign URLs"):
        store.signed_url(KEY)


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "bad_url",
    ["relative/media", "/srv/media", "simplecache::memory://media", "nosuchprotocol://media", "s3://", 42],
    ids=repr,
)
def test_urls_that_cannot_work_are_refused_at_construction(bad_url: Any) -> None:
    with pytest.raises(ConfigurationError):
        FsspecObjectStore(bad_url)


@pytest.mark.parametrize(
    ("urls", "options"),
    [
        ({}, {}),
        ({"eu": "memory://a", "us": "memory://b"}, {}),
        ({"eu": "memory://a"}, {"default_region": "us"}),
        ({"eu": "memory://a"}, {"region_storage_options": {"us": {}}}),
        ({"": "memory://a"}, {}),
    ],
    ids=["empty map", "no default", "default without URL", "options for unknown region", "empty name"],
)
def test_region_maps_that_cannot_work_are_refused(urls: dict[str, str], options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        FsspecObjectStore(urls, **options)


def test_default_region_needs_a_region_map() -> None:
    with pytest.raises(ConfigurationError, match="default_region"):
        FsspecObjectStore(memory_url(), default_region="eu")


def test_a_missing_object_is_not_found_even_when_its_location_does_not_exist(tmp_path: Path) -> None:
    store = FsspecObjectStore((tmp_path / "never-created").as_uri())

    with pytest.raises(NotFound):
        store.get(KEY)
    assert not store.exists(KEY)
    store.delete(KEY)


def test_repr_names_the_locations(tmp_path: Path) -> None:
    store = FsspecObjectStore({"eu": (tmp_path / "eu").as_uri(), "us": memory_url()}, default_region="eu")

    text = repr(store)

    assert f"eu='{(tmp_path / 'eu').as_uri()}'" in text
    assert "us='memory://" in text
    assert "default_region='eu'" in text

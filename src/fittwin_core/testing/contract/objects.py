"""The contract every :class:`~fittwin_core.ports.ObjectStore` adapter passes.

Subclass :class:`ObjectStoreContract` once per backend and provide its fixtures::

    class TestMyObjects(ObjectStoreContract):
        @pytest.fixture
        def objects(self):
            return MyObjectStore(...)  # empty, fresh for each test

        @pytest.fixture
        def supports_signing(self):
            return True  # signed_url hands out URLs that urllib can fetch

        @pytest.fixture
        def supports_nested_keys(self):
            return True  # "a" and "a/b" may both hold objects (S3); False where folders exist

Optional fixtures: ``regions`` (names of at least two regions ``objects`` was configured
with, the default one first) and ``interrupted_objects`` (a store over the same storage whose
uploads of more than 16 bytes break part-way). Without them those tests are skipped.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_core.domain.errors import (
    ConfigurationError,
    Conflict,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.ports import ObjectStore, StoredObject

MESH = "model/gltf-binary"
KEY = "avatars/0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f/v1.glb"

INVALID_KEYS: list[Any] = [
    "",
    "/avatars/u1/v1.glb",
    "avatars/../secrets.txt",
    "..",
    ".",
    "./avatars/v1.glb",
    "avatars/./v1.glb",
    "avatars//v1.glb",
    "avatars/",
    "avatars\\u1\\v1.glb",
    "avatars/u1\x00/v1.glb",
    "avatars/u1\n/v1.glb",
    "a" * 1025,
    "avatars/" + "b" * 256,
    "avatars/\ud800.glb",
    None,
    42,
    b"avatars/u1/v1.glb",
]

# Each adapter's subclass runs the same property tests with its own fresh store per test: the
# fixture is function-scoped on purpose, and the "executor" differs by design.
_contract_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)

_segment = st.text(
    alphabet=st.characters(
        categories=["L", "N"], include_characters=" -_.~%+=@,;:!*?#[]()'&$", exclude_characters="\\/"
    ),
    min_size=1,
    max_size=24,
).filter(lambda s: s[0].isalnum())
valid_keys = st.lists(_segment, min_size=1, max_size=4).map("/".join)
"""Keys every object store must accept: relative, ``/``-separated, letters, digits and
punctuation, each segment starting with a letter or digit."""


def sha256(data: bytes) -> str:
    """The checksum an object store reports for ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fetch(url: str) -> bytes:
    """GET ``url`` over HTTP(S) and return the body (raises ``urllib.error.HTTPError`` on 4xx/5xx)."""
    if not url.startswith(("http://", "https://")):
        raise AssertionError(f"a signed URL must be http(s), got {url[:16]!r}...")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (scheme checked above)
        body: bytes = response.read()
    return body


class ObjectStoreContract:
    """Behaviour every object store adapter shares (see the module docstring for the fixtures)."""

    @pytest.fixture
    def regions(self) -> tuple[str, ...]:
        """Regions ``objects`` was configured with, default first; none by default."""
        return ()

    @pytest.fixture
    def interrupted_objects(self) -> ObjectStore:
        """A store over the same storage whose uploads break part-way; none by default."""
        pytest.skip("this adapter offers no way to interrupt an upload")

    # ------------------------------------------------------------------------- round trips

    @_contract_settings
    @given(data=st.binary(max_size=4096), content_type=st.sampled_from([MESH, "image/jpeg", "text/plain"]))
    def test_put_then_get_returns_the_bytes_and_their_description(
        self, objects: ObjectStore, data: bytes, content_type: str
    ) -> None:
        stored = objects.put(KEY, data, content_type=content_type)

        expected = StoredObject(key=KEY, size=len(data), content_type=content_type, checksum=sha256(data))
        assert stored == expected
        assert objects.get(KEY) == data
        assert objects.info(KEY) == expected

    @_contract_settings
    @given(key=valid_keys)
    def test_any_valid_key_round_trips(self, objects: ObjectStore, key: str) -> None:
        data = key.encode()

        objects.put(key, data)

        assert objects.get(key) == data
        assert objects.exists(key)
        objects.delete(key)
        assert not objects.exists(key)

    def test_info_reports_size_content_type_and_checksum(self, objects: ObjectStore) -> None:
        objects.put(KEY, b"glTF\x02\x00\x00\x00", content_type=MESH)

        # A known answer: the checksum is SHA-256 of the bytes, as ``sha256:<lower-case hex>``.
        assert objects.info(KEY) == StoredObject(
            key=KEY,
            size=8,
            content_type=MESH,
            checksum="sha256:dcf563773ad837042cbb81558d2c69438f6bde6c5ffdb162dbfe4751ed357d5f",
        )

    def test_content_type_defaults_to_octet_stream(self, objects: ObjectStore) -> None:
        assert objects.put(KEY, b"\x00\x01").content_type == "application/octet-stream"
        assert objects.info(KEY).content_type == "application/octet-stream"

    def test_an_empty_object_is_an_object(self, objects: ObjectStore) -> None:
        objects.put(KEY, b"", content_type="text/plain")

        assert objects.exists(KEY)
        assert objects.get(KEY) == b""
        assert objects.info(KEY) == StoredObject(
            key=KEY, size=0, content_type="text/plain", checksum=sha256(b"")
        )

    def test_put_replaces_the_object_and_its_description(self, objects: ObjectStore) -> None:
        objects.put(KEY, b"first version, longer", content_type="text/plain")

        objects.put(KEY, b"second", content_type=MESH)

        assert objects.get(KEY) == b"second"
        assert objects.info(KEY) == StoredObject(
            key=KEY, size=6, content_type=MESH, checksum=sha256(b"second")
        )

    # ------------------------------------------------------------------------- presence

    def test_exists_follows_put_and_delete(self, objects: ObjectStore) -> None:
        assert not objects.exists(KEY)
        objects.put(KEY, b"mesh")
        assert objects.exists(KEY)

        objects.delete(KEY)

        assert not objects.exists(KEY)
        with pytest.raises(NotFound):
            objects.get(KEY)
        with pytest.raises(NotFound):
            objects.info(KEY)

    def test_delete_is_idempotent(self, objects: ObjectStore) -> None:
        objects.delete(KEY)
        objects.put(KEY, b"mesh")
        objects.delete(KEY)
        objects.delete(KEY)

        assert not objects.exists(KEY)

    def test_delete_leaves_other_objects_alone(self, objects: ObjectStore) -> None:
        objects.put("avatars/u1/v1.glb", b"one")
        objects.put("avatars/u1/v2.glb", b"two")

        objects.delete("avatars/u1/v1.glb")

        assert objects.get("avatars/u1/v2.glb") == b"two"
        assert objects.info("avatars/u1/v2.glb").checksum == sha256(b"two")

    def test_missing_objects_are_not_found(self, objects: ObjectStore) -> None:
        with pytest.raises(NotFound):
            objects.get(KEY)
        with pytest.raises(NotFound):
            objects.info(KEY)

    def test_a_folder_of_objects_is_not_an_object(self, objects: ObjectStore) -> None:
        objects.put("avatars/u1/v1.glb", b"mesh")

        assert not objects.exists("avatars/u1")
        with pytest.raises(NotFound):
            objects.get("avatars/u1")
        with pytest.raises(NotFound):
            objects.info("avatars/u1")

    def test_nested_keys_hold_separate_objects(
        self, objects: ObjectStore, supports_nested_keys: bool
    ) -> None:
        if not supports_nested_keys:
            pytest.skip("this backend has folders: a key cannot also be a folder")
        objects.put("looks/front", b"folder-like")
        objects.put("looks/front/photo.jpg", b"nested")

        assert objects.get("looks/front") == b"folder-like"
        assert objects.get("looks/front/photo.jpg") == b"nested"

    def test_a_key_cannot_also_be_a_folder(self, objects: ObjectStore, supports_nested_keys: bool) -> None:
        if supports_nested_keys:
            pytest.skip("this backend keeps keys flat: nested keys coexist")
        objects.put("looks/front/photo.jpg", b"nested")
        objects.put("looks/side", b"plain")

        with pytest.raises(Conflict):
            objects.put("looks/front", b"folder-like")
        with pytest.raises(Conflict):
            objects.put("looks/side/photo.jpg", b"under an object")

        assert not objects.exists("looks/front")
        assert objects.get("looks/front/photo.jpg") == b"nested"
        assert objects.get("looks/side") == b"plain"

    # ------------------------------------------------------------------------- bad input

    @pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
    def test_invalid_keys_are_refused_everywhere(self, objects: ObjectStore, key: Any) -> None:
        calls: list[Callable[[], object]] = [
            lambda: objects.put(key, b"x"),
            lambda: objects.get(key),
            lambda: objects.info(key),
            lambda: objects.exists(key),
            lambda: objects.delete(key),
            lambda: objects.signed_url(key),
        ]
        for call in calls:
            with pytest.raises(ValidationError) as refused:
                call()
            assert refused.value.field == "key"

    @pytest.mark.parametrize(
        "content_type", ["", "gltf", "model/", "/gltf", "text/plain\r\nX-Evil: 1", "a/b c", 7, None]
    )
    def test_invalid_content_types_are_refused(self, objects: ObjectStore, content_type: Any) -> None:
        with pytest.raises(ValidationError) as refused:
            objects.put(KEY, b"mesh", content_type=content_type)

        assert refused.value.field == "content_type"
        assert not objects.exists(KEY)

    @pytest.mark.parametrize("data", ["text, not bytes", None, 12, [1, 2]], ids=repr)
    def test_data_must_be_bytes(self, objects: ObjectStore, data: Any) -> None:
        with pytest.raises(ValidationError) as refused:
            objects.put(KEY, data)

        assert refused.value.field == "data"
        assert not objects.exists(KEY)

    # ------------------------------------------------------------------------- signed URLs

    def test_signed_url_serves_the_bytes(self, objects: ObjectStore, supports_signing: bool) -> None:
        if not supports_signing:
            pytest.skip("this backend cannot sign URLs")
        data = bytes(range(256)) * 4
        objects.put(KEY, data, content_type=MESH)

        url = objects.signed_url(KEY, expires_in=120)

        assert fetch(url) == data

    def test_signed_url_of_a_missing_object_is_not_found(
        self, objects: ObjectStore, supports_signing: bool
    ) -> None:
        if not supports_signing:
            pytest.skip("this backend cannot sign URLs")
        with pytest.raises(NotFound):
            objects.signed_url(KEY)

    def test_a_backend_that_cannot_sign_says_so(self, objects: ObjectStore, supports_signing: bool) -> None:
        if supports_signing:
            pytest.skip("this backend signs URLs")
        objects.put(KEY, b"mesh")

        with pytest.raises(ConfigurationError):
            objects.signed_url(KEY)

    @pytest.mark.parametrize("expires_in", [0, -60, 1.5, "60", True, None], ids=repr)
    def test_signed_url_lifetime_must_be_positive_whole_seconds(
        self, objects: ObjectStore, expires_in: Any
    ) -> None:
        objects.put(KEY, b"mesh")

        with pytest.raises(ValidationError) as refused:
            objects.signed_url(KEY, expires_in=expires_in)

        assert refused.value.field == "expires_in"

    # ------------------------------------------------------------------------- regions

    def test_each_region_keeps_its_own_objects(self, objects: ObjectStore, regions: tuple[str, ...]) -> None:
        if len(regions) < 2:
            pytest.skip("needs a store configured with two regions")
        home, away = regions[0], regions[1]
        objects.put(KEY, b"home mesh", region=home)
        objects.put(KEY, b"away mesh, other size", region=away)

        assert objects.get(KEY, region=home) == b"home mesh"
        assert objects.get(KEY, region=away) == b"away mesh, other size"
        objects.delete(KEY, region=away)
        assert not objects.exists(KEY, region=away)
        assert objects.info(KEY, region=home).checksum == sha256(b"home mesh")

    def test_an_object_is_only_in_the_region_it_was_put(
        self, objects: ObjectStore, regions: tuple[str, ...]
    ) -> None:
        if len(regions) < 2:
            pytest.skip("needs a store configured with two regions")
        objects.put(KEY, b"mesh", region=regions[1])

        assert not objects.exists(KEY, region=regions[0])
        with pytest.raises(NotFound):
            objects.get(KEY, region=regions[0])

    def test_no_region_means_the_default_region(self, objects: ObjectStore, regions: tuple[str, ...]) -> None:
        if len(regions) < 2:
            pytest.skip("needs a store configured with two regions")
        objects.put(KEY, b"mesh")

        assert objects.get(KEY, region=regions[0]) == b"mesh"
        assert not objects.exists(KEY, region=regions[1])

    def test_an_unknown_region_is_refused(self, objects: ObjectStore, regions: tuple[str, ...]) -> None:
        if len(regions) < 2:
            pytest.skip("needs a store configured with two regions")
        unknown = "-".join(regions) + "-nowhere"
        calls: list[Callable[[], object]] = [
            lambda: objects.put(KEY, b"mesh", region=unknown),
            lambda: objects.get(KEY, region=unknown),
            lambda: objects.info(KEY, region=unknown),
            lambda: objects.exists(KEY, region=unknown),
            lambda: objects.delete(KEY, region=unknown),
            lambda: objects.signed_url(KEY, region=unknown),
        ]
        for call in calls:
            with pytest.raises(ValidationError) as refused:
                call()
            assert refused.value.field == "region"
            assert unknown in str(refused.value)

    # ------------------------------------------------------------------------- failures

    def test_an_interrupted_upload_leaves_no_object(
        self, objects: ObjectStore, interrupted_objects: ObjectStore
    ) -> None:
        with pytest.raises(StoreUnavailable):
            interrupted_objects.put(KEY, bytes(1000), content_type=MESH)

        assert not objects.exists(KEY)
        with pytest.raises(NotFound):
            objects.get(KEY)

    def test_an_interrupted_replacement_never_leaves_partial_bytes(
        self, objects: ObjectStore, interrupted_objects: ObjectStore
    ) -> None:
        before = objects.put(KEY, b"the previous mesh", content_type=MESH)

        with pytest.raises(StoreUnavailable):
            interrupted_objects.put(KEY, bytes(1000), content_type=MESH)

        if objects.exists(KEY):
            assert objects.get(KEY) == b"the previous mesh"
            assert objects.info(KEY) == before
        else:
            with pytest.raises(NotFound):
                objects.get(KEY)


__all__ = ["INVALID_KEYS", "ObjectStoreContract", "fetch", "sha256", "valid_keys"]

"""Avatars on S3: moto's server on 127.0.0.1, reached over HTTP through s3fs (no patched clients).

Mandatory under ``CI=true``: when moto cannot start there, these tests fail instead of skipping.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.objectstore import FsspecObjectStore, InterruptedObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import AvatarStatus, BodyMetrics, StoreUnavailable
from fittwin_core.ports import ObjectStore, Store
from fittwin_core.services.avatars import mesh_key
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from fittwin_core.testing.contract.objects import fetch
from tests.support.s3 import MotoS3
from tests.support.shop import PASSWORD

pytestmark = pytest.mark.s3

SOURCES = {"measurements": {"chest_cm": 97.0}}


@pytest.fixture(scope="module")
def buckets(moto_s3: MotoS3) -> dict[str, str]:
    """One bucket per region."""
    return {region: moto_s3.create_bucket(f"fittwin-avatars-{region}") for region in ("eu", "us")}


@pytest.fixture
def urls(buckets: dict[str, str]) -> dict[str, str]:
    """A fresh prefix in each region's bucket."""
    prefix = f"media-{uuid.uuid4().hex}"
    return {region: f"s3://{bucket}/{prefix}" for region, bucket in buckets.items()}


@pytest.fixture
def make_ft(store: Store, clock: FrozenClock, ids: SequentialIds) -> Callable[[ObjectStore], FitTwin]:
    keyring = LocalKeyRing.generate()  # every FitTwin made here reads the same store

    def make(objects: ObjectStore) -> FitTwin:
        return connect(
            store,
            objects=objects,
            payments=FakePayments(clock=clock),
            keyring=keyring,
            hasher=Argon2PasswordHasher.owasp_minimum(),
            clock=clock,
            ids=ids,
        )

    return make


def s3_path(url: str, key: str) -> str:
    return f"{url.removeprefix('s3://')}/{key}"


def mesh(n: int) -> bytes:
    return b"glTF" + n.to_bytes(4, "little") + bytes(range(256)) * 8


def shopper(ft: FitTwin, region: str) -> Any:
    return ft.accounts.register(
        f"{region}.ada@example.com",
        PASSWORD,
        f"{region}_ada",
        BodyMetrics(height_cm=168, weight_kg=61),
        consents={"terms": True},
        region=region,
        actor=Actor.anonymous(),
    )


def test_upload_and_presigned_url_serve_the_mesh(
    make_ft: Callable[[ObjectStore], FitTwin], urls: dict[str, str], moto_s3: MotoS3
) -> None:
    ft = make_ft(FsspecObjectStore(urls, default_region="eu", storage_options=moto_s3.storage_options))
    ada = shopper(ft, "us")
    avatar = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=77,
        actor=Actor.system(),
    )

    url = ft.avatars.mesh_url(avatar.id, expires_in=300, actor=Actor.system())

    assert fetch(url) == mesh(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    # The mesh lives in the shopper's region's bucket only.
    key = mesh_key(ada.id, 1)
    assert moto_s3.admin.cat_file(s3_path(urls["us"], key)) == mesh(1)
    assert not moto_s3.admin.exists(s3_path(urls["eu"], key))
    head = moto_s3.admin.info(s3_path(urls["us"], key))
    assert head["ContentType"] == "model/gltf-binary"


def test_regeneration_deletes_the_previous_object(
    make_ft: Callable[[ObjectStore], FitTwin], urls: dict[str, str], moto_s3: MotoS3
) -> None:
    ft = make_ft(FsspecObjectStore(urls, default_region="eu", storage_options=moto_s3.storage_options))
    ada = shopper(ft, "eu")
    first = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )
    old_url = ft.avatars.mesh_url(first.id, actor=Actor.system())

    second = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(2),
        confidence=90,
        actor=Actor.system(),
    )

    moto_s3.admin.invalidate_cache()
    assert not moto_s3.admin.exists(s3_path(urls["eu"], mesh_key(ada.id, 1)))
    assert ft.avatars.get(first.id, actor=Actor.system()).mesh_ref is None
    with pytest.raises(urllib.error.HTTPError):
        fetch(old_url)  # a URL handed out before still points at the deleted object
    assert fetch(ft.avatars.mesh_url(second.id, actor=Actor.system())) == mesh(2)


def test_an_injected_upload_failure_leaves_no_dangling_mesh_ref(
    make_ft: Callable[[ObjectStore], FitTwin], urls: dict[str, str], moto_s3: MotoS3
) -> None:
    objects = InterruptedObjectStore(
        urls, default_region="eu", fail_after=100, storage_options=moto_s3.storage_options
    )
    ft = make_ft(objects)
    ada = shopper(ft, "eu")
    avatar = ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id))

    with pytest.raises(StoreUnavailable):
        ft.avatars.complete(avatar.id, mesh(1), confidence=70, actor=Actor.system())

    assert objects.interrupted == 1
    after = ft.avatars.get(avatar.id, actor=Actor.system())
    assert after.status == AvatarStatus.PROCESSING and after.mesh_ref is None
    moto_s3.admin.invalidate_cache()
    assert not moto_s3.admin.exists(s3_path(urls["eu"], mesh_key(ada.id, 1)))

    failed = ft.avatars.fail(avatar.id, "upload kept failing", actor=Actor.system())
    assert failed.status == AvatarStatus.FAILED and failed.mesh_ref is None


def test_erasure_deletes_the_meshes_from_s3(
    make_ft: Callable[[ObjectStore], FitTwin], urls: dict[str, str], moto_s3: MotoS3
) -> None:
    ft = make_ft(FsspecObjectStore(urls, default_region="eu", storage_options=moto_s3.storage_options))
    ada = shopper(ft, "eu")
    avatar = ft.avatars.complete(
        ft.avatars.request(ada.id, SOURCES, actor=Actor.shopper(ada.id)).id,
        mesh(1),
        confidence=70,
        actor=Actor.system(),
    )

    report = ft.privacy.erase_user(ada.id, actor=Actor.platform(uuid.uuid4()))

    assert report.objects_deleted == 1
    moto_s3.admin.invalidate_cache()
    assert moto_s3.admin.find(urls["eu"].removeprefix("s3://")) == []
    assert ft.avatars.get(avatar.id, actor=Actor.system()).mesh_ref is None

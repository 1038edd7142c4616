"""Regional routing: one store and one media location per region, and a router in front."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    BodyMetrics,
    ConfigurationError,
    Conflict,
    NotFound,
    ValidationError,
    WrongRegion,
)
from fittwin_core.ports import RawRows
from fittwin_core.routing import ShardRouter
from fittwin_core.services.avatars import mesh_key
from fittwin_core.services.base import Settings
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.postgres import TestDatabases
from tests.support.shop import PASSWORD, open_shop

HASHER = Argon2PasswordHasher.owasp_minimum()
MESH = b"glTF" + b"\x02\x00\x00\x00" + b"regional mesh" * 4


def metrics() -> BodyMetrics:
    return BodyMetrics(height_cm=170, weight_kg=65)


VISITOR = Actor.anonymous()


def register(router: ShardRouter, tag: str, region: str) -> Any:
    return router.register(
        f"{tag}@example.com",
        PASSWORD,
        tag,
        metrics(),
        consents={"terms": True},
        name=tag.title(),
        region=region,
        actor=Actor.anonymous(),
    )


def rows(ft: FitTwin, table: str) -> list[dict[str, Any]]:
    store = ft.context.store
    assert isinstance(store, RawRows)
    return store.raw_rows(table)


@pytest.fixture
def media() -> dict[str, str]:
    base = f"memory://fittwin-regions/{uuid.uuid4().hex}"
    return {"eu": f"{base}/eu", "us": f"{base}/us"}


@pytest.fixture
def router(media: dict[str, str]) -> Iterator[ShardRouter]:
    clock = FrozenClock()
    ids = SequentialIds(clock)
    shards = connect(
        regions={"eu": MemoryStore(clock=clock, ids=ids), "us": MemoryStore(clock=clock, ids=ids)},
        object_regions=media,
        keyring=LocalKeyRing.generate(),
        hasher=HASHER,
        payments=FakePayments(clock=clock),
        clock=clock,
        ids=ids,
    )
    yield shards
    shards.close()


def test_each_shoppers_rows_live_only_in_their_region(router: ShardRouter) -> None:
    eve = register(router, "eve", "eu")
    sam = register(router, "sam", "us")
    eu, us = router.for_region("eu"), router.for_region("us")

    eu_ids = {r["id"] for r in rows(eu, "user_profiles")}
    us_ids = {r["id"] for r in rows(us, "user_profiles")}
    assert (eu_ids, us_ids) == ({str(eve.id)}, {str(sam.id)})
    assert {r["owner_id"] for r in rows(eu, "data_keys")} == {str(eve.id)}
    assert (eve.region, sam.region) == ("eu", "us")
    assert router.region_of(eve.id) == "eu" and router.for_user(sam.id) is us
    assert router.for_user(eve.id).accounts.details(eve.id, actor=Actor.shopper(eve.id)).name == "Eve"


def test_media_stays_in_the_shoppers_region(router: ShardRouter, media: dict[str, str]) -> None:
    eve = register(router, "eve", "eu")
    ft = router.for_user(eve.id)
    ft.avatars.complete(
        ft.avatars.request(eve.id, {"quick_estimate": True}, actor=Actor.shopper(eve.id)).id,
        MESH,
        confidence=70,
        actor=Actor.system(),
    )

    fs = fsspec.filesystem("memory")
    eu_files = fs.find(media["eu"].removeprefix("memory://"))
    assert any(path.endswith(mesh_key(eve.id, 1)) for path in eu_files)
    assert fs.find(media["us"].removeprefix("memory://")) == []
    with pytest.raises(ValidationError):  # the eu shard's object store knows no other region
        ft.context.objects.put(mesh_key(eve.id, 9), MESH, region="us")


def test_a_shard_refuses_shoppers_of_other_regions_naming_both(router: ShardRouter) -> None:
    eu, us = router.for_region("eu"), router.for_region("us")
    sam = register(router, "sam", "us")

    with pytest.raises(WrongRegion) as raised:
        eu.accounts.register(
            "zoe@example.com",
            PASSWORD,
            "zoe",
            metrics(),
            consents={"terms": True},
            region="us",
            actor=Actor.anonymous(),
        )
    assert (raised.value.user_region, raised.value.store_region) == ("us", "eu")
    assert "'us'" in str(raised.value) and "'eu'" in str(raised.value)
    assert rows(eu, "user_profiles") == []

    for call in (
        lambda: eu.accounts.details(sam.id, actor=Actor.shopper(sam.id)),
        lambda: eu.avatars.request(sam.id, {"quick_estimate": True}, actor=Actor.shopper(sam.id)),
        lambda: eu.privacy.export_user(sam.id, actor=Actor.shopper(sam.id)),
        lambda: eu.accounts.add_address(
            sam.id,
            type="shipping",
            line1="1 Main St",
            city="Austin",
            postal_code="73301",
            country="US",
            actor=Actor.shopper(sam.id),
        ),
    ):
        with pytest.raises(WrongRegion) as raised:
            call()
        assert (raised.value.user_region, raised.value.store_region, raised.value.user_id) == (
            "us",
            "eu",
            sam.id,
        )
    assert us.accounts.get(sam.id, actor=Actor.shopper(sam.id)).region == "us"


def test_an_order_for_a_shopper_of_another_region_is_refused(router: ShardRouter) -> None:
    eu, us = router.for_region("eu"), router.for_region("us")
    eu_shop = open_shop(eu, "eushop")
    us_shop = open_shop(us, "usshop")
    assert eu_shop.shopper.region == "eu" and us_shop.shopper.region == "us"

    with pytest.raises(WrongRegion) as raised:
        eu_shop.place(
            user_id=us_shop.shopper.id,
            shipping_address_id=us_shop.address.id,
            billing_address_id=us_shop.address.id,
            payment_method_id=us_shop.card.id,
        )

    assert "'us'" in str(raised.value) and "'eu'" in str(raised.value)
    assert rows(eu, "orders") == [] and rows(us, "orders") == []
    order = us_shop.place()
    assert (
        router.for_user(us_shop.shopper.id).orders.get(order.id, actor=Actor.system()).user_id
        == us_shop.shopper.id
    )


def test_unknown_shoppers_and_regions(router: ShardRouter) -> None:
    stranger = uuid.uuid4()
    with pytest.raises(NotFound):
        router.region_of(stranger)
    with pytest.raises(NotFound):
        router.for_region("eu").accounts.get(stranger, actor=Actor.shopper(stranger))
    with pytest.raises(ValidationError):
        router.for_region("apac")
    with pytest.raises(ValidationError):
        router.register("x@example.com", PASSWORD, "x", metrics(), consents={"terms": True}, actor=VISITOR)
    assert router.regions == ("eu", "us") and len(router) == 2


def test_emails_are_unique_across_regions(router: ShardRouter) -> None:
    register(router, "eve", "eu")

    with pytest.raises(Conflict):
        router.register(
            "EVE@example.com",
            PASSWORD,
            "eve2",
            metrics(),
            consents={"terms": True},
            region="us",
            actor=VISITOR,
        )
    assert rows(router.for_region("us"), "user_profiles") == []
    # Usernames are unique within a region only.
    other = router.register(
        "other@example.com", PASSWORD, "eve", metrics(), consents={"terms": True}, region="us", actor=VISITOR
    )
    assert other.region == "us"


def test_sign_in_finds_the_shoppers_region(router: ShardRouter) -> None:
    sam = register(router, "sam", "us")

    assert router.authenticate("SAM@example.com", PASSWORD).id == sam.id
    with pytest.raises(AuthenticationFailed):
        router.authenticate("sam@example.com", "wrong password!")
    with pytest.raises(AuthenticationFailed):
        router.authenticate("nobody@example.com", PASSWORD)


def test_privacy_requests_run_in_the_shoppers_region(router: ShardRouter) -> None:
    eve = register(router, "eve", "eu")
    sam = register(router, "sam", "us")

    exported = router.for_user(eve.id).privacy.export_user(eve.id, actor=Actor.shopper(eve.id))
    router.for_user(sam.id).privacy.erase_user(sam.id, actor=Actor.platform(uuid.uuid4()))

    assert exported["region"] == "eu" and exported["profile"]["name"] == "Eve"
    assert "sam@example.com" not in json.dumps(rows(router.for_region("us"), "user_profiles"))
    assert router.for_user(eve.id).accounts.details(eve.id, actor=Actor.shopper(eve.id)).name == "Eve"


def test_wiring_mistakes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        connect("memory://elsewhere", regions={"eu": "memory://"})
    with pytest.raises(ConfigurationError):
        connect(regions={"eu": "memory://", "us": "memory://"}, object_regions={"eu": "memory://x"})
    with pytest.raises(ConfigurationError):
        connect(regions={})
    with pytest.raises(ConfigurationError):
        connect(object_regions={"eu": "memory://x"})  # type: ignore[call-overload]
    plain = connect()
    assert isinstance(plain, FitTwin) and plain.region is None
    with pytest.raises(ConfigurationError):
        ShardRouter({"eu": plain})
    regional = connect(settings=Settings(region="us"))
    with pytest.raises(ConfigurationError):
        ShardRouter({"eu": regional})
    assert ShardRouter({"us": regional}).regions == ("us",)


def test_a_shard_refuses_a_foreign_shopper_found_in_its_own_store() -> None:
    store = MemoryStore()
    keyring = LocalKeyRing.generate()
    shared = connect(store, keyring=keyring, hasher=HASHER)  # e.g. data imported before sharding
    sam = shared.accounts.register(
        "sam@example.com",
        PASSWORD,
        "sam",
        metrics(),
        consents={"terms": True},
        region="us",
        actor=Actor.anonymous(),
    )
    eu = connect(store, keyring=keyring, hasher=HASHER, settings=Settings(region="eu"))

    with pytest.raises(WrongRegion) as raised:
        eu.accounts.details(sam.id, actor=Actor.shopper(sam.id))

    assert (raised.value.user_region, raised.value.store_region) == ("us", "eu")


def test_a_single_region_deployment_is_unchanged() -> None:
    ft = connect(hasher=HASHER)
    user = ft.accounts.register(
        "one@example.com",
        PASSWORD,
        "one",
        metrics(),
        consents={"terms": True},
        region="eu",
        actor=Actor.anonymous(),
    )
    other = ft.accounts.register(
        "two@example.com", PASSWORD, "two", metrics(), consents={"terms": True}, actor=Actor.anonymous()
    )

    assert (user.region, other.region) == ("eu", "default")
    assert ft.accounts.details(user.id, actor=Actor.shopper(user.id)).profile.region == "eu"


@pytest.mark.postgres
def test_two_postgres_databases_keep_their_regions_apart(postgres_databases: TestDatabases) -> None:
    urls = {"eu": postgres_databases.new_database(), "us": postgres_databases.new_database()}
    clock = FrozenClock()
    try:
        router = connect(
            regions={region: url.render_as_string(hide_password=False) for region, url in urls.items()},
            payments=FakePayments(clock=clock),
            keyring=LocalKeyRing.generate(),
            hasher=HASHER,
            clock=clock,
            ids=SequentialIds(clock),
        )
        with router:
            eve = register(router, "eve", "eu")
            sam = register(router, "sam", "us")
            eu, us = router.for_region("eu"), router.for_region("us")
            assert [r["id"] for r in rows(eu, "user_profiles")] == [str(eve.id)]
            assert [r["id"] for r in rows(us, "user_profiles")] == [str(sam.id)]
            assert router.region_of(sam.id) == "us"
            with pytest.raises(WrongRegion):
                us.accounts.details(eve.id, actor=Actor.shopper(eve.id))
            with pytest.raises(WrongRegion):
                eu.accounts.register(
                    "zoe@example.com",
                    PASSWORD,
                    "zoe",
                    metrics(),
                    consents={"terms": True},
                    region="us",
                    actor=Actor.anonymous(),
                )
            us_shop = open_shop(us, "usshop")
            order = us_shop.place()
            with pytest.raises(WrongRegion):
                eu.orders.place(
                    us_shop.shopper.id,
                    [(us_shop.variants["M"].id, 1)],
                    shipping_address_id=us_shop.address.id,
                    billing_address_id=us_shop.address.id,
                    payment_method_id=us_shop.card.id,
                    actor=Actor.shopper(us_shop.shopper.id),
                )
            assert [r["id"] for r in rows(us, "orders")] == [str(order.id)] and rows(eu, "orders") == []
            assert router.authenticate("eve@example.com", PASSWORD).id == eve.id
    finally:
        for url in urls.values():
            postgres_databases.drop(url)

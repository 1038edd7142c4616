"""Data-subject requests (export, erasure) and retention, on every store backend."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs
import fsspec
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    OrderStatus,
    PaymentMethod,
    PermissionDenied,
    RewardStatus,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.domain.ids import uuid7_datetime
from fittwin_core.domain.rules import thaw_json
from fittwin_core.domain.users import SEALED_PATTERN
from fittwin_core.ports import RawRows, Store, WrappedKey, field_aad
from fittwin_core.schema import TABLES
from fittwin_core.services.avatars import mesh_key
from fittwin_core.services.base import RetentionPolicy
from fittwin_core.services.vault import KeyShredded
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import PASSWORD, Shop, open_shop
from tests.support.snapshots import snapshot

MESH = b"glTF\x02\x00\x00\x00" + b"ada-mesh-0123456789" * 8
PHOTO = b"\xff\xd8\xff\xe0 ada front photo"
STAFF = Actor.platform(uuid.UUID("0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f"))
ADA = {
    "email": "shop.ada@example.com",
    "username": "shop_ada",
    "name": "Ada Lovelace",
    "phone": "+442079460000",
    "line1": "12 Analytical Row",
    "line2": "Flat 3",
    "postal_code": "SW1A1AA",
}


class FlakyDeletes(FsspecObjectStore):
    """An object store whose deletes fail while ``broken`` (the endpoint is unreachable)."""

    broken = False

    def delete(self, key: str, *, region: str | None = None) -> None:
        if self.broken:
            raise StoreUnavailable("the object store is unreachable")
        super().delete(key, region=region)


@attrs.define
class World:
    """A shop with Ada (the data subject) and Bob (another shopper), and what they did."""

    shop: Shop
    objects_url: str
    bob: Any
    ada_orders: list[Any]
    bob_order: Any
    ada_referral: Any
    avatar: Any

    @property
    def ft(self) -> FitTwin:
        return self.shop.ft

    @property
    def ada(self) -> Any:
        return self.shop.shopper


@pytest.fixture
def objects_url() -> str:
    return f"memory://fittwin-privacy/{uuid.uuid4().hex}"


@pytest.fixture
def pft(store: Store, clock: FrozenClock, ids: SequentialIds, objects_url: str) -> Iterator[FitTwin]:
    """FitTwin on the test's store with an object store whose location the test knows."""
    app = connect(
        store,
        objects=FlakyDeletes(objects_url),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    yield app
    app.close()


def deliver_and_close(ft: FitTwin, order: Any) -> Any:
    for move in (
        ft.orders.send_to_brand,
        ft.orders.mark_fulfilled,
        ft.orders.mark_delivered,
        ft.orders.close,
    ):
        order = move(order.id, actor=Actor.system())
    return order


def buy(shop: Shop, who: tuple[Any, Any, Any], rid: str | None = None, size: str = "M") -> Any:
    user, address, card = who
    order = shop.place(
        [(shop.variants[size].id, 1)],
        user_id=user.id,
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        rid=rid,
        idempotency_key=f"{user.username}-{size}-{rid}",
    )
    return shop.pay(order)


@pytest.fixture
def world(pft: FitTwin, objects_url: str) -> World:
    shop = open_shop(pft)
    ft = shop.ft
    ada = shop.shopper
    ft.accounts.update_profile(
        ada.id,
        appearance={"hairColor": "auburn"},
        location={"country": "GB", "region": "London"},
        actor=Actor.shopper(ada.id),
    )
    second = ft.accounts.add_address(
        ada.id,
        type="billing",
        line1=ADA["line1"],
        line2=ADA["line2"],
        city="London",
        postal_code="SW1A 1AA",
        country="GB",
        make_default_billing=True,
        actor=Actor.shopper(ada.id),
    )
    bob, bob_address, bob_card = shop.new_shopper("bob")
    # Ada's avatar: built from a photo, regenerated once.
    photo_key = f"photos/{ada.id}/front.jpg"
    ft.context.objects.put(photo_key, PHOTO, content_type="image/jpeg", region=ada.region)
    sources = {"photos": [{"object_key": photo_key, "content_type": "image/jpeg"}], "measurements": {}}
    ft.avatars.complete(
        ft.avatars.request(ada.id, sources, actor=Actor.shopper(ada.id)).id,
        MESH[:40],
        confidence=60,
        actor=Actor.system(),
    )
    avatar = ft.avatars.complete(
        ft.avatars.request(ada.id, sources, actor=Actor.shopper(ada.id)).id,
        MESH,
        confidence=80,
        actor=Actor.system(),
    )
    # Ada shares a link; Bob clicks and buys through it. Ada buys through Bob's link.
    ada_link = ft.referrals.create(ada.id, actor=Actor.shopper(ada.id))
    ft.referrals.record_click(
        ada_link.rid,
        ip="198.51.100.7",
        user_agent="bob-phone",
        device_fingerprint="b1",
        actor=Actor.anonymous(),
    )
    bob_order = buy(shop, (bob, bob_address, bob_card), ada_link.rid)
    bob_link = ft.referrals.create(bob.id, actor=Actor.shopper(bob.id))
    ft.referrals.record_click(
        bob_link.rid,
        ip="203.0.113.9",
        user_agent="ada-laptop",
        device_fingerprint="a1",
        actor=Actor.anonymous(),
    )
    ada_orders = [
        buy(shop, (ada, shop.address, shop.card), bob_link.rid),
        buy(shop, (ada, second, shop.card), None, size="L"),
    ]
    return World(shop, objects_url, bob, ada_orders, bob_order, ada_link, avatar)


def raw_rows(ft: FitTwin) -> dict[str, list[dict[str, Any]]]:
    store = ft.context.store
    assert isinstance(store, RawRows)
    return {table: store.raw_rows(table) for table in TABLES}


def stored_objects(url: str) -> dict[str, bytes]:
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://")
    return {path: bytes(fs.cat_file(path)) for path in fs.find(root)}


def texts_containing(haystack: str, needles: dict[str, str]) -> list[str]:
    lowered = haystack.lower()
    return [name for name, needle in needles.items() if needle.lower() in lowered]


# ---------------------------------------------------------------------------- export


def test_export_holds_everything_about_the_shopper_and_is_json(world: World) -> None:
    ft, ada = world.ft, world.ada

    exported = ft.privacy.export_user(ada.id, actor=Actor.shopper(ada.id))

    text = json.dumps(exported)
    assert json.loads(text) == exported
    assert exported["profile"]["name"] == ADA["name"] and exported["profile"]["phone"] == ADA["phone"]
    assert exported["profile"]["appearance"] == {"hairColor": "auburn", "eyeColor": None, "skinTone": None}
    assert "password_hash" not in exported["profile"] and "argon2" not in text
    assert {a["line1"] for a in exported["addresses"]} == {"12 Analytical Row", ADA["line1"]}
    assert {a["postal_code"] for a in exported["addresses"]} == {ADA["postal_code"]}
    assert [m["last4"] for m in exported["payment_methods"]] == ["4242"]
    assert "pm_shop_ada" not in text  # provider tokens stay out
    ready = [a for a in exported["avatars"] if a["status"] == "ready" and a["mesh_ref"]]
    assert [a["object_keys"]["mesh"] for a in ready] == [mesh_key(ada.id, 2)]
    assert exported["avatars"][0]["object_keys"]["photos"] == [f"photos/{ada.id}/front.jpg"]
    assert {o["id"] for o in exported["orders"]} == {str(o.id) for o in world.ada_orders}
    assert len(exported["order_items"]) == 2
    assert [r["rid"] for r in exported["referrals"]] == [world.ada_referral.rid]
    kinds = {e["event_type"] for e in exported["referral_events"]}
    assert kinds == {"click", "conversion"}
    assert [e["order_id"] for e in exported["reward_ledger_entries"]] == [str(world.bob_order.id)]
    assert exported["data_keys"] and "wrapped_key" not in exported["data_keys"][0]
    assert {e["entity_id"] for e in exported["event_logs"]} >= {str(o.id) for o in world.ada_orders}
    assert exported["idempotency_keys"]


def test_export_has_a_section_for_every_table_that_refers_to_the_shopper(world: World) -> None:
    exported = world.ft.privacy.export_user(world.ada.id, actor=Actor.shopper(world.ada.id))

    # Tables pointing at user_profiles, directly or through an order or a referral they made.
    owners = {"user_profiles", "orders", "referrals"}
    referring = {t.name for t in TABLES.values() if any(fk.table in owners for fk in t.foreign_keys)}
    referring |= {"event_logs", "data_keys", "idempotency_keys"}
    referring.discard("user_profiles")
    assert referring <= set(exported)
    assert [name for name in sorted(referring) if not exported[name]] == []


def test_only_the_shopper_or_staff_may_export(world: World) -> None:
    ft = world.ft
    with pytest.raises(PermissionDenied):
        ft.privacy.export_user(world.ada.id, actor=Actor.shopper(world.bob.id))

    ft.privacy.export_user(world.ada.id, actor=STAFF)

    (logged,) = ft.audit.events(action="user.export", actor_id=STAFF.id, actor=Actor.system()).items
    assert logged.entity_id == world.ada.id and "Ada" not in json.dumps(thaw_json(logged.metadata))


# ---------------------------------------------------------------------------- erasure


def test_after_erasure_no_trace_of_the_shopper_is_left_in_rows_or_objects(world: World) -> None:
    ft, ada = world.ft, world.ada
    assert MESH in stored_objects(world.objects_url).values()  # the scan can see it

    report = ft.privacy.erase_user(ada.id, actor=STAFF)

    rows = json.dumps(raw_rows(ft))
    assert texts_containing(rows, ADA) == []
    assert "Lovelace" not in rows and "7946" not in rows
    objects = stored_objects(world.objects_url)
    assert not any(MESH in data or MESH[:40] in data or PHOTO in data for data in objects.values())
    assert not any(str(ada.id) in path for path in objects)
    assert report.data_key_shredded and report.addresses == 2 and report.avatars == 2
    assert report.payment_methods == 1 and report.orders_detached == 2 and report.objects_deleted == 2


def test_remaining_ciphertext_of_the_shopper_no_longer_decrypts(world: World) -> None:
    ft, ada = world.ft, world.ada
    ft.privacy.erase_user(ada.id, actor=STAFF)

    rows = raw_rows(ft)
    sealed = [
        (table, column, row["id"], value)
        for table in ("user_profiles", "addresses")
        for row in rows[table]
        if row.get("user_id", row["id"]) == str(ada.id)
        for column, value in row.items()
        if isinstance(value, str) and SEALED_PATTERN.fullmatch(value)
    ]
    assert len(sealed) >= 8  # two addresses' lines stay as ciphertext for the orders' sake
    keys = [
        WrappedKey(r["key_id"], r["kek_id"], base64.b64decode(r["wrapped_key"])) for r in rows["data_keys"]
    ]
    assert keys  # the other owners' keys are still there
    cipher = ft.context.cipher
    with ft.context.store.unit_of_work() as uow:
        for table, column, row_id, value in sealed:
            with pytest.raises(KeyShredded):
                ft.privacy.vault.open_fields(uow, ada.id, getattr(uow, table).get(UUID(row_id)))
            for key in keys:
                with pytest.raises(AuthenticationFailed):
                    cipher.decrypt(key, value, aad=field_aad(table, column, row_id))
    with pytest.raises(AuthenticationFailed):
        ft.accounts.address_details(world.shop.address.id, actor=STAFF)


def test_erasure_anonymises_the_profile_and_login_fails(world: World) -> None:
    ft, ada = world.ft, world.ada

    ft.privacy.erase_user(ada.id, actor=STAFF)

    profile = ft.accounts.get(ada.id, actor=Actor.shopper(ada.id))
    assert profile.erased and profile.email.endswith("@erased.invalid")
    assert profile.username.startswith("erased-") and len(profile.username) <= 32
    assert (profile.name, profile.phone, profile.body_metrics, profile.appearance) == (None, None, None, None)
    assert (profile.location, profile.default_payment_method_id, profile.billing_address_id) == (None,) * 3
    assert not profile.consents.marketing and not profile.consents.terms
    with pytest.raises(AuthenticationFailed):
        ft.accounts.authenticate(ADA["email"], PASSWORD)
    with pytest.raises(AuthenticationFailed):
        ft.accounts.authenticate(profile.email, PASSWORD)
    assert (
        ft.accounts.addresses(ada.id, actor=Actor.shopper(ada.id)).items == ()
        and ft.accounts.payment_methods(ada.id, actor=Actor.shopper(ada.id)).items == ()
    )
    removed = ft.accounts.addresses(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items
    assert len(removed) == 2 and all(a.postal_code_bidx is None and a.country_bidx is None for a in removed)
    assert ft.accounts.find_addresses(country="GB", postal_code="SW1A 1AA", actor=STAFF).items == ()
    avatars = ft.avatars.for_user(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items
    assert all(a.deleted_at and a.mesh_ref is None and not a.sources.photos for a in avatars)
    with pytest.raises(ValidationError):
        ft.avatars.request(ada.id, {"quick_estimate": True}, actor=Actor.shopper(ada.id))
    with pytest.raises(ValidationError):
        ft.accounts.add_payment_method(ada.id, "pm_after_erasure", actor=STAFF)
    with pytest.raises(ValidationError):
        ft.accounts.add_address(
            ada.id,
            type="shipping",
            line1="1 New St",
            city="Bath",
            postal_code="BA1 1AA",
            country="GB",
            actor=Actor.shopper(ada.id),
        )
    with pytest.raises(ValidationError):
        ft.fit.recommend(ada.id, world.shop.product.id, actor=Actor.shopper(ada.id))


def test_erased_profiles_get_distinct_replacements(world: World) -> None:
    ft = world.ft
    ft.privacy.erase_user(world.ada.id, actor=STAFF)
    ft.privacy.erase_user(world.bob.id, actor=STAFF)

    ada, bob = (
        ft.accounts.get(world.ada.id, actor=Actor.shopper(world.ada.id)),
        ft.accounts.get(world.bob.id, actor=Actor.shopper(world.bob.id)),
    )

    assert ada.email != bob.email and ada.username != bob.username


def test_orders_keep_their_totals_and_references(world: World) -> None:
    ft, ada = world.ft, world.ada
    before = {o.id: o for o in ft.orders.for_user(ada.id, actor=Actor.shopper(ada.id)).items}

    ft.privacy.erase_user(ada.id, actor=STAFF)

    after = {o.id: o for o in ft.orders.for_user(ada.id, actor=Actor.shopper(ada.id)).items}
    assert after.keys() == before.keys()
    for order_id, order in after.items():
        assert order.totals == before[order_id].totals and order.status == before[order_id].status
        assert (
            order.psp_token_id is None and order.shipping_address_id == before[order_id].shipping_address_id
        )
        assert (
            sum(i.line_total_cents for i in ft.orders.items(order_id, actor=Actor.system()))
            == order.totals.subtotal
        )
    # The order Ada bought through Bob's link still earns Bob his reward.
    assert len(ft.rewards.entries(order_id=world.ada_orders[0].id, actor=Actor.system()).items) == 1


def test_other_shoppers_are_untouched(world: World) -> None:
    ft, bob = world.ft, world.bob
    store = ft.context.store
    assert isinstance(store, RawRows)

    def bobs() -> dict[str, list[dict[str, Any]]]:
        rows = raw_rows(ft)
        return {
            "user_profiles": [r for r in rows["user_profiles"] if r["id"] == str(bob.id)],
            "addresses": [r for r in rows["addresses"] if r["user_id"] == str(bob.id)],
            "payment_methods": [r for r in rows["payment_methods"] if r["user_id"] == str(bob.id)],
            "orders": [r for r in rows["orders"] if r["user_id"] == str(bob.id)],
            "data_keys": [r for r in rows["data_keys"] if r["owner_id"] == str(bob.id)],
        }

    kept = bobs()
    ft.privacy.erase_user(world.ada.id, actor=STAFF)

    assert bobs() == kept
    assert ft.accounts.details(bob.id, actor=Actor.shopper(bob.id)).profile.username == "bob"
    (address,) = ft.accounts.addresses(bob.id, actor=Actor.shopper(bob.id)).items
    assert ft.accounts.address_details(address.id, actor=STAFF).line1 == "bob street 1"
    ft.accounts.authenticate("bob@example.com", PASSWORD)


def test_referral_hashes_of_the_shopper_are_cleared(world: World) -> None:
    ft = world.ft
    bob_link = ft.referrals.for_referrer(world.bob.id, actor=Actor.shopper(world.bob.id)).items[0]
    ft.referrals.record_click(
        bob_link.rid, ip="192.0.2.55", user_agent="someone-else", actor=Actor.anonymous()
    )

    ft.privacy.erase_user(world.ada.id, actor=STAFF)

    ada_events = ft.referrals.events(world.ada_referral.rid, actor=Actor.system()).items
    assert ada_events and all(e.ip_hash is None and e.device_fingerprint is None for e in ada_events)
    assert all("user_agent" not in e.metadata for e in ada_events)
    (conversion,) = ft.referrals.events(bob_link.rid, event_type="conversion", actor=Actor.system()).items
    assert conversion.order_id == world.ada_orders[0].id and conversion.ip_hash is None
    others = [e for e in ft.referrals.events(bob_link.rid, event_type="click", actor=Actor.system()).items]
    assert sum(e.ip_hash is not None for e in others) == 1  # the stranger's click keeps its hash


def test_the_erasure_is_recorded_without_personal_data(world: World) -> None:
    ft = world.ft

    ft.privacy.erase_user(world.ada.id, actor=STAFF)

    (record,) = ft.audit.events(action="user.erase", actor=Actor.system()).items
    assert record.entity_id == world.ada.id and record.actor == STAFF
    assert set(record.metadata["erased"]) >= {
        "profile",
        "data_key",
        "addresses",
        "avatars",
        "payment_methods",
    }
    assert texts_containing(json.dumps(thaw_json(record.metadata)), ADA) == []


def test_erasing_twice_is_harmless(world: World) -> None:
    ft = world.ft
    ft.privacy.erase_user(world.ada.id, actor=STAFF)
    kept = snapshot(ft.context.store)

    again = ft.privacy.erase_user(world.ada.id, actor=STAFF)

    assert again.already_erased and not again.data_key_shredded
    assert (again.addresses, again.avatars, again.payment_methods, again.objects_deleted) == (0, 0, 0, 0)
    assert snapshot(ft.context.store) == kept


def test_a_repeat_erases_what_was_added_since(world: World, clock: FrozenClock) -> None:
    ft, ada = world.ft, world.ada
    ft.privacy.erase_user(ada.id, actor=STAFF)
    now = clock.now()
    with ft.context.store.unit_of_work() as uow:  # written behind the services' back
        card = PaymentMethod(
            id=ft.context.ids.new_id(), user_id=ada.id, psp_token_id="pm_late", created_at=now, updated_at=now
        )
        uow.payment_methods.add(card)
        profile = uow.user_profiles.get(ada.id)
        uow.user_profiles.update(attrs.evolve(profile, default_payment_method_id=card.id))
        uow.commit()

    report = ft.privacy.erase_user(ada.id, actor=STAFF)

    assert report.already_erased and report.payment_methods == 1
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).default_payment_method_id is None
    assert ft.accounts.payment_methods(ada.id, actor=STAFF).items == ()


def test_a_repeat_finishes_what_an_unreachable_object_store_left(world: World) -> None:
    ft = world.ft
    objects = ft.context.objects
    assert isinstance(objects, FlakyDeletes)
    objects.broken = True

    with pytest.raises(StoreUnavailable):
        ft.privacy.erase_user(world.ada.id, actor=STAFF)

    assert PHOTO in stored_objects(world.objects_url).values()  # nothing was erased
    assert not ft.accounts.get(world.ada.id, actor=Actor.shopper(world.ada.id)).erased
    objects.broken = False
    ft.privacy.erase_user(world.ada.id, actor=STAFF)
    assert stored_objects(world.objects_url) == {}


def test_a_mesh_left_by_a_failed_delete_goes_on_the_repeat(world: World) -> None:
    ft = world.ft
    objects = ft.context.objects
    assert isinstance(objects, FlakyDeletes)
    photo_key = f"photos/{world.ada.id}/front.jpg"
    objects.delete(photo_key)  # photos already gone: only the mesh delete will fail
    objects.broken = True

    with pytest.raises(StoreUnavailable):
        ft.privacy.erase_user(world.ada.id, actor=STAFF)

    assert ft.accounts.get(world.ada.id, actor=Actor.shopper(world.ada.id)).erased  # the rows were erased ...
    assert MESH in stored_objects(world.objects_url).values()  # ... the mesh could not go
    objects.broken = False
    report = ft.privacy.erase_user(world.ada.id, actor=STAFF)
    assert report.already_erased and report.objects_deleted == 1
    assert stored_objects(world.objects_url) == {}


def test_a_photo_reference_that_is_no_object_key_does_not_block_erasure(world: World) -> None:
    ft, ada = world.ft, world.ada
    ft.avatars.request(ada.id, {"photos": [{"object_key": "../not/a/key.jpg"}]}, actor=Actor.shopper(ada.id))

    report = ft.privacy.erase_user(ada.id, actor=STAFF)

    assert report.avatars == 3 and ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).erased
    assert stored_objects(world.objects_url) == {}


def test_only_staff_may_erase(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.ft.privacy.erase_user(world.ada.id, actor=Actor.shopper(world.ada.id))
    assert not world.ft.accounts.get(world.ada.id, actor=Actor.shopper(world.ada.id)).erased


# ---------------------------------------------------------------------------- retention

POLICY = RetentionPolicy(closed_order_days=30, settled_reward_days=90, event_log_months=2)


def test_retention_purges_closed_orders_once_rewards_are_settled(world: World, clock: FrozenClock) -> None:
    ft, shop = world.ft, world.shop
    kept_open = world.ada_orders[1]  # paid, never closed
    plain = deliver_and_close(ft, world.ada_orders[0])  # through Bob's link: a held reward
    bobs = deliver_and_close(ft, world.bob_order)  # through Ada's link: a held reward
    cancelled = ft.orders.cancel(buy(shop, (world.bob, *_bob_things(ft, world.bob))).id, actor=STAFF)
    clock.advance(days=31)

    dry = ft.privacy.purge_expired(policy=POLICY, dry_run=True, actor=STAFF)
    untouched = snapshot(ft.context.store)

    assert (dry.orders, dry.orders_kept_unsettled) == (1, 2)  # only the cancelled order goes
    assert dry.dry_run and snapshot(ft.context.store) == untouched
    done = ft.privacy.purge_expired(policy=POLICY, actor=STAFF)
    assert attrs.evolve(done, dry_run=True, event_logs=dry.event_logs) == dry
    with ft.context.store.unit_of_work() as uow:
        assert uow.orders.find(cancelled.id) is None
        assert uow.order_items.where(order_id=cancelled.id) == []
        assert {uow.orders.get(o.id).status for o in (plain, bobs, kept_open)} == {
            OrderStatus.CLOSED,
            OrderStatus.PAID,
        }

    # The holds end, the rewards are paid out: now those orders may go too.
    ft.rewards.release_due(actor=Actor.system())
    payable = ft.rewards.entries(status="payable", actor=Actor.system()).items
    ft.rewards.mark_paid([e.id for e in payable], actor=Actor.system())
    report = ft.privacy.purge_expired(policy=POLICY, actor=STAFF)

    assert (report.orders, report.orders_kept_unsettled) == (2, 0)
    assert report.order_items == 2 and report.reward_ledger_entries == 2 and report.referral_events == 2
    with ft.context.store.unit_of_work() as uow:
        assert uow.orders.find(plain.id) is None and uow.orders.find(bobs.id) is None
        assert uow.reward_ledger_entries.where(order_id=plain.id) == []
        assert uow.referral_events.where(order_id=bobs.id) == []
        assert uow.idempotency_keys.where(result_id=plain.id) == []
        assert uow.orders.get(kept_open.id).status == OrderStatus.PAID


def _bob_things(ft: FitTwin, bob: Any) -> tuple[Any, Any]:
    (address,) = ft.accounts.addresses(bob.id, actor=Actor.shopper(bob.id)).items
    (card,) = ft.accounts.payment_methods(bob.id, actor=Actor.shopper(bob.id)).items
    return address, card


def test_settled_ledger_entries_go_after_their_own_period(world: World, clock: FrozenClock) -> None:
    ft = world.ft
    order = world.ada_orders[0]  # bought through Bob's link
    for move in (ft.orders.send_to_brand, ft.orders.mark_fulfilled, ft.orders.mark_delivered):
        move(order.id, actor=Actor.system())
    ft.orders.request_return(order.id, actor=Actor.shopper(world.ada.id))  # the reward is cancelled
    (entry,) = ft.rewards.entries(order_id=order.id, actor=Actor.system()).items
    assert entry.status == RewardStatus.CANCELLED
    clock.advance(days=89)
    assert ft.privacy.purge_expired(policy=POLICY, actor=STAFF).reward_ledger_entries == 0

    clock.advance(days=2)
    report = ft.privacy.purge_expired(policy=POLICY, actor=STAFF)

    assert report.reward_ledger_entries == 1 and report.orders == 0
    assert ft.rewards.entries(order_id=order.id, actor=Actor.system()).items == ()
    assert ft.orders.get(order.id, actor=Actor.system()).status == OrderStatus.RETURN_REQUESTED


def test_retention_drops_whole_months_of_event_logs(world: World, clock: FrozenClock) -> None:
    ft = world.ft
    store = ft.context.store
    assert isinstance(store, RawRows)
    ft.privacy.export_user(
        world.ada.id, actor=Actor.shopper(world.ada.id)
    )  # recorded in January, by the service's clock
    clock.advance(days=100)  # 2026-04-25: months before February 2026 are past two months
    report = ft.privacy.purge_expired(policy=POLICY, dry_run=True, actor=STAFF)
    cutoff = report.event_logs_before
    old = [r for r in store.raw_rows("event_logs") if uuid7_datetime(uuid.UUID(r["id"])) < cutoff]
    assert cutoff.isoformat() == "2026-02-01T00:00:00+00:00" and old

    assert report.event_logs == len(old)
    done = ft.privacy.purge_expired(policy=POLICY, actor=STAFF)

    assert done.event_logs == len(old)
    left = store.raw_rows("event_logs")
    assert not [r for r in left if uuid7_datetime(uuid.UUID(r["id"])) < cutoff]
    assert any(r["action"] == "retention.purge" for r in left)


def test_retention_needs_staff_and_a_policy(world: World) -> None:
    ft = world.ft
    with pytest.raises(PermissionDenied):
        ft.privacy.purge_expired(actor=Actor.shopper(world.ada.id))
    with pytest.raises(ValidationError):
        ft.privacy.purge_expired(policy={"closed_order_days": 1}, actor=STAFF)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="closed_order_days"):
        RetentionPolicy(closed_order_days=0)
    nothing = ft.privacy.purge_expired(actor=STAFF)  # the default policy keeps years
    assert (nothing.orders, nothing.reward_ledger_entries, nothing.event_logs) == (0, 0, 0)
    assert nothing.closed_before == ft.context.clock.now() - timedelta(days=3 * 365)


# ------------------------------------------------------------- retention of personal data


def test_purge_refuses_a_future_now_and_removes_nothing(world: World, clock: FrozenClock) -> None:
    ft = world.ft
    before = snapshot(ft.context.store)
    with pytest.raises(ValidationError, match="now"):
        ft.privacy.purge_expired(now=clock.now() + timedelta(days=365 * 200), actor=STAFF)
    assert snapshot(ft.context.store) == before


def test_referral_clicks_lose_their_hashes_after_click_hash_days(world: World, clock: FrozenClock) -> None:
    ft = world.ft
    policy = RetentionPolicy(click_hash_days=90)
    # Clicks hold keyed hashes of ip and device, and so do the conversions that came from them.
    clicks = [e for e in raw_rows(ft)["referral_events"] if e["ip_hash"] is not None]
    assert {e["event_type"] for e in clicks} >= {"click"}
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).click_hashes == 0  # not yet
    clock.advance(days=91)
    preview = ft.privacy.purge_expired(policy=policy, dry_run=True, actor=STAFF)
    assert preview.click_hashes == len(clicks)
    assert len([e for e in raw_rows(ft)["referral_events"] if e["ip_hash"] is not None]) == len(clicks)
    done = ft.privacy.purge_expired(policy=policy, actor=STAFF)
    assert done.click_hashes == len(clicks)
    for event in raw_rows(ft)["referral_events"]:
        assert event["ip_hash"] is None and event["device_fingerprint"] is None
        assert "user_agent" not in event["metadata"]
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).click_hashes == 0  # safe to re-run


def test_soft_deleted_addresses_go_after_deleted_row_days_unless_referenced(
    world: World, clock: FrozenClock
) -> None:
    ft, ada = world.ft, world.ada
    spare = ft.accounts.add_address(
        ada.id, type="shipping", line1="1 Spare Lane", city="Leeds", postal_code="LS1 1AA", country="GB",
        actor=Actor.shopper(ada.id),
    )  # fmt: skip
    ft.accounts.remove_address(spare.id, actor=Actor.shopper(ada.id))
    ft.accounts.remove_address(world.shop.address.id, actor=Actor.shopper(ada.id))  # orders point at it
    policy = RetentionPolicy(deleted_row_days=30)
    clock.advance(days=31)
    report = ft.privacy.purge_expired(policy=policy, actor=STAFF)
    assert (report.addresses, report.kept_referenced) == (1, 1)
    ids = {row["id"] for row in raw_rows(ft)["addresses"]}
    assert str(spare.id) not in ids and str(world.shop.address.id) in ids


def test_erased_profiles_go_after_erased_profile_days_once_nothing_refers_to_them(
    world: World, clock: FrozenClock
) -> None:
    ft = world.ft
    lone = ft.accounts.register(
        "lone@example.com",
        PASSWORD,
        "lone_one",
        {"height_cm": 170, "weight_kg": 65},
        consents={"terms": True},
        actor=Actor.anonymous(),
    )
    ft.privacy.erase_user(lone.id, actor=STAFF)
    ft.privacy.erase_user(world.ada.id, actor=STAFF)  # her orders stay: so does her profile
    policy = RetentionPolicy(erased_profile_days=30)
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).profiles == 0
    clock.advance(days=31)
    report = ft.privacy.purge_expired(policy=policy, actor=STAFF)
    assert report.profiles == 1 and report.kept_referenced >= 1
    ids = {row["id"] for row in raw_rows(ft)["user_profiles"]}
    assert str(lone.id) not in ids and str(world.ada.id) in ids


def test_erasure_strips_body_values_from_fit_summaries(world: World) -> None:
    ft, ada = world.ft, world.ada
    order_ids = {str(o.id) for o in world.ada_orders}
    with_body = [i for i in raw_rows(ft)["order_items"] if i["order_id"] in order_ids and i["fit_summary"]]
    assert with_body and all(i["fit_summary"]["zones"] for i in with_body)
    assert ft.privacy.erase_user(ada.id, actor=STAFF).fit_summaries == len(with_body)
    for item in raw_rows(ft)["order_items"]:
        if item["order_id"] in order_ids and item["fit_summary"] is not None:
            assert item["fit_summary"]["zones"] == []
            assert "size_label" in item["fit_summary"] and "confidence" in item["fit_summary"]


def test_purge_rechecks_each_row_in_its_own_transaction_and_reports_conflicts(
    world: World, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ft = world.ft
    closed = deliver_and_close(ft, world.ada_orders[1])
    moved = world.bob_order  # paid, not closed: as if another worker reopened it after the scan
    privacy = ft.privacy
    scanned = privacy._expired_orders

    def stale_scan(uow: Any, cutoff: Any, cursor: Any) -> list[Any]:
        rows = scanned(uow, cutoff, cursor)
        return (
            sorted([*rows, attrs.evolve(moved, status=OrderStatus.CLOSED)], key=lambda o: o.id)
            if rows
            else rows
        )

    monkeypatch.setattr(privacy, "_expired_orders", stale_scan)
    clock.advance(days=31)
    report = privacy.purge_expired(policy=RetentionPolicy(closed_order_days=30), actor=STAFF)
    assert (report.orders, report.conflicts) == (1, 1)
    ids = {row["id"] for row in raw_rows(ft)["orders"]}
    assert str(closed.id) not in ids and str(moved.id) in ids
    again = privacy.purge_expired(policy=RetentionPolicy(closed_order_days=30), actor=STAFF)
    assert (again.orders, again.conflicts) == (0, 0)  # safe to re-run


def test_soft_deleted_avatars_lose_sources_and_photos_after_deleted_row_days(
    world: World, clock: FrozenClock
) -> None:
    ft, ada = world.ft, world.ada
    me = Actor.shopper(ada.id)
    photo_key = f"photos/{ada.id}/front.jpg"
    first, latest = ft.avatars.for_user(ada.id, actor=me).items  # both built from the photo
    ft.avatars.delete(latest.id, actor=me)
    policy = RetentionPolicy(deleted_row_days=30)
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).avatars == 0
    clock.advance(days=31)
    assert ft.privacy.purge_expired(policy=policy, dry_run=True, actor=STAFF).avatars == 1
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).avatars == 1
    row = next(r for r in raw_rows(ft)["avatars"] if r["id"] == str(latest.id))
    assert row["sources"] == {"measurements": {}, "photos": [], "quick_estimate": False}
    assert ft.context.objects.exists(photo_key, region=ada.region)  # the first version still names it
    ft.avatars.delete(first.id, actor=me)
    clock.advance(days=31)
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).avatars == 1
    assert not ft.context.objects.exists(photo_key, region=ada.region)
    assert ft.privacy.purge_expired(policy=policy, actor=STAFF).avatars == 0  # safe to re-run

"""Brands (onboarding, roles, invitations, webhooks) and the catalog (charts, products, stock)."""

from __future__ import annotations

import json

import pytest

from fittwin_adapters.demo import TEE_CHART
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    BrandStatus,
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ProductStatus,
    UnitSystem,
    ValidationError,
    VariantStatus,
)
from fittwin_core.ports import RawRows
from fittwin_core.webhooks import SIGNATURE_HEADER, verify_webhook
from tests.support.shop import Shop, open_shop
from tests.support.snapshots import snapshot


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def test_onboarding_walks_the_state_machine(ft: FitTwin) -> None:
    platform = Actor.platform(ft.context.ids.new_id())
    brand = ft.brands.create("Acme", {"email": "Ops@Acme.example"}, actor=platform)
    assert (
        brand.onboarding_status == BrandStatus.INVITED and brand.primary_contact.email == "ops@acme.example"
    )
    with pytest.raises(InvalidTransition):
        ft.brands.activate(brand.id, actor=platform)
    ft.brands.submit_kyc(brand.id, actor=platform)
    assert ft.brands.activate(brand.id, actor=platform).onboarding_status == BrandStatus.ACTIVE
    assert ft.brands.suspend(brand.id, actor=platform).onboarding_status == BrandStatus.SUSPENDED
    assert ft.brands.activate(brand.id, actor=platform).onboarding_status == BrandStatus.ACTIVE
    assert ft.brands.activate(brand.id, actor=platform).onboarding_status == BrandStatus.ACTIVE  # no-op
    with pytest.raises(Conflict):
        ft.brands.create("Acme", {"email": "x@acme.example"}, actor=platform)
    with pytest.raises(PermissionDenied):
        ft.brands.create("Rogue", {"email": "x@rogue.example"}, actor=Actor.shopper(platform.id))
    records = ft.audit.events(entity_id=brand.id, actor=platform).items
    assert [r.action for r in records] == ["insert"] + ["update"] * 4
    assert all(r.actor_id == platform.id for r in records)


def test_roles_and_invitations(shop: Shop) -> None:
    ft, owner = shop.ft, shop.owner_actor
    manager = ft.brands.accept_invite(
        ft.brands.invite_user(shop.brand.id, "m@shop.example", "manager", actor=owner).invite_token
    )
    analyst = ft.brands.accept_invite(
        ft.brands.invite_user(
            shop.brand.id, "a@shop.example", "analyst", actor=Actor.brand_user(manager.id)
        ).invite_token
    )
    with pytest.raises(AuthenticationFailed):
        ft.brands.accept_invite(analyst.id)  # not a token
    with pytest.raises(PermissionDenied, match=r"a brand manager may not brands\.invite_owner"):
        ft.brands.invite_user(shop.brand.id, "o2@shop.example", "owner", actor=Actor.brand_user(manager.id))
    with pytest.raises(PermissionDenied, match=r"a brand analyst may not brands\.invite_analyst"):
        ft.brands.invite_user(shop.brand.id, "x@shop.example", "analyst", actor=Actor.brand_user(analyst.id))
    with pytest.raises(Conflict):
        ft.brands.invite_user(shop.brand.id, "M@shop.example", "analyst", actor=owner)
    assert {
        u.role.value for u in ft.brands.users(shop.brand.id, actor=Actor.brand_user(analyst.id)).items
    } == {
        "owner",
        "manager",
        "analyst",
    }
    with pytest.raises(Conflict, match="last active owner"):
        ft.brands.revoke_user(shop.owner.id, actor=owner)
    with pytest.raises(PermissionDenied):
        ft.brands.revoke_user(shop.owner.id, actor=Actor.brand_user(manager.id))
    revoked = ft.brands.revoke_user(analyst.id, actor=Actor.brand_user(manager.id))
    with pytest.raises(PermissionDenied, match="not active"):
        ft.brands.users(shop.brand.id, actor=Actor.brand_user(revoked.id)).items


def test_cross_brand_and_under_role_calls_change_nothing(shop: Shop) -> None:
    ft = shop.ft
    other = open_shop(ft, "rival")
    analyst = ft.brands.accept_invite(
        ft.brands.invite_user(shop.brand.id, "a@shop.example", "analyst", actor=shop.owner_actor).invite_token
    )
    before = snapshot(ft.context.store)
    attempts = [
        lambda: ft.catalog.create_size_chart(other.brand.id, "tops", TEE_CHART, actor=shop.owner_actor),
        lambda: ft.catalog.set_inventory(other.variants["M"].id, 0, actor=shop.owner_actor),
        lambda: ft.catalog.archive_product(other.product.id, actor=shop.owner_actor),
        lambda: ft.brands.invite_user(other.brand.id, "spy@x.example", "analyst", actor=shop.owner_actor),
        lambda: ft.catalog.set_inventory(shop.variants["M"].id, 0, actor=Actor.brand_user(analyst.id)),
        lambda: ft.catalog.create_product(
            shop.brand.id,
            title="x",
            category="tops",
            size_chart_id=shop.chart.id,
            actor=Actor.brand_user(analyst.id),
        ),
        lambda: ft.brands.add_webhook(
            shop.brand.id, "https://x.example", ["variant.low_stock"], actor=Actor.brand_user(analyst.id)
        ),
        lambda: ft.brands.suspend(shop.brand.id, actor=shop.owner_actor),
        lambda: ft.catalog.set_inventory(shop.variants["M"].id, 0, actor=Actor.shopper(shop.shopper.id)),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert snapshot(ft.context.store) == before


def test_brand_webhooks_are_signed_and_secrets_stay_sealed(shop: Shop) -> None:
    ft = shop.ft
    subscription = ft.brands.add_webhook(
        shop.brand.id, "https://hooks.shop.example/in", ["variant.low_stock"], actor=shop.owner_actor
    )
    assert subscription.secret not in repr(subscription)
    store = ft.context.store
    assert isinstance(store, RawRows)
    assert subscription.secret not in json.dumps(store.raw_rows("brands") + store.raw_rows("event_logs"))
    assert subscription.secret not in repr(ft.brands.get(shop.brand.id, actor=Actor.system()))
    ft.catalog.set_inventory(shop.variants["M"].id, 3, actor=shop.owner_actor)
    sent = ft.context.webhooks.sent  # type: ignore[attr-defined]
    (hook,) = [w for w in sent if w.url == "https://hooks.shop.example/in"]
    verify_webhook(
        hook.payload,
        hook.headers[SIGNATURE_HEADER],
        subscription.secret,
        now=int(ft.context.clock.now().timestamp()),
    )
    body = json.loads(hook.payload)
    assert body["type"] == "variant.low_stock" and body["data"]["inventory"] == 3
    with pytest.raises(AuthenticationFailed):
        verify_webhook(
            hook.payload + b" ",
            hook.headers[SIGNATURE_HEADER],
            subscription.secret,
            now=int(ft.context.clock.now().timestamp()),
        )
    ft.catalog.set_inventory(shop.variants["M"].id, 2, actor=shop.owner_actor)  # already low: no new event
    assert len([w for w in ft.context.webhooks.sent if w.url == "https://hooks.shop.example/in"]) == 1  # type: ignore[attr-defined]


def test_size_charts_convert_imperial_to_metric(shop: Shop) -> None:
    ft = shop.ft
    inches = {
        "kind": "body",
        "zones": {"chest": {"tolerance": 1}},
        "sizes": [{"label": "M", "chest": [37, 40]}, {"label": "L", "chest": [40, 43]}],
    }
    chart = ft.catalog.create_size_chart(
        shop.brand.id, "tops", inches, unit_system="imperial", actor=shop.owner_actor
    )
    assert chart.unit_system == UnitSystem.IMPERIAL
    (medium, _) = chart.measurement_rules["sizes"]
    assert list(medium["chest"]) == [93.98, 101.6]
    assert chart.measurement_rules["zones"]["chest"]["tolerance"] == 2.54
    assert ft.fit.sizes(chart.id, actor=Actor.anonymous()) == ("M", "L")
    bad = {"kind": "body", "zones": {"chest": {}}, "sizes": [{"label": "M", "chest": [100, 90]}]}
    with pytest.raises(ValidationError) as raised:
        ft.catalog.create_size_chart(shop.brand.id, "tops", bad, actor=shop.owner_actor)
    assert "M" in raised.value.field and "chest" in raised.value.field


def test_products_and_variants(shop: Shop) -> None:
    ft, owner = shop.ft, shop.owner_actor
    draft = ft.catalog.create_product(
        shop.brand.id, title="Draft tee", category="tops", size_chart_id=shop.chart.id, actor=owner
    )
    with pytest.raises(InvalidTransition, match="no variants"):
        ft.catalog.publish_product(draft.id, actor=owner)
    with pytest.raises(Conflict):
        ft.catalog.add_variant(
            draft.id,
            sku=shop.variants["M"].sku,
            size_label="M",
            price_cents=1,
            currency="EUR",
            inventory=1,
            actor=owner,
        )
    with pytest.raises(ValidationError) as raised:
        ft.catalog.add_variant(
            draft.id, sku="D-XXL", size_label="XXXL", price_cents=1, currency="EUR", inventory=1, actor=owner
        )
    assert raised.value.field == "size_label"
    for field, kwargs in (
        ("price_cents", {"price_cents": -5}),
        ("currency", {"currency": "EURO"}),
        ("inventory", {"inventory": -1}),
        ("sku", {"sku": "has space"}),
    ):
        args = {
            "sku": "D-M",
            "size_label": "M",
            "price_cents": 100,
            "currency": "EUR",
            "inventory": 1,
            **kwargs,
        }
        with pytest.raises(ValidationError) as raised:
            ft.catalog.add_variant(draft.id, actor=owner, **args)
        assert raised.value.field == field
    ft.catalog.add_variant(
        draft.id, sku="D-M", size_label="M", price_cents=100, currency="EUR", inventory=0, actor=owner
    )
    assert (
        ft.catalog.variants(draft.id, actor=Actor.anonymous()).items[0].status == VariantStatus.OUT_OF_STOCK
    )
    with pytest.raises(ValidationError, match="currency"):
        ft.catalog.add_variant(
            draft.id, sku="D-L", size_label="L", price_cents=100, currency="USD", inventory=1, actor=owner
        )
    assert ft.catalog.publish_product(draft.id, actor=owner).status == ProductStatus.ACTIVE
    assert ft.catalog.archive_product(draft.id, actor=owner).status == ProductStatus.ARCHIVED
    with pytest.raises(InvalidTransition):
        ft.catalog.publish_product(draft.id, actor=owner)
    restocked = ft.catalog.set_inventory(
        ft.catalog.variants(draft.id, actor=Actor.anonymous()).items[0].id, 4, actor=owner
    )
    assert (restocked.inventory, restocked.status) == (4, VariantStatus.ACTIVE)
    assert ft.catalog.set_backorder(restocked.id, True, actor=owner).status == VariantStatus.BACKORDER
    assert [
        p.id for p in ft.catalog.products(shop.brand.id, status="archived", actor=Actor.anonymous()).items
    ] == [draft.id]
    with pytest.raises(NotFound):
        ft.catalog.product(shop.shopper.id, actor=Actor.anonymous())


def test_removing_a_webhook_stops_its_deliveries(shop: Shop) -> None:
    ft = shop.ft
    kept = ft.brands.add_webhook(
        shop.brand.id, "https://kept.example/in", ["variant.low_stock"], actor=shop.owner_actor
    )
    gone = ft.brands.add_webhook(
        shop.brand.id, "https://gone.example/in", ["variant.low_stock"], actor=shop.owner_actor
    )
    analyst = ft.brands.accept_invite(
        ft.brands.invite_user(shop.brand.id, "a@shop.example", "analyst", actor=shop.owner_actor).invite_token
    )
    with pytest.raises(PermissionDenied):
        ft.brands.remove_webhook(shop.brand.id, gone.subscription_id, actor=Actor.brand_user(analyst.id))
    brand = ft.brands.remove_webhook(shop.brand.id, gone.subscription_id, actor=shop.owner_actor)
    assert brand.webhooks is not None
    assert [s.id for s in brand.webhooks.subscriptions] == [kept.subscription_id]
    ft.catalog.set_inventory(shop.variants["M"].id, 1, actor=shop.owner_actor)
    urls = [w.url for w in ft.context.webhooks.sent]  # type: ignore[attr-defined]
    assert urls == ["https://kept.example/in"]
    assert (
        ft.brands.remove_webhook(shop.brand.id, kept.subscription_id, actor=shop.owner_actor).webhooks is None
    )

"""Every invalid input to every service raises a FitTwinError and writes nothing.

Each example takes one service call with valid arguments, replaces one argument with an
arbitrary value, and checks the call either succeeds or raises a ``FitTwinError`` — never a
``TypeError``/``KeyError``/``AttributeError`` — and that a failed call left every table as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_adapters.demo import TEE_CHART
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import BodyMetrics, FitTwinError
from tests.support.shop import PASSWORD, Shop, open_shop
from tests.support.snapshots import snapshot

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.text(min_size=300, max_size=320),
    st.binary(max_size=16),
    st.uuids(),
    st.datetimes(),
    st.dates(),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
    st.dictionaries(
        st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3
    ),
    st.builds(object),
    st.builds(Actor.shopper, st.uuids()),
)


@attrs.frozen
class Call:
    """A service call with valid keyword arguments."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]


def calls(shop: Shop) -> list[Call]:
    ft, owner, user = shop.ft, shop.owner_actor, shop.shopper
    staff = Actor.platform(shop.platform.id)
    me = Actor.shopper(user.id)
    link = ft.referrals.create(user.id, actor=Actor.shopper(user.id))
    order = shop.place()
    body = BodyMetrics(height_cm=170, weight_kg=65)
    a = ft.accounts
    pending = ft.avatars.request(user.id, {"quick_estimate": True}, actor=Actor.shopper(user.id))
    doomed = ft.avatars.request(user.id, {"quick_estimate": True}, actor=Actor.shopper(user.id))
    ready = ft.avatars.complete(
        ft.avatars.request(user.id, {}, actor=Actor.shopper(user.id)).id,
        b"glTF mesh",
        confidence=50,
        actor=Actor.system(),
    )
    return [
        Call(
            "register",
            a.register,
            {
                "email": "new@example.com",
                "password": PASSWORD,
                "username": "newbie",
                "body_metrics": body,
                "consents": {"terms": True},
                "name": "N",
                "phone": None,
                "location": None,
                "appearance": None,
                "style_preferences": None,
                "region": None,
                "actor": Actor.anonymous(),
            },
        ),
        Call("authenticate", a.authenticate, {"email": user.email, "password": PASSWORD}),
        Call(
            "update_profile",
            a.update_profile,
            {"user_id": user.id, "name": "A", "username": "ada2", "body_metrics": body, "actor": me},
        ),
        Call(
            "add_address",
            a.add_address,
            {
                "user_id": user.id,
                "type": "shipping",
                "line1": "1 Row",
                "city": "X",
                "postal_code": "1",
                "country": "GB",
                "line2": None,
                "state": None,
                "metadata": None,
                "actor": me,
            },
        ),
        Call(
            "add_payment_method",
            a.add_payment_method,
            {
                "user_id": user.id,
                "psp_token_id": "pm_new",
                "brand": "visa",
                "last4": "1234",
                "expires_at": None,
                "billing_address_id": None,
                "actor": me,
            },
        ),
        Call(
            "set_billing_address",
            a.set_billing_address,
            {"user_id": user.id, "address_id": shop.address.id, "actor": me},
        ),
        Call(
            "change_email",
            a.change_email,
            {"user_id": user.id, "new_email": "ada.new@example.com", "actor": me},
        ),
        Call("verify_email", a.verify_email, {"token": a.email_verification_token(user.id, actor=me)}),
        Call(
            "brands.create",
            ft.brands.create,
            {
                "name": "New brand",
                "primary_contact": {"email": "x@y.example"},
                "webhooks": None,
                "actor": staff,
            },
        ),
        Call(
            "invite_user",
            ft.brands.invite_user,
            {"brand_id": shop.brand.id, "email": "new@shop.example", "role": "analyst", "actor": owner},
        ),
        Call("accept_invite", ft.brands.accept_invite, {"token": uuid.uuid4()}),
        Call(
            "add_webhook",
            ft.brands.add_webhook,
            {
                "brand_id": shop.brand.id,
                "url": "https://h.example/x",
                "events": ["variant.low_stock"],
                "actor": owner,
            },
        ),
        Call(
            "create_size_chart",
            ft.catalog.create_size_chart,
            {
                "brand_id": shop.brand.id,
                "garment_type": "tops",
                "measurement_rules": TEE_CHART,
                "grading_rules": None,
                "unit_system": "metric",
                "actor": owner,
            },
        ),
        Call(
            "create_fit_map",
            ft.catalog.create_fit_map,
            {
                "brand_id": shop.brand.id,
                "garment_type": "tops",
                "rule_set": {"offset": {"chest": 1}},
                "confidence_model": None,
                "actor": owner,
            },
        ),
        Call(
            "create_product",
            ft.catalog.create_product,
            {
                "brand_id": shop.brand.id,
                "title": "T",
                "category": "tops",
                "size_chart_id": shop.chart.id,
                "description": "",
                "fit_map_id": None,
                "assets": None,
                "actor": owner,
            },
        ),
        Call(
            "add_variant",
            ft.catalog.add_variant,
            {
                "product_id": shop.product.id,
                "sku": "NEW-1",
                "size_label": "M",
                "price_cents": 100,
                "currency": "EUR",
                "inventory": 1,
                "color": None,
                "fit_metadata": None,
                "actor": owner,
            },
        ),
        Call(
            "set_inventory",
            ft.catalog.set_inventory,
            {"variant_id": shop.variants["L"].id, "inventory": 3, "actor": owner},
        ),
        Call(
            "place",
            ft.orders.place,
            {
                "user_id": user.id,
                "items": [(shop.variants["S"].id, 1)],
                "shipping_address_id": shop.address.id,
                "billing_address_id": shop.address.id,
                "payment_method_id": shop.card.id,
                "rid": None,
                "idempotency_key": None,
                "actor": me,
            },
        ),
        Call("mark_paid", ft.orders.mark_paid, {"order_id": order.id, "actor": staff}),
        Call(
            "webhook", ft.orders.handle_payment_webhook, {"payload": b"{}", "signature_header": "t=1,v1=00"}
        ),
        Call(
            "referrals.create",
            ft.referrals.create,
            {"referrer_user_id": user.id, "target_product_id": None, "expires_at": None, "actor": me},
        ),
        Call(
            "record_click",
            ft.referrals.record_click,
            {
                "rid": link.rid,
                "ip": "192.0.2.1",
                "user_agent": "ua",
                "device_fingerprint": None,
                "actor": Actor.anonymous(),
            },
        ),
        Call(
            "record_clicks",
            ft.referrals.record_clicks,
            {"clicks": [{"rid": link.rid, "ip": "192.0.2.9"}], "actor": staff},
        ),
        Call("release_due", ft.rewards.release_due, {"today": None, "actor": staff}),
        Call("rewards.mark_paid", ft.rewards.mark_paid, {"entry_ids": [], "actor": staff}),
        Call(
            "entries",
            ft.rewards.entries,
            {"order_id": None, "rid": None, "referrer_user_id": None, "status": None, "actor": staff},
        ),
        Call("recommend", ft.fit.recommend, {"user_id": user.id, "product_id": shop.product.id, "actor": me}),
        Call(
            "avatars.request",
            ft.avatars.request,
            {"user_id": user.id, "sources": {"measurements": {"chest_cm": 90.0}}, "actor": me},
        ),
        Call(
            "avatars.complete",
            ft.avatars.complete,
            {"avatar_id": pending.id, "mesh": b"glTF", "confidence": 60, "actor": me},
        ),
        Call("avatars.fail", ft.avatars.fail, {"avatar_id": doomed.id, "reason": "no photos", "actor": me}),
        Call("mesh", ft.avatars.mesh, {"avatar_id": ready.id, "actor": me}),
        Call("mesh_url", ft.avatars.mesh_url, {"avatar_id": ready.id, "expires_in": 60, "actor": me}),
        Call("export_user", ft.privacy.export_user, {"user_id": user.id, "actor": me}),
        Call("erase_user", ft.privacy.erase_user, {"user_id": uuid.uuid4(), "actor": staff}),
        Call(
            "purge_expired",
            ft.privacy.purge_expired,
            {"now": None, "dry_run": True, "policy": None, "actor": staff},
        ),
        Call("audit", ft.audit.events, {"entity_id": None, "since": None, "limit": 10, "actor": staff}),
    ]


@pytest.mark.slow
def test_invalid_input_raises_fittwin_errors_and_writes_nothing(ft: FitTwin, backend: str) -> None:
    shop = open_shop(ft)
    table = calls(shop)

    @settings(
        max_examples=300 if backend == "memory" else 80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        call = data.draw(st.sampled_from(table), label="call")
        field = data.draw(st.sampled_from(sorted(call.kwargs)), label="argument")
        junk = data.draw(JUNK, label="value")
        before = snapshot(ft.context.store)
        try:
            call.fn(**{**call.kwargs, field: junk})
        except FitTwinError:
            assert snapshot(ft.context.store) == before, f"{call.name}({field}=...) failed but wrote"
        except Exception as exc:
            raise AssertionError(f"{call.name}({field}={junk!r}) raised {type(exc).__name__}: {exc}") from exc

    check()

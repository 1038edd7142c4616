"""The order service on StripePayments, against a local Stripe-shaped server, with webhooks
signed exactly as Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory.payments import DEFAULT_WEBHOOK_SECRET
from fittwin_adapters.stripe import StripePayments
from fittwin_core import FitTwin
from fittwin_core.domain import Actor, AuthenticationFailed, OrderStatus
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop
from tests.support.snapshots import snapshot
from tests.support.stripe_server import StripeServer

API_KEY = "sk_test_fittwin_local"
WEBHOOK_SECRET = "whsec_fittwin_local_orders"


def stripe_sign(payload: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> str:
    """``Stripe-Signature`` as Stripe computes it: HMAC-SHA256 of ``"<t>.<payload>"``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.fixture
def server() -> Iterator[tuple[StripeServer, str]]:
    stripe = StripeServer(API_KEY)
    with stripe.running() as url:
        yield stripe, url


@pytest.fixture
def stripe_ft(
    store: Any, clock: FrozenClock, ids: Any, server: tuple[StripeServer, str]
) -> Iterator[FitTwin]:
    _, url = server
    payments = StripePayments(API_KEY, WEBHOOK_SECRET, api_base=url, clock=clock, max_network_retries=0)
    app = connect(
        store,
        payments=payments,
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    yield app
    app.close()


def test_a_stripe_webhook_pays_once_however_often_it_arrives(
    stripe_ft: FitTwin, server: tuple[StripeServer, str], clock: FrozenClock
) -> None:
    stripe, _ = server
    shop: Shop = open_shop(stripe_ft)
    order = shop.place(idempotency_key="stripe-cart")
    assert order.payment_intent_ref is not None and order.payment_intent_ref.startswith("pi_")
    (create,) = [r for r in stripe.requests if r.path == "/v1/payment_intents"]
    assert create.headers.get("idempotency-key") == f"fittwin-order-{order.id}"
    assert (create.form["amount"], create.form["currency"]) == ("2500", "eur")
    now = int(clock.now().timestamp())
    intent = stripe.succeed(order.payment_intent_ref, created=now)
    payload = stripe.event("payment_intent.succeeded", intent, created=now)
    header = stripe_sign(payload, now)
    results = [stripe_ft.orders.handle_payment_webhook(payload, header) for _ in range(3)]
    assert [r.status if r else None for r in results] == [OrderStatus.PAID, None, None]
    paid = [
        e
        for e in stripe_ft.audit.events(entity_id=order.id, actor=Actor.system()).items
        if e.metadata.get("new", {}).get("status") == "paid"
    ]
    assert len(paid) == 1


def test_bad_or_stale_stripe_webhooks_change_nothing(
    stripe_ft: FitTwin, server: tuple[StripeServer, str], clock: FrozenClock
) -> None:
    stripe, _ = server
    shop = open_shop(stripe_ft)
    order = shop.place()
    now = int(clock.now().timestamp())
    payload = stripe.event(
        "payment_intent.succeeded", stripe.succeed(order.payment_intent_ref, created=now), created=now
    )
    before = snapshot(stripe_ft.context.store)
    for bad_header in (
        stripe_sign(payload, now, "whsec_someone_else"),
        stripe_sign(payload, now - 301),
        "t=1,v1=zz",
    ):
        with pytest.raises(AuthenticationFailed):
            stripe_ft.orders.handle_payment_webhook(payload, bad_header)
    with pytest.raises(AuthenticationFailed):
        stripe_ft.orders.handle_payment_webhook(
            payload.replace(b"succeeded", b"SUCCEEDED"), stripe_sign(payload, now)
        )
    assert snapshot(stripe_ft.context.store) == before
    assert stripe_ft.orders.get(order.id, actor=Actor.system()).status == OrderStatus.CREATED


def test_a_webhook_forged_with_the_fakes_published_secret_is_refused(
    stripe_ft: FitTwin, server: tuple[StripeServer, str], clock: FrozenClock
) -> None:
    # FakePayments' secret is in the docs; a FitTwin on a real gateway must not trust it
    # (issue 11: a self-signed webhook once marked a PostgreSQL order paid).
    stripe, _ = server
    shop = open_shop(stripe_ft)
    order = shop.place()
    now = int(clock.now().timestamp())
    forged = stripe.event(
        "payment_intent.succeeded", stripe.succeed(order.payment_intent_ref, created=now), created=now
    )
    with pytest.raises(AuthenticationFailed):
        stripe_ft.orders.handle_payment_webhook(forged, stripe_sign(forged, now, DEFAULT_WEBHOOK_SECRET))
    assert stripe_ft.orders.get(order.id, actor=Actor.system()).status == OrderStatus.CREATED


def test_cancelling_a_paid_order_refunds_through_stripe(
    stripe_ft: FitTwin, server: tuple[StripeServer, str], clock: FrozenClock
) -> None:
    stripe, _ = server
    shop = open_shop(stripe_ft)
    order = shop.place([(shop.variants["M"].id, 2)])
    now = int(clock.now().timestamp())
    payload = stripe.event(
        "payment_intent.succeeded", stripe.succeed(order.payment_intent_ref, created=now), created=now
    )
    stripe_ft.orders.handle_payment_webhook(payload, stripe_sign(payload, now))
    closed = stripe_ft.orders.cancel(order.id, actor=Actor.system())
    assert closed.refunded_cents == 5000
    (refund,) = [r for r in stripe.requests if r.path == "/v1/refunds"]
    assert (refund.form["payment_intent"], refund.form["amount"]) == (order.payment_intent_ref, "5000")

"""Orders: placement, payment, the state machine, stock, refunds, webhooks and races."""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    CloseReason,
    Conflict,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    OrderStatus,
    PaymentError,
    PermissionDenied,
    ValidationError,
    VariantStatus,
)
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop
from tests.support.snapshots import snapshot


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def stock(shop: Shop, size: str) -> int:
    return shop.ft.catalog.variant(shop.variants[size].id, actor=Actor.anonymous()).inventory


def test_place_snapshots_prices_fit_and_totals(shop: Shop) -> None:
    order = shop.place([(shop.variants["M"].id, 2), (shop.variants["L"].id, 1)])
    assert order.status == OrderStatus.CREATED and order.payment_intent_ref is not None
    assert (order.totals.subtotal, order.totals.total, order.totals.currency) == (7500, 7500, "EUR")
    items = shop.ft.orders.items(order.id, actor=Actor.system())
    assert sorted((i.size_label, i.qty, i.unit_price_cents) for i in items) == [
        ("L", 1, 2500),
        ("M", 2, 2500),
    ]
    assert all(i.fit_summary is not None and i.fit_summary.size_chart_id == shop.chart.id for i in items)
    assert (stock(shop, "M"), stock(shop, "L")) == (8, 9)
    intent = shop.ft.context.payments.retrieve_payment_intent(order.payment_intent_ref)
    assert (intent.amount, intent.currency) == (7500, "EUR")


def test_placement_is_all_or_nothing(shop: Shop) -> None:
    before = snapshot(shop.ft.context.store)
    with pytest.raises(InsufficientInventory) as raised:
        shop.place([(shop.variants["M"].id, 3), (shop.variants["S"].id, 11)])
    assert raised.value.requested == 11
    assert snapshot(shop.ft.context.store) == before


def test_placement_validates_input(shop: Shop) -> None:
    other_user, other_address, other_card = shop.new_shopper("bob")
    cases: list[tuple[dict[str, Any], type[Exception], str | None]] = [
        ({"items": []}, ValidationError, "items"),
        ({"items": [(shop.variants["M"].id, 0)]}, ValidationError, "items[0].qty"),
        ({"items": [("not-a-uuid", 1)]}, ValidationError, "items[0].variant_id"),
        ({"items": [(shop.shopper.id, 1)]}, NotFound, None),
        ({"shipping_address_id": other_address.id}, NotFound, None),
        ({"payment_method_id": other_card.id}, NotFound, None),
        ({"rid": "not-a-rid"}, ValidationError, "rid"),
        ({"actor": Actor.shopper(other_user.id)}, PermissionDenied, None),
    ]
    for kwargs, error, field in cases:
        items = kwargs.pop("items", None)
        with pytest.raises(error) as raised:
            shop.place(items, **kwargs)
        if field is not None:
            assert raised.value.field == field  # type: ignore[attr-defined]
    assert shop.ft.orders.for_user(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)).items == ()


def test_products_of_inactive_brands_cannot_be_ordered(shop: Shop) -> None:
    shop.ft.brands.suspend(shop.brand.id, actor=shop.platform)
    with pytest.raises(ValidationError, match="brand"):
        shop.place()
    shop.ft.brands.activate(shop.brand.id, actor=shop.platform)
    shop.ft.catalog.archive_product(shop.product.id, actor=shop.owner_actor)
    with pytest.raises(ValidationError, match="not on sale"):
        shop.place()


def test_idempotency_keys(shop: Shop) -> None:
    first = shop.place(idempotency_key="k1")
    assert shop.place(idempotency_key="k1").id == first.id
    assert stock(shop, "M") == 9
    with pytest.raises(Conflict, match="different order"):
        shop.place([(shop.variants["L"].id, 1)], idempotency_key="k1")
    assert shop.place(idempotency_key="k2").id != first.id


def test_stock_rules_for_backorder_and_out_of_stock(shop: Shop) -> None:
    ft, owner = shop.ft, shop.owner_actor
    order = shop.place([(shop.variants["S"].id, 10)])
    assert (
        ft.catalog.variant(shop.variants["S"].id, actor=Actor.anonymous()).status
        == VariantStatus.OUT_OF_STOCK
    )
    with pytest.raises(InsufficientInventory):
        shop.place([(shop.variants["S"].id, 1)])
    ft.orders.cancel(order.id, actor=Actor.system())
    assert (stock(shop, "S"), ft.catalog.variant(shop.variants["S"].id, actor=Actor.anonymous()).status) == (
        10,
        VariantStatus.ACTIVE,
    )
    ft.catalog.set_backorder(shop.variants["L"].id, True, actor=owner)
    back = shop.place([(shop.variants["L"].id, 14)])
    (item,) = ft.orders.items(back.id, actor=Actor.system())
    assert (item.qty, item.reserved_qty, stock(shop, "L")) == (14, 10, 0)
    ft.orders.cancel(back.id, actor=Actor.system())
    assert stock(shop, "L") == 10


def test_lifecycle_follows_the_table(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    order = shop.place()
    with pytest.raises(InvalidTransition):
        ft.orders.mark_delivered(order.id, actor=Actor.system())
    order = shop.pay(order)
    assert order.status == OrderStatus.PAID and order.paid_at == clock.now()
    assert ft.orders.mark_paid(order.id, actor=Actor.system()).status == OrderStatus.PAID  # no-op
    for move in (ft.orders.send_to_brand, ft.orders.mark_fulfilled, ft.orders.mark_delivered):
        order = move(order.id, actor=Actor.system())
    clock.advance(days=10)
    order = ft.orders.request_return(order.id, actor=Actor.shopper(shop.shopper.id))
    with pytest.raises(InvalidTransition):
        ft.orders.cancel(order.id, actor=Actor.system())
    order = ft.orders.close(order.id, actor=Actor.system())
    assert (order.status, order.close_reason, order.refunded_cents) == (
        OrderStatus.CLOSED,
        CloseReason.RETURNED,
        2500,
    )
    refunds = ft.context.payments.refunds(order.payment_intent_ref)  # type: ignore[attr-defined]
    assert sum(r.amount for r in refunds) == 2500


def test_return_window_is_enforced(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    order = shop.pay(shop.place())
    for move in (ft.orders.send_to_brand, ft.orders.mark_fulfilled, ft.orders.mark_delivered):
        order = move(order.id, actor=Actor.system())
    clock.advance(days=31)
    with pytest.raises(InvalidTransition, match="return window"):
        ft.orders.request_return(order.id, actor=Actor.system())
    (closed,) = ft.orders.close_expired_returns(actor=Actor.system())
    assert (closed.id, closed.close_reason) == (order.id, CloseReason.COMPLETED)


def test_cancelling_a_paid_order_refunds_and_releases(shop: Shop) -> None:
    ft = shop.ft
    order = shop.pay(shop.place([(shop.variants["M"].id, 2)]))
    closed = ft.orders.cancel(order.id, actor=Actor.shopper(shop.shopper.id))
    assert (closed.close_reason, closed.refunded_cents, stock(shop, "M")) == (CloseReason.CANCELLED, 5000, 10)
    assert ft.context.payments.retrieve_payment_intent(order.payment_intent_ref).status == "succeeded"
    again = ft.orders.cancel(order.id, actor=Actor.system())  # no-op: refunds never exceed what was paid
    assert again.refunded_cents == 5000
    assert sum(r.amount for r in ft.context.payments.refunds(order.payment_intent_ref)) == 5000  # type: ignore[attr-defined]


def test_cancelling_an_unpaid_order_cancels_its_payment(shop: Shop) -> None:
    order = shop.place()
    shop.ft.orders.cancel(order.id, actor=Actor.system())
    assert shop.ft.context.payments.retrieve_payment_intent(order.payment_intent_ref).status == "canceled"


def test_who_may_move_an_order(shop: Shop) -> None:
    ft = shop.ft
    rival = open_shop(ft, "rival")
    bob, _, _ = shop.new_shopper("bob")
    order = shop.pay(shop.place())
    with pytest.raises(PermissionDenied):
        ft.orders.cancel(order.id, actor=Actor.shopper(bob.id))
    with pytest.raises(PermissionDenied):
        ft.orders.send_to_brand(order.id, actor=shop.owner_actor)
    ft.orders.send_to_brand(order.id, actor=Actor.system())
    with pytest.raises(PermissionDenied):
        ft.orders.mark_fulfilled(order.id, actor=rival.owner_actor)
    assert ft.orders.mark_fulfilled(order.id, actor=shop.owner_actor).status == OrderStatus.FULFILLED


def test_a_failing_payment_provider_leaves_nothing(shop: Shop) -> None:
    tables = ("orders", "order_items", "product_variants", "idempotency_keys")
    before = snapshot(shop.ft.context.store, tables)
    shop.ft.context.payments.fail_next_create()  # type: ignore[attr-defined]
    with pytest.raises(PaymentError):
        shop.place(idempotency_key="retry-me")
    assert snapshot(shop.ft.context.store, tables) == before
    assert shop.place(idempotency_key="retry-me").status == OrderStatus.CREATED


def test_payment_webhooks(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    order = shop.place()
    payload, header = ft.context.payments.succeed(order.payment_intent_ref)  # type: ignore[attr-defined]
    assert ft.orders.handle_payment_webhook(payload, header).status == OrderStatus.PAID
    assert ft.orders.handle_payment_webhook(payload, header) is None
    assert ft.orders.handle_payment_webhook(payload, header) is None
    paid_events = [
        e
        for e in ft.audit.events(entity_id=order.id, actor=Actor.system()).items
        if e.metadata.get("new", {}).get("status") == "paid"
    ]
    assert len(paid_events) == 1
    other = shop.place()
    good_payload, good_header = ft.context.payments.succeed(other.payment_intent_ref)  # type: ignore[attr-defined]
    before = snapshot(ft.context.store, ("orders", "idempotency_keys"))
    with pytest.raises(AuthenticationFailed):
        ft.orders.handle_payment_webhook(good_payload.replace(b"succeeded", b"succeeded "), good_header)
    with pytest.raises(AuthenticationFailed):
        ft.orders.handle_payment_webhook(good_payload, good_header.replace("v1=", "v1=0"))
    clock.advance(seconds=301)
    with pytest.raises(AuthenticationFailed):
        ft.orders.handle_payment_webhook(good_payload, good_header)
    refund_payload, refund_header = ft.context.payments.sign(  # type: ignore[attr-defined]
        {
            "id": "evt_other",
            "object": "event",
            "type": "customer.created",
            "created": int(clock.now().timestamp()),
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    )
    assert ft.orders.handle_payment_webhook(refund_payload, refund_header) is None  # acknowledged, ignored
    assert snapshot(ft.context.store, ("orders", "idempotency_keys")) == before


def test_racing_buyers_sell_exactly_the_stock(shop: Shop) -> None:
    results: list[str] = []
    lock = threading.Lock()
    buyers = [shop.new_shopper(f"racer{n}") for n in range(4)]
    gate = threading.Barrier(len(buyers))

    def buy(user: Any, address: Any, card: Any) -> None:
        gate.wait()
        for _ in range(4):
            try:
                shop.place(
                    user_id=user.id,
                    shipping_address_id=address.id,
                    billing_address_id=address.id,
                    payment_method_id=card.id,
                )
                outcome = "sold"
            except InsufficientInventory:
                outcome = "none left"
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=buy, args=buyer) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results.count("sold") == 10 and len(results) == 16
    assert stock(shop, "M") == 0


def test_two_threads_moving_one_order_have_one_winner(shop: Shop) -> None:
    order = shop.pay(shop.place())
    outcomes: list[str] = []
    gate = threading.Barrier(2)

    def move() -> None:
        gate.wait()
        try:
            shop.ft.orders.send_to_brand(order.id, actor=Actor.system())
            outcomes.append("moved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=move) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("moved") >= 1 and len(outcomes) == 2
    moves = [
        e
        for e in shop.ft.audit.events(entity_id=order.id, actor=Actor.system()).items
        if e.metadata.get("new", {}).get("status") == "sent_to_brand"
    ]
    assert len(moves) == 1


def test_evolve_is_not_an_escape_hatch(shop: Shop) -> None:
    order = shop.place()
    with pytest.raises(ValidationError):
        attrs.evolve(order, refunded_cents=order.totals.total + 1)

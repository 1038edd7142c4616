"""Effects through the outbox, and the provider's truth (issue 11), on both stores.

Expectations come from API.md and ARCHITECTURE.md decisions 8 and 9: no provider or network
call inside a transaction, effects delivered once after commit (inline, or by the dispatcher
after a crash), retried with backoff, parked as dead letters; webhooks and ``reconcile``
bring refunds and payments in, checked against the order's amount and currency.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    CloseReason,
    EffectKind,
    InvalidTransition,
    OrderStatus,
    OutboxStatus,
    RewardStatus,
)
from fittwin_core.ports import OutgoingWebhook, Store
from fittwin_core.services.base import Settings
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import Shop, open_shop

SYSTEM = Actor.system()
IP = "203.0.113.9"


class FlakySender:
    """A brand endpoint that refuses the first ``failures`` deliveries (all of them with ``None``)."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.attempts: list[OutgoingWebhook] = []
        self.received: list[OutgoingWebhook] = []

    def send(self, webhook: OutgoingWebhook) -> None:
        self.attempts.append(webhook)
        if self.failures is None or len(self.attempts) <= self.failures:
            raise ConnectionError("brand endpoint down")
        self.received.append(webhook)


def _ft(store: Store, clock: FrozenClock, ids: SequentialIds, **kwargs: Any) -> FitTwin:
    return connect(
        store,
        objects=FsspecObjectStore("memory://fittwin-effects"),
        payments=kwargs.pop("payments", None) or FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        clock=clock,
        ids=ids,
        **kwargs,
    )


def _paid(store: Store, clock: FrozenClock, ids: SequentialIds, **kwargs: Any) -> tuple[FitTwin, Shop, Any]:
    """A FitTwin made by :func:`_ft`, its shop, and one order placed and paid there."""
    ft = _ft(store, clock, ids, **kwargs)
    shop = open_shop(ft)
    return ft, shop, shop.pay(shop.place())


def _dispatch_refunds_in_full(shop: Shop, order: Any) -> None:
    """The dispatcher delivers the order's one refund: the provider has refunded it all."""
    (refund,) = effects_of(shop, order, EffectKind.REFUND)
    assert refund.id in shop.ft.effects.dispatch(actor=SYSTEM).delivered
    assert provider_refunds(shop, order) == order.totals.total


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def fake(shop: Shop) -> FakePayments:
    payments = shop.ft.context.payments
    assert isinstance(payments, FakePayments)
    return payments


def provider_refunds(shop: Shop, order: Any) -> int:
    return sum(r.amount for r in fake(shop).refunds(order.payment_intent_ref))


def effects_of(shop: Shop, order: Any, kind: EffectKind) -> list[Any]:
    return [e for e in shop.ft.effects.for_order(order.id, actor=SYSTEM) if e.kind == kind]


def referred_paid_order(shop: Shop) -> Any:
    ft = shop.ft
    friend, address, card = shop.new_shopper("grace")
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    ft.referrals.record_click(link.rid, ip=IP, user_agent="x", actor=Actor.anonymous())
    order = shop.place(
        [(shop.variants["M"].id, 2)],
        user_id=friend.id,
        shipping_address_id=address.id,
        billing_address_id=address.id,
        payment_method_id=card.id,
        rid=link.rid,
    )
    return shop.pay(order)


# ---------------------------------------------------------------------------- the provider's truth


def test_a_refund_made_at_the_provider_is_recorded_and_reverses_the_reward_once(shop: Shop) -> None:
    order = referred_paid_order(shop)
    (entry,) = shop.ft.rewards.entries(order_id=order.id, actor=SYSTEM).items
    assert entry.status == RewardStatus.PENDING_HOLD
    refund = fake(shop).refund(order.payment_intent_ref, amount=2000, idempotency_key="dashboard-1")
    payload, header = fake(shop).refund_webhook(refund.id)
    updated = shop.ft.orders.handle_payment_webhook(payload, header)
    assert updated is not None and updated.refunded_cents == 2000 and updated.status == OrderStatus.PAID
    entries = shop.ft.rewards.entries(order_id=order.id, actor=SYSTEM).items
    assert [e.status for e in entries] == [RewardStatus.CANCELLED]
    assert shop.ft.orders.handle_payment_webhook(payload, header) is None  # a replay changes nothing
    again = shop.ft.orders.get(order.id, actor=SYSTEM)
    assert again.refunded_cents == 2000
    assert shop.ft.rewards.entries(order_id=order.id, actor=SYSTEM).items == entries


def test_a_payment_for_the_wrong_amount_does_not_pay(shop: Shop) -> None:
    order = shop.place()
    for amount, currency in ((order.totals.total - 1, "eur"), (order.totals.total, "usd")):
        event = {
            "id": f"evt_forged_{amount}_{currency}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": order.payment_intent_ref,
                    "object": "payment_intent",
                    "amount": amount,
                    "currency": currency,
                    "status": "succeeded",
                }
            },
        }
        payload, header = fake(shop).sign(event)
        assert shop.ft.orders.handle_payment_webhook(payload, header).status == OrderStatus.CREATED
    assert shop.ft.orders.get(order.id, actor=SYSTEM).status == OrderStatus.CREATED
    flagged = [
        e
        for e in shop.ft.audit.events(entity_id=order.id, actor=SYSTEM).items
        if e.action == "payment.mismatch"
    ]
    assert len(flagged) == 2


def test_unknown_event_types_are_acknowledged_and_ignored(shop: Shop) -> None:
    payload, header = fake(shop).sign(
        {
            "id": "evt_x",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"object": "customer"}},
        }
    )
    assert shop.ft.orders.handle_payment_webhook(payload, header) is None


def test_a_canceled_intent_closes_a_created_order_and_releases_its_stock(shop: Shop) -> None:
    order = shop.place([(shop.variants["M"].id, 3)])
    fake(shop).cancel_payment_intent(order.payment_intent_ref, idempotency_key="provider-side")
    (payload, header) = fake(shop).webhooks()[-1]
    assert json.loads(payload)["type"] == "payment_intent.canceled"
    closed = shop.ft.orders.handle_payment_webhook(payload, header)
    assert closed is not None and (closed.status, closed.close_reason) == (
        OrderStatus.CLOSED,
        CloseReason.CANCELLED,
    )
    assert shop.ft.catalog.variant(shop.variants["M"].id, actor=Actor.anonymous()).inventory == 10
    assert effects_of(shop, order, EffectKind.CANCEL_PAYMENT) == []  # the provider cancelled it already


def test_a_failed_payment_is_recorded_and_the_order_waits(shop: Shop) -> None:
    order = shop.place()
    payload, header = fake(shop).fail(order.payment_intent_ref)
    assert shop.ft.orders.handle_payment_webhook(payload, header).status == OrderStatus.CREATED
    actions = [e.action for e in shop.ft.audit.events(entity_id=order.id, actor=SYSTEM).items]
    assert "payment.failed" in actions
    assert shop.pay(order).status == OrderStatus.PAID  # another card may still pay it


def test_reconcile_brings_in_a_missed_payment_and_a_missed_refund(shop: Shop) -> None:
    order = referred_paid_order(shop)
    fresh = shop.place()
    fake(shop).succeed(fresh.payment_intent_ref)  # its webhook is lost
    assert shop.ft.orders.reconcile(fresh.id, actor=SYSTEM).status == OrderStatus.PAID
    fake(shop).refund(order.payment_intent_ref, amount=order.totals.total, idempotency_key="dash")
    reconciled = shop.ft.orders.reconcile(order.id, actor=SYSTEM)
    assert reconciled.refunded_cents == order.totals.total
    assert [e.status for e in shop.ft.rewards.entries(order_id=order.id, actor=SYSTEM).items] == [
        RewardStatus.CANCELLED
    ]
    settled = shop.ft.orders.get(order.id, actor=SYSTEM)  # with the refund notification logged
    assert shop.ft.orders.reconcile(order.id, actor=SYSTEM) == settled  # nothing new


def test_a_manual_payment_can_be_returned_and_closed(shop: Shop) -> None:
    order = shop.place()
    ft = shop.ft
    for move in ("mark_paid", "send_to_brand", "mark_fulfilled", "mark_delivered", "request_return", "close"):
        order = getattr(ft.orders, move)(order.id, actor=SYSTEM)
    assert (order.status, order.close_reason, order.refunded_cents) == (
        OrderStatus.CLOSED,
        CloseReason.RETURNED,
        order.totals.total,
    )
    (refund,) = effects_of(shop, order, EffectKind.REFUND)
    assert refund.status == OutboxStatus.DELIVERED and refund.outcome.startswith("out of band")
    assert provider_refunds(shop, order) == 0  # nothing was taken there, nothing given back there


# ---------------------------------------------------------------------------- delivery


def test_a_cancel_refunds_once_after_commit(shop: Shop) -> None:
    order = shop.pay(shop.place())
    cancelled = shop.ft.orders.cancel(order.id, actor=Actor.shopper(shop.shopper.id))
    assert cancelled.refunded_cents == order.totals.total
    (refund,) = effects_of(shop, order, EffectKind.REFUND)
    assert (refund.status, refund.attempts) == (OutboxStatus.DELIVERED, 1)
    assert provider_refunds(shop, order) == order.totals.total
    assert shop.ft.effects.dispatch(actor=SYSTEM).attempted == 0


def test_effects_left_by_a_crash_are_delivered_by_the_next_dispatch_once(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    # No inline delivery stands for a process that died right after its commit.
    ft, shop, order = _paid(store, clock, ids, settings=Settings(dispatch_inline=False))
    ft.orders.cancel(order.id, actor=SYSTEM)
    assert provider_refunds(shop, order) == 0
    (refund,) = effects_of(shop, order, EffectKind.REFUND)
    assert refund.status == OutboxStatus.PENDING
    report = ft.effects.dispatch(actor=SYSTEM)
    assert refund.id in report.delivered
    assert provider_refunds(shop, order) == order.totals.total
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0
    ft.close()


def test_effects_recorded_for_inline_delivery_wait_for_their_claim_if_the_process_stops(
    store: Store, clock: FrozenClock, ids: SequentialIds, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inline delivery (the default) writes the effects claimed by the call that records them:
    # a process that stops between the commit and the delivery leaves them to the dispatcher
    # once that claim (60 s) is over, and they are delivered once.
    ft, shop, order = _paid(store, clock, ids)
    monkeypatch.setattr(ft.effects, "_deliver_recorded", lambda recorded: [])  # the process stops here
    ft.orders.cancel(order.id, actor=SYSTEM)
    assert provider_refunds(shop, order) == 0
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0  # still claimed
    clock.advance(seconds=61)
    _dispatch_refunds_in_full(shop, order)
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0
    ft.close()


def test_a_placed_notification_whose_claim_ran_out_meanwhile_leaves_the_intent_attached(
    store: Store, clock: FrozenClock, ids: SequentialIds, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "placed" notification's outcome is written with the payment intent's attachment. When
    # the provider takes longer than the claim and the dispatcher delivers the notification
    # meanwhile, the outcome's compare-and-set fails: the intent is attached all the same, and
    # only the delivery whose claim held is logged.
    ft = _ft(store, clock, ids)
    shop = open_shop(ft)
    payments = fake(shop)
    opening = payments.create_payment_intent

    def slow(**kwargs: Any) -> Any:
        clock.advance(seconds=61)
        assert len(ft.effects.dispatch(actor=SYSTEM).delivered) == 1  # the claim ran out: taken over
        return opening(**kwargs)

    monkeypatch.setattr(payments, "create_payment_intent", slow)
    order = shop.place()
    assert order.payment_intent_ref is not None
    stored = ft.orders.get(order.id, actor=SYSTEM)
    assert stored.payment_intent_ref == order.payment_intent_ref
    assert [(n.kind, n.status) for n in stored.notifications or ()] == [("order_placed", "sent")]
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0
    ft.close()


def test_a_transaction_outliving_half_the_claim_leaves_its_effects_to_the_dispatcher(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    ft, shop, order = _paid(store, clock, ids)
    with ft.transaction(actor=SYSTEM) as tx:
        tx.orders.cancel(order.id, actor=SYSTEM)
        clock.advance(seconds=45)  # the claim written with the refund has 15 s left
    assert provider_refunds(shop, order) == 0  # not delivered at the commit: it might run out mid-way
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0
    clock.advance(seconds=16)
    _dispatch_refunds_in_full(shop, order)
    ft.close()


def test_a_dispatcher_dying_mid_delivery_is_taken_over_after_its_lease(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    ft, shop, order = _paid(store, clock, ids, settings=Settings(dispatch_inline=False))
    ft.orders.cancel(order.id, actor=SYSTEM)
    (refund,) = effects_of(shop, order, EffectKind.REFUND)
    # The first dispatcher claims the refund and makes it at the provider, then dies before
    # recording the outcome.
    with store.unit_of_work() as uow:
        uow.outbox.claim(
            now=clock.now(),
            lease_until=clock.now() + timedelta(seconds=60),
            claimer=ids.new_token(),
            limit=10,
        )
        uow.commit()
    fake(shop).refund(
        order.payment_intent_ref, amount=order.totals.total, idempotency_key=refund.idempotency_key
    )
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0  # leased
    clock.advance(seconds=61)
    assert refund.id in ft.effects.dispatch(actor=SYSTEM).delivered
    assert provider_refunds(shop, order) == order.totals.total  # the same key: refunded once
    ft.close()


def _brand_with_hook(shop: Shop) -> None:
    shop.ft.brands.add_webhook(
        shop.brand.id, "https://hooks.brand.example/in", ["order.sent_to_brand"], actor=shop.owner_actor
    )


def test_a_brand_webhook_is_retried_with_backoff_and_received_once(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    sender = FlakySender(failures=3)
    ft = _ft(store, clock, ids, webhooks=sender, settings=Settings(outbox_backoff_seconds=10))
    shop = open_shop(ft)
    _brand_with_hook(shop)
    order = ft.orders.send_to_brand(shop.pay(shop.place()).id, actor=SYSTEM)
    assert order.status == OrderStatus.SENT_TO_BRAND  # the failed delivery never fails the move
    (hook,) = effects_of(shop, order, EffectKind.BRAND_WEBHOOK)
    waits = []
    for _ in range(6):
        if sender.received:
            break
        before = clock.now()
        assert ft.effects.dispatch(actor=SYSTEM).attempted == 0  # not due yet
        effect = ft.effects.get(hook.id, actor=SYSTEM)
        waits.append(effect.available_at - before)
        clock.advance(seconds=(effect.available_at - clock.now()).total_seconds())
        ft.effects.dispatch(actor=SYSTEM)
    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert len(sender.received) == 1 and len(sender.attempts) == 4
    assert (
        len({w.headers["FitTwin-Event-Id"] for w in sender.attempts}) == 1
    )  # one event id to de-duplicate on
    done = ft.effects.get(hook.id, actor=SYSTEM)
    assert done.status == OutboxStatus.DELIVERED and [a.ok for a in done.history] == [
        False,
        False,
        False,
        True,
    ]
    body = json.loads(sender.received[0].payload)
    assert (body["id"], body["type"], body["data"]["order_id"]) == (
        str(hook.id),
        "order.sent_to_brand",
        str(order.id),
    )
    ft.close()


def test_a_brand_that_never_answers_ends_in_the_dead_letter_and_can_be_retried(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    sender = FlakySender(failures=None)
    ft = _ft(
        store, clock, ids, webhooks=sender, settings=Settings(outbox_max_attempts=3, outbox_backoff_seconds=0)
    )
    shop = open_shop(ft)
    _brand_with_hook(shop)
    order = ft.orders.send_to_brand(shop.pay(shop.place()).id, actor=SYSTEM)
    ft.effects.dispatch(actor=SYSTEM)
    ft.effects.dispatch(actor=SYSTEM)
    (dead,) = ft.effects.failed(actor=SYSTEM).items
    assert (dead.status, dead.attempts, dead.order_id) == (OutboxStatus.DEAD, 3, order.id)
    assert dead.outcome == "ConnectionError: brand endpoint down"
    assert ft.effects.dispatch(actor=SYSTEM).attempted == 0
    with pytest.raises(InvalidTransition):
        ft.effects.retry(effects_of(shop, order, EffectKind.NOTIFY_SHOPPER)[0].id, actor=SYSTEM)
    sender.failures = 0
    ft.effects.retry(dead.id, actor=SYSTEM)
    assert ft.effects.dispatch(actor=SYSTEM).delivered == (dead.id,)
    assert len(sender.received) == 1 and ft.effects.failed(actor=SYSTEM).items == ()
    ft.close()


def test_shopper_notifications_are_logged_on_the_order(
    store: Store, clock: FrozenClock, ids: SequentialIds
) -> None:
    ft, shop, order = _paid(store, clock, ids)
    for move in ("send_to_brand", "mark_fulfilled", "mark_delivered"):
        order = getattr(ft.orders, move)(order.id, actor=SYSTEM)
    ft.orders.request_return(order.id, actor=SYSTEM)
    ft.orders.close(order.id, actor=SYSTEM)
    logged = ft.orders.get(order.id, actor=SYSTEM).notifications
    assert [(n.kind, n.channel.value, n.status) for n in logged] == [
        ("order_placed", "email", "sent"),
        ("order_paid", "email", "sent"),
        ("order_shipped", "email", "sent"),
        ("order_delivered", "email", "sent"),
        ("order_refunded", "email", "sent"),
    ]
    sent = ft.context.notifier.sent  # type: ignore[attr-defined]
    assert [n.template for n in sent] == [n.kind for n in logged]
    assert all(n.user_id == shop.shopper.id and n.order_id == order.id for n in sent)
    assert "Ada" not in repr(sent) and "ada@example.com" not in repr(sent)
    ft.close()


def test_abandoned_checkouts_are_cancelled_releasing_stock_and_the_intent(
    shop: Shop, clock: FrozenClock
) -> None:
    ft = shop.ft
    stale = shop.place([(shop.variants["S"].id, 4)])
    clock.advance(hours=23)
    recent = shop.place([(shop.variants["S"].id, 1)])
    paid = shop.pay(shop.place([(shop.variants["S"].id, 1)]))
    clock.advance(hours=2)
    cancelled = ft.orders.cancel_abandoned(actor=SYSTEM)
    assert [o.id for o in cancelled] == [stale.id]
    assert ft.orders.get(stale.id, actor=SYSTEM).status == OrderStatus.CLOSED
    assert {ft.orders.get(o.id, actor=SYSTEM).status for o in (recent, paid)} == {
        OrderStatus.CREATED,
        OrderStatus.PAID,
    }
    assert ft.catalog.variant(shop.variants["S"].id, actor=Actor.anonymous()).inventory == 8
    assert fake(shop).retrieve_payment_intent(stale.payment_intent_ref).status == "canceled"
    assert [o.id for o in ft.orders.cancel_abandoned(actor=SYSTEM, older_than_minutes=60)] == [recent.id]


def test_effects_of_a_transaction_wait_for_its_commit(shop: Shop) -> None:
    order = shop.pay(shop.place())
    with pytest.raises(RuntimeError), shop.ft.transaction(actor=SYSTEM) as tx:
        tx.orders.cancel(order.id, actor=SYSTEM)
        raise RuntimeError("the block fails after the cancel")
    assert provider_refunds(shop, order) == 0 and effects_of(shop, order, EffectKind.REFUND) == []
    with shop.ft.transaction(actor=SYSTEM) as tx:
        tx.orders.cancel(order.id, actor=SYSTEM)
        assert provider_refunds(shop, order) == 0  # not before the commit
    assert provider_refunds(shop, order) == order.totals.total


def test_outcomes_commit_without_waiting_for_the_disk_but_never_a_hosts_transaction(
    store: Store, clock: FrozenClock, ids: SequentialIds, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An outcome lost in a crash of the database is delivered again, so its own transaction
    # need not wait for the disk. Inside ft.transaction the host's commit decides: not relaxed.
    relaxed: list[object] = []
    with store.unit_of_work() as probe:
        kind = type(probe)
    spy = lambda uow: relaxed.append(uow)  # noqa: E731, PLW0108 — a method: a builtin would not bind
    monkeypatch.setattr(kind, "relax_durability", spy)
    ft, shop, order = _paid(store, clock, ids, settings=Settings(dispatch_inline=False))
    assert relaxed == []
    assert len(ft.effects.dispatch(actor=SYSTEM).delivered) == 2  # placed and paid, told the shopper
    assert len(relaxed) == 2
    ft.orders.cancel(order.id, actor=SYSTEM)
    with ft.transaction(actor=SYSTEM) as tx:
        assert len(tx.effects.dispatch(actor=SYSTEM).delivered) == 2  # the refund and its notice
    assert len(relaxed) == 2
    assert provider_refunds(shop, order) == order.totals.total
    ft.close()

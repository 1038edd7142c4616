"""Round trips to PostgreSQL of a checkout, counted on the wire by ``RoundTripCounter``.

The aims (issue 16) are ``place`` of a 2-line order in at most 6 round trips including the
commit, and ``mark_paid`` in at most 2. Reached, with the outbox's guarantees, for the calls
themselves (effects left to the dispatcher): ``place`` 3 — its transaction's start with every
read; the outbox row, the stock, the order and its lines with the commit (while every line
leaves more stock than the low-stock threshold; one round trip more otherwise); then the
payment intent's compare-and-set with its own transaction's start and commit — and
``mark_paid`` 2 (its start with the lock of the order row; the compare-and-set of the changed
columns, the outbox row and the commit). The dispatcher then delivers the two shopper
notifications of a place-and-pay in 4 (a claim, then each outcome with the order's
notification log, with its start and commit). Delivered inline (the default), each call's
``mark_paid``'s notification costs one round trip more (no claim); ``place``'s goes with the
payment intent's compare-and-set, at no round trip of its own. These are the numbers a change
must not raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import psycopg
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.postgres import PostgresStore
from fittwin_adapters.postgres.roundtrips import RoundTripCounter
from fittwin_adapters.postgres.store import PostgresOrderRepository
from fittwin_core.domain import Actor, EffectKind, OrderStatus
from fittwin_core.services.base import Settings
from tests.support.postgres import libpq_dsn
from tests.support.shop import open_shop

pytestmark = pytest.mark.postgres

PLACE_REACHED = 3  # aim: 6
MARK_PAID_REACHED = 2  # aim: 2
DISPATCH_REACHED = (2, 4)  # effects delivered, round trips
CHECKOUTS = 3  # counted from a store's first: statements are prepared in the round trip that first runs them


@pytest.fixture
def counter(postgres_url: Any) -> Iterator[RoundTripCounter]:
    with RoundTripCounter(postgres_url) as relay:
        yield relay


def _connect(store: PostgresStore, settings: Settings) -> Any:
    return connect(
        store,
        payments=FakePayments(),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        settings=settings,
    )


def test_the_counter_counts_each_wait_for_the_server_once(counter: RoundTripCounter) -> None:
    with psycopg.connect(libpq_dsn(counter.url), autocommit=True) as conn:
        counter.reset()
        conn.execute("SELECT 1").fetchall()
        assert counter.count == 1
        conn.execute("SELECT 1; SELECT 2")  # one simple query, two statements
        assert counter.count == 2
        with conn.pipeline():
            cursors = [conn.execute("SELECT %s::int", (n,)) for n in range(5)]
        assert [c.fetchone() for c in cursors] == [(n,) for n in range(5)]
        assert counter.count == 3
        with conn.transaction():
            conn.execute("SELECT 1")
        assert counter.count == 6  # BEGIN, SELECT, COMMIT


def test_a_two_line_checkout_and_its_payment_take_the_round_trips_reached(
    counter: RoundTripCounter,
) -> None:
    store = PostgresStore(counter.url)
    ft = _connect(store, Settings(dispatch_inline=False))  # the calls alone; the dispatcher apart
    try:
        shop = open_shop(ft, stock=100)
        lines = [(shop.variants["M"].id, 1), (shop.variants["L"].id, 2)]
        counts = []
        dispatched = []
        for _ in range(CHECKOUTS):
            counter.reset()
            order = shop.place(lines)
            placed = counter.reset()
            paid = ft.orders.mark_paid(order.id, actor=Actor.system())
            counts.append((placed, counter.reset()))
            report = ft.effects.dispatch(actor=Actor.system())
            dispatched.append((len(report.delivered), counter.reset()))
            assert paid.status == OrderStatus.PAID
            assert order.payment_intent_ref is not None
        assert counts == [(PLACE_REACHED, MARK_PAID_REACHED)] * CHECKOUTS
        assert dispatched == [DISPATCH_REACHED] * CHECKOUTS
        # the same effects: stock taken, lines written, an audit row for every write by its actor
        large = ft.catalog.variant(shop.variants["L"].id, actor=Actor.anonymous())
        assert large.inventory == 100 - 2 * CHECKOUTS
        items = ft.orders.items(order.id, actor=Actor.shopper(shop.shopper.id))
        assert sorted((i.size_label, i.qty, i.reserved_qty) for i in items) == [("L", 2, 2), ("M", 1, 1)]
        with store.unit_of_work() as uow:
            audit = uow.event_logs.where(entity_id=order.id, order_by="id")
            variant_audit = uow.event_logs.where(entity_id=shop.variants["L"].id, actor_type="shopper")
        assert [(e.action, e.actor) for e in audit] == [
            ("insert", Actor.shopper(shop.shopper.id)),
            ("update", Actor.shopper(shop.shopper.id)),
            ("update", Actor.system()),  # paid
            ("update", Actor.system()),  # the "placed" notification logged on the order
            ("update", Actor.system()),  # the "paid" notification logged on the order
        ]
        assert len(variant_audit) == CHECKOUTS
    finally:
        ft.close()


def test_with_inline_delivery_the_notifications_cost_one_round_trip(counter: RoundTripCounter) -> None:
    # The default: the effects recorded by a call are written claimed by it and delivered after
    # its commit. The "placed" notification's outcome and log go with the intent's
    # compare-and-set; the "paid" one's take a round trip of their own.
    store = PostgresStore(counter.url)
    ft = _connect(store, Settings())
    try:
        shop = open_shop(ft, stock=100)
        lines = [(shop.variants["M"].id, 1), (shop.variants["L"].id, 2)]
        counts = []
        for _ in range(CHECKOUTS):
            counter.reset()
            order = shop.place(lines)
            placed = counter.reset()
            ft.orders.mark_paid(order.id, actor=Actor.system())
            counts.append((placed, counter.reset()))
        assert counts == [(PLACE_REACHED, MARK_PAID_REACHED + 1)] * CHECKOUTS
        notified = ft.orders.get(order.id, actor=Actor.shopper(shop.shopper.id)).notifications
        assert [(n.kind, n.status) for n in notified or ()] == [
            ("order_placed", "sent"),
            ("order_paid", "sent"),
        ]
        with store.unit_of_work() as uow:
            audit = uow.event_logs.where(entity_id=order.id, order_by="id")
        shopper = Actor.shopper(shop.shopper.id)
        assert [(e.action, e.actor) for e in audit] == [("insert", shopper)] + [("update", shopper)] + [
            ("update", Actor.system())  # the "placed" notification, in the same transaction
        ] * 3
        assert [sorted(e.metadata["new"]) for e in audit[1:]] == [
            ["payment_intent_ref"],
            ["notifications"],
            ["paid_at", "status"],
            ["notifications"],
        ]
        assert ft.effects.dispatch(actor=Actor.system()).attempted == 0  # nothing left over
    finally:
        ft.close()


@contextmanager
def _watched_shop(url: Any, *, stock: int) -> Iterator[tuple[PostgresStore, Any, Any]]:
    """A shop whose brand listens to ``variant.low_stock`` (threshold 5), its "M" variant at
    ``stock``; effects left to the dispatcher."""
    store = PostgresStore(url)
    ft = _connect(store, Settings(dispatch_inline=False, low_stock_threshold=5))
    try:
        shop = open_shop(ft, stock=stock)
        ft.brands.add_webhook(
            shop.brand.id, "https://hooks.shop.example/in", ["variant.low_stock"], actor=shop.owner_actor
        )
        yield store, ft, shop
    finally:
        ft.close()


def test_a_checkout_that_takes_stock_to_the_threshold_takes_one_round_trip_more(
    counter: RoundTripCounter,
) -> None:
    # Settings' threshold 5: checkouts leaving 8, 7, 6 leave more (3 round trips); those
    # leaving 5 or less take the stock and then write what it calls for before the commit (4,
    # as every checkout took before): the one leaving 5 crosses the threshold (1 more: the
    # brand's webhooks read for its low-stock event, whose outbox row goes with the commit),
    # the one leaving 0 restates the variant out of stock (1 more).
    with _watched_shop(counter.url, stock=9) as (store, ft, shop):
        variant = shop.variants["M"].id
        counts = []
        for _ in range(9):
            counter.reset()
            shop.place([(variant, 1)])
            counts.append(counter.reset())
        assert counts == [3, 3, 3, 5, 4, 4, 4, 4, 5]
        after = ft.catalog.variant(variant, actor=Actor.anonymous())
        assert (after.inventory, after.status.value) == (0, "out_of_stock")
        with store.unit_of_work() as uow:
            hooks = uow.outbox.where(kind=EffectKind.BRAND_WEBHOOK)
        assert [(h.payload["event"], h.payload["data"]["inventory"]) for h in hooks] == [
            ("variant.low_stock", 5)
        ]


def test_a_checkout_whose_stock_went_meanwhile_goes_on_as_one_that_crosses_the_threshold(
    postgres_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stock read says the line leaves more than the threshold, but another checkout takes
    # some before this one's update: the commit with the stock is refused, and the checkout
    # goes on as one that crosses the threshold, with one "placed" notification.
    with _watched_shop(postgres_url, stock=8) as (store, ft, shop):
        variant = shop.variants["M"].id
        commit_with_items = PostgresOrderRepository.commit_with_items

        def meanwhile(self: Any, *args: Any, **kwargs: Any) -> Any:
            with psycopg.connect(libpq_dsn(postgres_url), autocommit=True) as other:
                other.execute("UPDATE fittwin.product_variants SET inventory = 6 WHERE id = %s", (variant,))
            return commit_with_items(self, *args, **kwargs)

        monkeypatch.setattr(PostgresOrderRepository, "commit_with_items", meanwhile)
        order = shop.place([(variant, 1)])
        assert ft.catalog.variant(variant, actor=Actor.anonymous()).inventory == 5
        assert [i.qty for i in ft.orders.items(order.id, actor=Actor.shopper(shop.shopper.id))] == [1]
        with store.unit_of_work() as uow:
            effects = uow.outbox.where(order_by="id")
        assert sorted(e.idempotency_key.split(":")[0] for e in effects) == ["notify", "webhook"]
        (hook,) = [e for e in effects if e.kind == EffectKind.BRAND_WEBHOOK]
        assert (hook.payload["event"], hook.payload["data"]["inventory"]) == ("variant.low_stock", 5)


def test_a_change_of_actor_goes_with_the_next_round_trip(counter: RoundTripCounter) -> None:
    # act_as between deferred writes sends nothing of its own: the settings the audit triggers
    # read go in order with the writes, each audited as the actor who made it.
    store = PostgresStore(counter.url)
    ft = _connect(store, Settings(dispatch_inline=False))
    try:
        shop = open_shop(ft, stock=100)
        order = shop.place([(shop.variants["M"].id, 1)])
        staff = Actor.platform(ft.context.ids.new_id())
        with store.unit_of_work(Actor.system()) as uow:
            before = uow.orders.get(order.id)
            counter.reset()
            refunded = attrs.evolve(before, refunded_cents=1)
            uow.orders.update_changed(before, refunded)
            uow.act_as(staff)
            uow.orders.update_changed(refunded, attrs.evolve(refunded, refunded_cents=2))
            uow.commit()
            assert counter.count == 1  # the start, both writes, the change of actor and the commit
        with store.unit_of_work() as uow:
            audit = uow.event_logs.where(entity_id=order.id, action="update", order_by="id")
        assert [(e.actor, e.metadata["new"]) for e in audit[-2:]] == [
            (Actor.system(), {"refunded_cents": 1}),
            (staff, {"refunded_cents": 2}),
        ]
    finally:
        ft.close()

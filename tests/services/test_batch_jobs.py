"""Batch jobs survive one conflict: they skip what another writer holds, report it, and a
re-run finishes the work without doing anything twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import CloseReason, Conflict, Order, OrderStatus, RewardStatus
from fittwin_core.ports import Store, UnitOfWork
from fittwin_core.services.base import BatchResult
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import Shop, open_shop

IP = "203.0.113.50"


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft)


def _delivered(shop: Shop, *, rid: str | None = None, buyer: tuple[Any, Any, Any] | None = None) -> Order:
    user, address, card = buyer or (shop.shopper, shop.address, shop.card)
    order = shop.pay(
        shop.place(
            user_id=user.id,
            shipping_address_id=address.id,
            billing_address_id=address.id,
            payment_method_id=card.id,
            rid=rid,
        )
    )
    for move in (shop.ft.orders.send_to_brand, shop.ft.orders.mark_fulfilled, shop.ft.orders.mark_delivered):
        order = move(order.id, actor=Actor.system())
    return order


class _RefuseOnce:
    """Stands in for ``Orders._apply``: refuses (as a concurrent writer would) the first move of
    one order, then applies every move as before."""

    def __init__(self, orders: Any, order_id: uuid.UUID) -> None:
        self.apply = orders._apply
        self.order_id = order_id
        self.armed = True

    def __call__(self, uow: UnitOfWork, order: Order, *args: Any, **kwargs: Any) -> Order:
        if self.armed and order.id == self.order_id:
            self.armed = False
            raise Conflict("orders: changed concurrently")
        return self.apply(uow, order, *args, **kwargs)  # type: ignore[no-any-return]


def test_closing_expired_returns_skips_an_order_that_conflicts_and_a_rerun_closes_it(
    shop: Shop, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ft = shop.ft
    orders = [_delivered(shop) for _ in range(3)]
    clock.advance(days=31)
    monkeypatch.setattr(ft.orders, "_apply", _RefuseOnce(ft.orders, orders[1].id))

    first = ft.orders.close_expired_returns(actor=Actor.system())

    assert isinstance(first, BatchResult)
    assert [o.id for o in first] == [orders[0].id, orders[2].id]
    assert first.skipped == [orders[1].id]
    assert ft.orders.get(orders[1].id, actor=Actor.system()).status == OrderStatus.DELIVERED

    second = ft.orders.close_expired_returns(actor=Actor.system())

    assert ([o.id for o in second], second.skipped) == ([orders[1].id], [])
    assert {ft.orders.get(o.id, actor=Actor.system()).close_reason for o in orders} == {CloseReason.COMPLETED}
    assert ft.orders.close_expired_returns(actor=Actor.system()) == []  # nothing closed twice


def test_release_due_runs_again_without_moving_an_entry_twice(shop: Shop, clock: FrozenClock) -> None:
    ft = shop.ft
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    buyers = [shop.new_shopper(f"buyer{n}") for n in range(3)]
    orders = []
    for n, buyer in enumerate(buyers):
        ft.referrals.record_click(link.rid, ip=f"198.51.100.{n}", user_agent="x", actor=Actor.anonymous())
        orders.append(_delivered(shop, rid=link.rid, buyer=buyer))
    clock.advance(days=30)

    released = ft.rewards.release_due(actor=Actor.system())

    assert sorted(e.order_id for e in released) == sorted(o.id for o in orders)
    assert released.skipped == []
    again = ft.rewards.release_due(actor=Actor.system())
    assert (list(again), again.skipped) == ([], [])
    statuses = [ft.rewards.entries(order_id=o.id, actor=Actor.system()).items[0].status for o in orders]
    assert statuses == [RewardStatus.PAYABLE] * 3


@pytest.fixture
def impatient_ft(
    postgres_store_factory: Callable[..., Store], clock: FrozenClock, ids: SequentialIds
) -> Iterator[FitTwin]:
    """FitTwin on PostgreSQL that waits at most 100 ms for a row lock."""
    app = connect(
        postgres_store_factory(clock=clock, ids=ids, lock_timeout_ms=100),
        objects=FsspecObjectStore(f"memory://fittwin-tests/{uuid.uuid4().hex}"),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    yield app
    app.close()


@pytest.mark.postgres
def test_release_due_skips_an_entry_another_writer_holds_and_a_rerun_releases_it(
    impatient_ft: FitTwin, clock: FrozenClock
) -> None:
    ft = impatient_ft
    shop = open_shop(ft)
    link = ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    orders = []
    for n in range(3):
        ft.referrals.record_click(link.rid, ip=f"198.51.100.{n}", user_agent="x", actor=Actor.anonymous())
        orders.append(_delivered(shop, rid=link.rid, buyer=shop.new_shopper(f"b{n}")))
    clock.advance(days=30)
    held = ft.rewards.entries(order_id=orders[1].id, actor=Actor.system()).items[0]

    with ft.context.store.unit_of_work() as other:  # another writer holds one entry meanwhile
        other.reward_ledger_entries.lock(held.id)
        released = ft.rewards.release_due(actor=Actor.system())

    assert sorted(e.order_id for e in released) == sorted([orders[0].id, orders[2].id])
    assert released.skipped == [held.id]
    rerun = ft.rewards.release_due(actor=Actor.system())
    assert ([e.id for e in rerun], rerun.skipped) == ([held.id], [])
    assert ft.rewards.get(held.id, actor=Actor.system()).status == RewardStatus.PAYABLE

"""The order state machine, every (from, to) pair of the seven statuses, checked against the
table of ``docs/orders.md`` / API.md written out here — never against the implementation's own
table — in the domain function and through the service on both stores."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import InvalidTransition, Order, OrderStatus, Totals, ValidationError
from fittwin_core.domain.ids import uuid7
from fittwin_core.domain.orders import transition, transitions
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop

CREATED, PAID, SENT, FULFILLED, DELIVERED, RETURN, CLOSED = (
    "created",
    "paid",
    "sent_to_brand",
    "fulfilled",
    "delivered",
    "return_requested",
    "closed",
)
STATUSES = (CREATED, PAID, SENT, FULFILLED, DELIVERED, RETURN, CLOSED)

# The API's table: from → {to: what happens}. Nothing else is a legal move.
LEGAL = {
    CREATED: {PAID: "payment succeeded", CLOSED: "cancel (releases stock)"},
    PAID: {SENT: "brand notified", CLOSED: "cancel (refund, releases stock)"},
    SENT: {FULFILLED: "brand ships"},
    FULFILLED: {DELIVERED: "carrier delivers"},
    DELIVERED: {RETURN: "within return window", CLOSED: "window over / close"},
    RETURN: {CLOSED: "return received (refund)"},
    CLOSED: {},
}
RETURN_WINDOW_DAYS = 30  # the documented default: "the 30-day return window"
STAFF = Actor.system()


def expected(frm: str, to: str) -> str:
    """``"no-op"``, ``"moves"`` or ``"invalid"`` for a move from ``frm`` to ``to``."""
    if frm == to:
        return "no-op"
    return "moves" if to in LEGAL[frm] else "invalid"


def test_the_table_has_nine_legal_moves_out_of_forty_two() -> None:
    pairs = [(f, t) for f, t in itertools.product(STATUSES, repeat=2) if f != t]
    assert len(pairs) == 42
    assert sum(expected(f, t) == "moves" for f, t in pairs) == 9


# ----------------------------------------------------------------------------- the domain function

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def an_order(status: str, *, delivered_days_ago: int = 1) -> Order:
    at = T0 - timedelta(days=delivered_days_ago)
    return Order(
        id=uuid7(1, 1),
        user_id=uuid7(1, 2),
        status=OrderStatus(status),
        totals=Totals.compute(subtotal=2500, currency="EUR"),
        shipping_address_id=uuid7(1, 3),
        billing_address_id=uuid7(1, 3),
        delivered_at=at if status in (DELIVERED, RETURN, CLOSED) else None,
        created_at=at - timedelta(days=5),
        updated_at=at,
    )


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(STATUSES, repeat=2)))
def test_every_pair_in_the_domain(frm: str, to: str) -> None:
    order = an_order(frm)
    outcome = expected(frm, to)
    if outcome == "invalid":
        with pytest.raises(InvalidTransition) as caught:
            transition(order, to, at=T0, return_window_days=RETURN_WINDOW_DAYS)
        assert str(caught.value) == f"order cannot move from {frm} to {to}"
        return
    moved, events = transition(order, to, at=T0, return_window_days=RETURN_WINDOW_DAYS)
    assert moved.status == OrderStatus(to)
    assert len(events) == (0 if outcome == "no-op" else 1)
    if outcome == "moves":
        (event,) = events
        assert (event.order_id, event.previous, event.status, event.at) == (order.id, frm, to, T0)
        assert event.action  # the step's name, e.g. "cancel"
        stamp = {PAID: "paid_at", DELIVERED: "delivered_at", CLOSED: "closed_at"}.get(to)
        if stamp is not None:
            assert getattr(moved, stamp) == T0
        assert moved.updated_at == T0


def test_the_return_window_bounds_a_return_request_in_the_domain() -> None:
    inside = an_order(DELIVERED, delivered_days_ago=RETURN_WINDOW_DAYS)
    assert transition(inside, RETURN, at=T0, return_window_days=RETURN_WINDOW_DAYS)[0].status == RETURN
    late = an_order(DELIVERED, delivered_days_ago=RETURN_WINDOW_DAYS + 1)
    with pytest.raises(InvalidTransition) as caught:
        transition(late, RETURN, at=T0, return_window_days=RETURN_WINDOW_DAYS)
    assert str(caught.value) == (
        "order cannot move from delivered to return_requested: the 30-day return window is over"
    )
    # Without a delivery time the window counts from the order's last change.
    undated = attrs.evolve(inside, delivered_at=None, updated_at=T0 - timedelta(days=RETURN_WINDOW_DAYS + 1))
    with pytest.raises(InvalidTransition, match="return window is over"):
        transition(undated, RETURN, at=T0, return_window_days=RETURN_WINDOW_DAYS)
    recent = attrs.evolve(undated, updated_at=T0 - timedelta(days=1))
    assert transition(recent, RETURN, at=T0, return_window_days=RETURN_WINDOW_DAYS)[0].status == RETURN


def paths(status: str = CREATED) -> list[list[str]]:
    """Every walk through the API's table from ``status`` to the end (``closed``)."""
    if not LEGAL[status]:
        return [[status]]
    return [[status, *rest] for to in LEGAL[status] for rest in paths(to)]


@pytest.mark.parametrize("path", paths(), ids="-".join)
def test_several_moves_at_once_are_the_moves_one_by_one(path: list[str]) -> None:
    # Every prefix of every path of the table, a day apart: the same order and the same events
    # as one transition per move.
    for length in range(2, len(path) + 1):
        moves = [(to, T0 + timedelta(days=n)) for n, to in enumerate(path[1:length], start=1)]
        order = an_order(CREATED)
        one_by_one, events = order, []
        for to, at in moves:
            one_by_one, more = transition(one_by_one, to, at=at, return_window_days=RETURN_WINDOW_DAYS)
            events += more
        moved, many = transitions(order, moves, return_window_days=RETURN_WINDOW_DAYS)
        assert (moved, many) == (one_by_one, events)
        assert [e.status for e in events] == path[1:length]
        # The order the spec describes: the last status, each stamp at the time of its move,
        # and every other field as it was (built the validating way, field for field).
        at = dict(zip(path[1:length], (when for _, when in moves), strict=True))
        expected = attrs.evolve(
            order,
            status=OrderStatus(path[length - 1]),
            updated_at=moves[-1][1],
            paid_at=at.get(PAID),
            delivered_at=at.get(DELIVERED),
            closed_at=at.get(CLOSED),
            close_reason=moved.close_reason if CLOSED in at else None,
        )
        assert type(moved) is Order and attrs.asdict(moved) == attrs.asdict(expected) and moved == expected
        if CLOSED in at:
            reason = {RETURN: "returned", DELIVERED: "completed"}.get(path[length - 2], "cancelled")
            assert moved.close_reason == reason


def test_several_moves_stop_at_the_first_refused_one() -> None:
    order = an_order(CREATED)
    assert transitions(order, []) == (order, [])
    assert transitions(order, [(CREATED, T0)]) == (order, [])  # a move to where it is: nothing
    with pytest.raises(InvalidTransition) as caught:
        transitions(order, [(PAID, T0), (DELIVERED, T0 + timedelta(days=1))])
    assert str(caught.value) == "order cannot move from paid to delivered"
    # The return window counts from a delivery made by an earlier move of the same call.
    delivered = [(PAID, T0), (SENT, T0), (FULFILLED, T0), (DELIVERED, T0 + timedelta(days=1))]
    late = T0 + timedelta(days=1 + RETURN_WINDOW_DAYS, seconds=1)
    with pytest.raises(InvalidTransition, match="30-day return window is over"):
        transitions(order, [*delivered, (RETURN, late)], return_window_days=RETURN_WINDOW_DAYS)
    inside = late - timedelta(seconds=1)
    moved, events = transitions(order, [*delivered, (RETURN, inside)], return_window_days=RETURN_WINDOW_DAYS)
    assert moved.status == RETURN and moved.delivered_at == T0 + timedelta(days=1) and len(events) == 5


def test_several_moves_refuse_a_time_without_a_zone_in_any_move() -> None:
    order = an_order(CREATED)
    naive = datetime(2026, 1, 16, 12, 0)
    with pytest.raises(ValidationError, match="must carry a time zone"):  # stamps only updated_at,
        transitions(order, [(PAID, T0), (SENT, naive), (FULFILLED, T0)])  # which the next move stamps
    with pytest.raises(ValidationError, match="paid_at: must carry a time zone"):
        transitions(order, [(PAID, naive), (CLOSED, T0)])
    with pytest.raises(ValidationError, match="must carry a time zone"):
        transitions(order, [(PAID, T0), (CLOSED, naive)])


# ----------------------------------------------------------------------------- through the service

# The service method that asks for each target status; "closed" has two: cancel and close.
MOVES: dict[str, tuple[str, ...]] = {
    PAID: ("mark_paid",),
    SENT: ("send_to_brand",),
    FULFILLED: ("mark_fulfilled",),
    DELIVERED: ("mark_delivered",),
    RETURN: ("request_return",),
    CLOSED: ("cancel", "close"),
}
# Which of the two reaches "closed" from where: the API's "cancel" rows and its "close" rows.
CLOSES_BY = {CREATED: "cancel", PAID: "cancel", DELIVERED: "close", RETURN: "close"}
PATH = (PAID, SENT, FULFILLED, DELIVERED, RETURN)


def order_in(shop: Shop, status: str) -> Any:
    """A fresh order (one M tee) moved along the legal path to ``status``."""
    ft = shop.ft
    order = shop.place()
    if status == CLOSED:
        return ft.orders.cancel(order.id, actor=STAFF)
    for step in PATH[: (PATH.index(status) + 1) if status in PATH else 0]:
        if step == PAID:  # the provider takes the money (so that refunds can be made)
            order = shop.pay(order)
            continue
        order = getattr(ft.orders, MOVES[step][0])(order.id, actor=STAFF)
    assert order.status == OrderStatus(status)
    return order


def test_every_pair_through_the_service(ft: FitTwin, clock: FrozenClock) -> None:
    shop = open_shop(ft, stock=100)
    stock = lambda: ft.catalog.variant(shop.variants["M"].id, actor=STAFF).inventory  # noqa: E731
    standing = {status: order_in(shop, status) for status in STATUSES}  # reused while nothing moves
    seen = set()
    for frm, to in itertools.product(STATUSES, repeat=2):
        if to == CREATED:
            continue  # no method moves an order to "created" (the domain test covers the pairs)
        for method in MOVES[to]:
            outcome = expected(frm, to)
            if to == CLOSED and outcome == "moves" and CLOSES_BY[frm] != method:
                outcome = "invalid"  # close() does not cancel, cancel() does not close
            order = standing[frm] if outcome == "invalid" else order_in(shop, frm)
            before_stock = stock()
            move = getattr(ft.orders, method)
            if outcome == "invalid":
                with pytest.raises(InvalidTransition):
                    move(order.id, actor=STAFF)
                assert ft.orders.get(order.id, actor=STAFF).status == OrderStatus(frm)
                assert stock() == before_stock
                continue
            moved = move(order.id, actor=STAFF)
            assert moved.status == OrderStatus(to), (frm, to, method)
            assert ft.orders.get(order.id, actor=STAFF).status == OrderStatus(to)
            if outcome == "moves":
                seen.add((frm, to))
                effect = LEGAL[frm][to]
                assert (stock() == before_stock + 1) == ("releases stock" in effect), (frm, to)
                assert (moved.refunded_cents == moved.totals.total) == ("refund" in effect), (frm, to)
    assert len(seen) == 9


def test_a_return_request_after_the_window_is_refused(ft: FitTwin, clock: FrozenClock) -> None:
    shop = open_shop(ft)
    inside, late = order_in(shop, DELIVERED), order_in(shop, DELIVERED)
    clock.advance(days=RETURN_WINDOW_DAYS)
    assert ft.orders.request_return(inside.id, actor=STAFF).status == OrderStatus.RETURN_REQUESTED
    clock.advance(days=1)
    with pytest.raises(InvalidTransition, match="return window"):
        ft.orders.request_return(late.id, actor=STAFF)
    assert ft.orders.get(late.id, actor=STAFF).status == OrderStatus.DELIVERED

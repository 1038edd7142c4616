"""Hypothesis state machines for orders and for the reward ledger, on both stores. After every
step the service's state is compared with an independent model written here in dicts and ints
from API.md's rules — the implementation's tables are never read."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fittwin_core import Actor, FitTwin
from fittwin_core.domain import InsufficientInventory, InvalidTransition, OrderStatus
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import open_shop

STAFF = Actor.system()
PRICE = 2500  # the shop's tees, in cents
STOCK = 6
RETURN_WINDOW_DAYS = 30
# API.md: (status, move) → the status it leads to. Anything else is an InvalidTransition.
MOVES = {
    ("created", "mark_paid"): "paid",
    ("created", "cancel"): "closed",
    ("paid", "send_to_brand"): "sent_to_brand",
    ("paid", "cancel"): "closed",
    ("sent_to_brand", "mark_fulfilled"): "fulfilled",
    ("fulfilled", "mark_delivered"): "delivered",
    ("delivered", "request_return"): "return_requested",
    ("delivered", "close"): "closed",
    ("return_requested", "close"): "closed",
}
TARGET = {
    "mark_paid": "paid",
    "cancel": "closed",
    "send_to_brand": "sent_to_brand",
    "mark_fulfilled": "fulfilled",
    "mark_delivered": "delivered",
    "request_return": "return_requested",
    "close": "closed",
}


PICK = st.integers(0, 1000)  # which order a rule acts on (drawn the same way whatever the state)


def settings_for(backend: str) -> settings:
    return settings(max_examples=12 if backend == "memory" else 3, stateful_step_count=20, deadline=None)


# ----------------------------------------------------------------------------- orders


class OrderMachine(RuleBasedStateMachine):
    """Place, pay, ship, deliver, return, close and cancel in any order; compare with the model."""

    def __init__(self, ft: FitTwin, clock: FrozenClock, tag: str) -> None:
        super().__init__()
        self.ft, self.clock = ft, clock
        self.shop = open_shop(ft, tag, stock=STOCK)
        self.day = 0
        # The model.
        self.stock = {size: STOCK for size in ("S", "M", "L")}
        self.status: dict[Any, str] = {}
        self.lines: dict[Any, tuple[str, int]] = {}
        self.refunded: dict[Any, bool] = {}
        self.delivered_on: dict[Any, int] = {}

    @rule(size=st.sampled_from(["S", "M", "L"]), qty=st.integers(1, 4))
    def place(self, size: str, qty: int) -> None:
        try:
            order = self.shop.place([(self.shop.variants[size].id, qty)])
        except InsufficientInventory:
            assert self.stock[size] < qty
            return
        assert self.stock[size] >= qty
        self.stock[size] -= qty
        self.status[order.id], self.lines[order.id], self.refunded[order.id] = "created", (size, qty), False

    @precondition(lambda self: bool(self.status))
    @rule(pick=PICK, move=st.sampled_from(sorted(TARGET)))
    def move(self, pick: int, move: str) -> None:
        order_id = sorted(self.status)[pick % len(self.status)]
        now = self.status[order_id]
        after = MOVES.get((now, move))
        if move == "request_return" and after and self.day - self.delivered_on[order_id] > RETURN_WINDOW_DAYS:
            after = None  # API.md: only within the return window
        if after is None and TARGET[move] == now:
            after = now  # moving to the current status is a no-op
        try:
            if move == "mark_paid" and now == "created":
                self.shop.pay(self.ft.orders.get(order_id, actor=STAFF))  # the provider's webhook
            else:
                getattr(self.ft.orders, move)(order_id, actor=STAFF)
        except InvalidTransition:
            assert after is None, f"{move} from {now} was refused"
            return
        assert after is not None, f"{move} from {now} went through"
        if after == "closed" and now in ("created", "paid"):
            size, qty = self.lines[order_id]
            self.stock[size] += qty  # a cancel releases the stock
        if after == "closed" and now in ("paid", "return_requested"):
            self.refunded[order_id] = True  # cancelled after payment, or the return was received
        if after == "delivered" and now != "delivered":
            self.delivered_on[order_id] = self.day
        self.status[order_id] = after

    @rule(days=st.integers(0, 20))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)
        self.day += days

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        for size, variant in self.shop.variants.items():
            assert self.ft.catalog.variant(variant.id, actor=STAFF).inventory == self.stock[size]
        for order_id, status in self.status.items():
            order = self.ft.orders.get(order_id, actor=STAFF)
            size, qty = self.lines[order_id]
            assert order.status == OrderStatus(status)
            assert order.totals.subtotal == PRICE * qty
            assert order.refunded_cents == (order.totals.total if self.refunded[order_id] else 0)


@pytest.mark.slow
def test_orders_follow_the_model(ft: FitTwin, clock: FrozenClock, backend: str) -> None:
    runs = itertools.count()
    run_state_machine_as_test(
        lambda: OrderMachine(ft, clock, f"om{next(runs)}"), settings=settings_for(backend)
    )


# ----------------------------------------------------------------------------- the reward ledger

REWARD_PERCENT = 10  # Settings' default referral policy
HOLD_DAYS = 30  # ReferralPolicy's default hold


class LedgerMachine(RuleBasedStateMachine):
    """Referred purchases, deliveries, returns, cancellations, releases and payouts; the ledger
    is compared with the model (order → entries as ``[status, amount, hold_until]``) every step."""

    def __init__(self, ft: FitTwin, clock: FrozenClock, tag: str) -> None:
        super().__init__()
        self.ft, self.clock = ft, clock
        self.shop = open_shop(ft, tag, stock=10_000)
        self.referrer = self.shop.shopper.id
        self.as_referrer = Actor.shopper(self.referrer)
        self.link = ft.referrals.create(self.referrer, actor=self.as_referrer).rid
        self.buyers = [self.shop.new_shopper(f"{tag}b{n}") for n in range(2)]
        self.ips = itertools.count(1)
        self.start = clock.now().date()
        self.day = 0
        # The model.
        self.order_status: dict[Any, str] = {}
        self.delivered_on: dict[Any, int] = {}
        self.entries: dict[Any, list[list[Any]]] = {}
        self.paid: list[tuple[Any, int]] = []

    def today(self) -> date:
        return self.start + timedelta(days=self.day)

    @rule(buyer=st.integers(0, 1), qty=st.integers(1, 3))
    def buy(self, buyer: int, qty: int) -> None:
        user, address, card = self.buyers[buyer]
        ip = next(self.ips)
        self.ft.referrals.record_click(
            self.link, ip=f"10.0.{ip // 250}.{ip % 250 + 1}", user_agent="ua", actor=Actor.anonymous()
        )
        order = self.shop.place(
            [(self.shop.variants["M"].id, qty)],
            user_id=user.id,
            shipping_address_id=address.id,
            billing_address_id=address.id,
            payment_method_id=card.id,
            rid=self.link,
        )
        self.shop.pay(order)
        self.order_status[order.id] = "paid"
        self.entries[order.id] = [["pending_hold", PRICE * qty * REWARD_PERCENT // 100, None]]

    def _pick(self, pick: int, status: str) -> Any | None:
        candidates = sorted(o for o, s in self.order_status.items() if s == status)
        return candidates[pick % len(candidates)] if candidates else None

    @rule(pick=PICK)
    def deliver(self, pick: int) -> None:
        if (order_id := self._pick(pick, "paid")) is None:
            return
        for move in ("send_to_brand", "mark_fulfilled", "mark_delivered"):
            getattr(self.ft.orders, move)(order_id, actor=STAFF)
        self.order_status[order_id], self.delivered_on[order_id] = "delivered", self.day
        for entry in self.entries[order_id]:
            if entry[0] == "pending_hold":
                entry[2] = self.today() + timedelta(days=HOLD_DAYS)

    def _reverse(self, order_id: Any) -> None:
        """A return request or a cancellation: held rewards are cancelled, what was payable or
        paid is taken back by one negative entry."""
        entries = self.entries[order_id]
        owed = sum(amount for status, amount, _ in entries if status in ("payable", "paid"))
        for entry in entries:
            if entry[0] == "pending_hold":
                entry[0] = "cancelled"
        if owed > 0:
            entries.append(["payable", -owed, self.today()])

    @rule(pick=PICK)
    def request_return(self, pick: int) -> None:
        if (order_id := self._pick(pick, "delivered")) is None:
            return
        late = self.day - self.delivered_on[order_id] > RETURN_WINDOW_DAYS
        try:
            self.ft.orders.request_return(
                order_id, actor=Actor.shopper(self.ft.orders.get(order_id, actor=STAFF).user_id)
            )
        except InvalidTransition:
            assert late
            return
        assert not late
        self.order_status[order_id] = "return_requested"
        self._reverse(order_id)

    @rule(pick=PICK)
    def cancel(self, pick: int) -> None:
        if (order_id := self._pick(pick, "paid")) is None:
            return
        self.ft.orders.cancel(order_id, actor=STAFF)
        self.order_status[order_id] = "closed"
        self._reverse(order_id)

    @rule(days=st.integers(0, 40))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)
        self.day += days

    @rule()
    def release(self) -> None:
        self.ft.rewards.release_due(actor=STAFF)
        for entries in self.entries.values():
            for entry in entries:
                if entry[0] == "pending_hold" and entry[2] is not None and entry[2] <= self.today():
                    entry[0] = "payable"

    @rule()
    def pay_out(self) -> None:
        payable = self.ft.rewards.entries(status="payable", referrer_user_id=self.referrer, actor=STAFF).items
        self.ft.rewards.mark_paid([e.id for e in payable], actor=STAFF)
        for entries in self.entries.values():
            for entry in entries:
                if entry[0] == "payable":
                    entry[0] = "paid"
        self.paid.extend((e.id, e.amount_cents) for e in payable)

    @invariant()
    def the_ledger_agrees_with_the_model(self) -> None:
        stored = self.ft.rewards.entries(referrer_user_id=self.referrer, actor=self.as_referrer).items
        by_order: dict[Any, list[list[Any]]] = {}
        for entry in stored:
            by_order.setdefault(entry.order_id, []).append(
                [entry.status.value, entry.amount_cents, entry.hold_until]
            )
        assert {o: sorted(e, key=repr) for o, e in by_order.items()} == {
            o: sorted(e, key=repr) for o, e in self.entries.items()
        }
        payable = sum(a for entries in self.entries.values() for s, a, _ in entries if s == "payable")
        balance = self.ft.rewards.balance(self.referrer, actor=self.as_referrer)
        assert sum(m.amount for m in balance.values()) == payable
        paid_now = {e.id: e.amount_cents for e in stored if e.status.value == "paid"}
        assert all(paid_now.get(entry_id) == amount for entry_id, amount in self.paid)  # paid never changes


@pytest.mark.slow
def test_the_reward_ledger_follows_the_model(ft: FitTwin, clock: FrozenClock, backend: str) -> None:
    runs = itertools.count()
    run_state_machine_as_test(
        lambda: LedgerMachine(ft, clock, f"lm{next(runs)}"), settings=settings_for(backend)
    )

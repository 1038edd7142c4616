"""A hypothesis state machine for money (issue 11), on both stores.

It drives checkouts, order moves, the provider's side (payments succeeding or failing, refunds
made in its dashboard), the provider's webhooks — delivered late, out of order and more than
once — and the dispatcher, which runs only when a rule says so (effects wait in the outbox as
after a crash). The model is written here from API.md and ARCHITECTURE.md decision 9, in dicts
and integers, never read from the implementation:

* stock = initial stock − the quantities of orders not cancelled, never negative;
* once every webhook is delivered and the outbox drained, money taken − money refunded at the
  provider equals what the orders say (their totals once paid, minus ``refunded_cents``);
* an order holds at most one live reward, and none once money went back.
"""

from __future__ import annotations

import itertools
import json
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

from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    CloseReason,
    InsufficientInventory,
    InvalidTransition,
    OrderStatus,
    RewardStatus,
    TransientConflict,
)
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import open_shop

STAFF = Actor.system()
STOCK = 8
PICK = st.integers(0, 1000)
MOVES = ["cancel", "send_to_brand", "mark_fulfilled", "mark_delivered", "request_return", "close"]


class MoneyMachine(RuleBasedStateMachine):
    def __init__(self, ft: FitTwin, clock: FrozenClock, tag: str) -> None:
        super().__init__()
        self.ft, self.clock = ft, clock
        self.ft.context.settings
        self.shop = open_shop(ft, tag, stock=STOCK)
        payments = ft.context.payments
        assert isinstance(payments, FakePayments)
        self.fake = payments
        friend, _, _ = self.shop.new_shopper(f"{tag}_friend")
        self.link = ft.referrals.create(friend.id, expires_at=None, actor=Actor.shopper(friend.id))
        ft.referrals.record_click(self.link.rid, ip="198.51.100.7", user_agent="x", actor=Actor.anonymous())
        # The model.
        self.orders: dict[Any, tuple[str, int, str]] = {}  # order id → (size, qty, intent id)
        self.pending: list[tuple[bytes, str]] = []  # webhooks the provider sent, not yet delivered
        self.delivered: list[tuple[bytes, str]] = []  # delivered once (may be delivered again)
        self.seen = len(self.fake.webhooks())

    def _collect(self) -> None:
        """Every webhook the provider sent since the last look waits for delivery."""
        sent = self.fake.webhooks()
        self.pending.extend(sent[self.seen :])
        self.seen = len(sent)

    def _deliver(self, webhook: tuple[bytes, str]) -> None:
        """Deliver a webhook as the provider does: signed at delivery (so a late one is fresh)."""
        self.ft.orders.handle_payment_webhook(*self.fake.sign(json.loads(webhook[0])))

    def _pick(self, pick: int) -> Any:
        ids = sorted(self.orders)
        return ids[pick % len(ids)]

    @rule(size=st.sampled_from(["S", "M"]), qty=st.integers(1, 3), referred=st.booleans())
    def checkout(self, size: str, qty: int, referred: bool) -> None:
        try:
            order = self.shop.place(
                [(self.shop.variants[size].id, qty)], rid=self.link.rid if referred else None
            )
        except InsufficientInventory:
            assert self._reserved(size) + qty > STOCK
            return
        self.orders[order.id] = (size, qty, order.payment_intent_ref)
        self._collect()

    @precondition(lambda self: bool(self.orders))
    @rule(pick=PICK, pays=st.booleans())
    def customer_acts_at_the_provider(self, pick: int, pays: bool) -> None:
        intent = self.orders[self._pick(pick)][2]
        try:
            self.fake.succeed(intent) if pays else self.fake.fail(intent)
        except InvalidTransition:
            pass  # already paid or cancelled at the provider
        self._collect()

    @precondition(lambda self: bool(self.orders))
    @rule(pick=PICK, share=st.sampled_from([1, 2]))
    def staff_refunds_in_the_dashboard(self, pick: int, share: int) -> None:
        intent = self.fake.retrieve_payment_intent(self.orders[self._pick(pick)][2])
        left = intent.amount - intent.amount_refunded
        if intent.status != "succeeded" or left <= 0:
            return
        self.fake.refund(intent.id, amount=max(1, left // share), idempotency_key=f"dash-{next(_keys)}")
        self._collect()

    @precondition(lambda self: bool(self.pending) or bool(self.delivered))
    @rule(pick=PICK, again=st.booleans())
    def a_webhook_arrives(self, pick: int, again: bool) -> None:
        """Any waiting webhook (out of order), or one delivered before (a duplicate)."""
        source = self.delivered if again and self.delivered else self.pending
        if not source:
            return
        webhook = source.pop(pick % len(source)) if source is self.pending else source[pick % len(source)]
        try:
            self._deliver(webhook)
        except TransientConflict:
            assert json.loads(webhook[0])["type"] == "charge.refunded"  # overtook its payment
            self.pending.append(webhook)
            return
        if source is self.pending:
            self.delivered.append(webhook)
        self._collect()

    @precondition(lambda self: bool(self.orders))
    @rule(pick=PICK, move=st.sampled_from(MOVES))
    def staff_moves_an_order(self, pick: int, move: str) -> None:
        try:
            getattr(self.ft.orders, move)(self._pick(pick), actor=STAFF)
        except InvalidTransition:
            pass  # the order state machine has its own tests; here only money matters
        self._collect()

    @rule()
    def the_dispatcher_runs(self) -> None:
        self.ft.effects.dispatch(actor=STAFF)
        self._collect()

    @rule(days=st.integers(0, 40))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)

    def _reserved(self, size: str) -> int:
        total = 0
        for order_id, (line_size, qty, _) in self.orders.items():
            order = self.ft.orders.get(order_id, actor=STAFF)
            cancelled = order.status == OrderStatus.CLOSED and order.close_reason == CloseReason.CANCELLED
            if line_size == size and not cancelled:
                total += qty
        return total

    @invariant()
    def stock_is_what_is_not_sold(self) -> None:
        for size in ("S", "M"):
            inventory = self.ft.catalog.variant(self.shop.variants[size].id, actor=STAFF).inventory
            assert inventory == STOCK - self._reserved(size) >= 0

    @invariant()
    def at_most_one_live_reward_per_order(self) -> None:
        for order_id in self.orders:
            entries = self.ft.rewards.entries(order_id=order_id, actor=STAFF).items
            live = [e for e in entries if e.amount_cents > 0 and e.status != RewardStatus.CANCELLED]
            assert len(live) <= 1
            order = self.ft.orders.get(order_id, actor=STAFF)
            if order.refunded_cents > 0:
                assert sum(e.amount_cents for e in entries if e.status != RewardStatus.CANCELLED) == 0

    def teardown(self) -> None:
        """Settle: deliver every webhook (repeating those that must wait), drain the outbox,
        then the provider and the orders must agree on the money."""
        for _ in range(50):
            self.ft.effects.dispatch(actor=STAFF, limit=1000)
            self._collect()
            if not self.pending:
                break
            waiting, self.pending = self.pending, []
            for webhook in waiting:
                try:
                    self._deliver(webhook)
                except TransientConflict:
                    self.pending.append(webhook)
        assert self.pending == []
        assert self.ft.effects.dispatch(actor=STAFF).attempted == 0
        assert self.ft.effects.failed(actor=STAFF).items == ()
        taken = refunded = said_taken = said_refunded = 0
        for order_id, (_, _, intent_id) in self.orders.items():
            intent = self.fake.retrieve_payment_intent(intent_id)
            refunds = sum(r.amount for r in self.fake.refunds(intent_id))
            taken += intent.amount if intent.status == "succeeded" else 0
            refunded += refunds
            order = self.ft.orders.get(order_id, actor=STAFF)
            said_taken += order.totals.total if order.paid_at is not None else 0
            said_refunded += order.refunded_cents
            if order.paid_at is not None:  # per order, too
                assert (intent.status, refunds) == ("succeeded", order.refunded_cents)
        assert taken - refunded == said_taken - said_refunded


_keys = itertools.count()


@pytest.mark.slow
def test_money_follows_the_provider(ft: FitTwin, clock: FrozenClock, backend: str) -> None:
    runs = itertools.count()
    run_state_machine_as_test(
        lambda: MoneyMachine(ft, clock, f"mm{next(runs)}"),
        settings=settings(
            max_examples=15 if backend == "memory" else 3, stateful_step_count=25, deadline=None
        ),
    )

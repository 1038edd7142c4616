"""Money under races, with processes on PostgreSQL (issue 11 acceptance).

Eight processes race on the same orders, round after round (a barrier starts each round):
half cancel while the other half send the order to the brand; then, on delivered orders, half
request a return while the other half close. Every order must end in one consistent state, and
once the outbox is dispatched the refunds at the provider must equal the orders'
``refunded_cents`` exactly. The workers call no provider (their effects wait in the outbox, as
after a crash): the one fake provider lives in this process, which holds every intent, and the
dispatcher here is the only caller of it — what a ``fittwin jobs dispatch`` does. Self-contained
(``multiprocessing``); small enough for CI on two cores.

A second test kills a process between its commit and its dispatch (``os._exit``) and checks the
next dispatch delivers each effect exactly once, to a local HTTP brand endpoint and the provider.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.http import HttpWebhookSender
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    CloseReason,
    Conflict,
    EffectKind,
    InvalidTransition,
    OrderStatus,
    OutboxStatus,
)
from fittwin_core.services.base import Settings
from fittwin_core.webhooks import SIGNATURE_HEADER, verify_webhook
from tests.support.shop import Shop, open_shop

pytestmark = pytest.mark.postgres

WORKERS = 8
ROUNDS = 50
SYSTEM = Actor.system()
HASHER = Argon2PasswordHasher.owasp_minimum()


def _connect(url: str, keyring: str, **kwargs: Any) -> FitTwin:
    return connect(
        url,
        payments=kwargs.pop("payments", None) or FakePayments(),
        keyring=LocalKeyRing.from_json(keyring),
        hasher=HASHER,
        settings=kwargs.pop("settings", None) or Settings(dispatch_inline=False),
        **kwargs,
    )


def _race_worker(url: str, keyring: str, order_ids: list[str], move: str, barrier: Any, results: Any) -> None:
    """One process: in each round, make ``move`` on that round's order; report what happened."""
    ft = _connect(url, keyring)
    outcomes = []
    try:
        for order_id in order_ids:
            barrier.wait(timeout=60)
            try:
                getattr(ft.orders, move)(order_id, actor=SYSTEM)
                outcomes.append("moved")
            except (InvalidTransition, Conflict):
                outcomes.append("refused")
    finally:
        ft.close()
    results.put((move, outcomes))


def _race(url: str, keyring: str, order_ids: list[str], moves: tuple[str, str]) -> dict[str, list[str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_race_worker, args=(url, keyring, order_ids, moves[n % 2], barrier, results))
        for n in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    outcomes: dict[str, list[str]] = {moves[0]: [], moves[1]: []}
    for _ in procs:
        move, got = results.get(timeout=120)
        outcomes[move].extend(got)
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    return outcomes


@pytest.fixture
def keyring() -> LocalKeyRing:
    return LocalKeyRing.generate()


@pytest.fixture
def parent(postgres_url: URL, keyring: LocalKeyRing) -> Iterator[FitTwin]:
    ft = _connect(postgres_url.render_as_string(hide_password=False), keyring.to_json())
    yield ft
    ft.close()


def _provider_refunds(payments: FakePayments, intent: str) -> int:
    return sum(r.amount for r in payments.refunds(intent))


def _paid_orders(shop: Shop, n: int) -> list[Any]:
    return [shop.pay(shop.place()) for _ in range(n)]


def test_cancel_racing_send_to_brand_and_return_racing_close_keep_money_exact(
    postgres_url: URL, keyring: LocalKeyRing, parent: FitTwin
) -> None:
    url = postgres_url.render_as_string(hide_password=False)
    shop = open_shop(parent, stock=ROUNDS * 2 + 5)
    payments = parent.context.payments
    assert isinstance(payments, FakePayments)

    first = _paid_orders(shop, ROUNDS)
    moved = _race(url, keyring.to_json(), [str(o.id) for o in first], ("cancel", "send_to_brand"))
    assert len(moved["cancel"]) == len(moved["send_to_brand"]) == ROUNDS * WORKERS // 2

    second = _paid_orders(shop, ROUNDS)
    for order in second:
        for move in ("send_to_brand", "mark_fulfilled", "mark_delivered"):
            getattr(parent.orders, move)(order.id, actor=SYSTEM)
    _race(url, keyring.to_json(), [str(o.id) for o in second], ("request_return", "close"))

    while parent.effects.dispatch(actor=SYSTEM, limit=500).attempted:
        pass
    assert parent.effects.failed(actor=SYSTEM).items == ()

    for order in first:
        now = parent.orders.get(order.id, actor=SYSTEM)
        refunds = [e for e in parent.effects.for_order(order.id, actor=SYSTEM) if e.kind == EffectKind.REFUND]
        if now.status == OrderStatus.CLOSED:
            assert (now.close_reason, now.refunded_cents, len(refunds)) == (
                CloseReason.CANCELLED,
                now.totals.total,
                1,
            )
        else:
            assert (now.status, now.refunded_cents, refunds) == (OrderStatus.SENT_TO_BRAND, 0, [])
        assert _provider_refunds(payments, now.payment_intent_ref) == now.refunded_cents
    for order in second:
        now = parent.orders.get(order.id, actor=SYSTEM)
        expected_refund = {
            CloseReason.COMPLETED: 0,  # closed first: kept, nothing back
            CloseReason.RETURNED: now.totals.total,  # the return came first, then it was received
        }
        # A close before the return closes it kept; a return first is then received by a later close.
        assert now.status == OrderStatus.CLOSED
        assert now.refunded_cents == expected_refund[now.close_reason]
        assert _provider_refunds(payments, now.payment_intent_ref) == now.refunded_cents
    statuses = {parent.orders.get(o.id, actor=SYSTEM).status for o in first}
    assert statuses <= {OrderStatus.CLOSED, OrderStatus.SENT_TO_BRAND}


# ---------------------------------------------------------------------------- a crash after commit


class _Endpoint(http.server.BaseHTTPRequestHandler):
    received: list[tuple[bytes, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((body, self.headers[SIGNATURE_HEADER]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _commit_then_die(url: str, keyring: str, order_id: str) -> None:
    ft = _connect(url, keyring)
    ft.orders.send_to_brand(order_id, actor=SYSTEM)
    ft.orders.mark_fulfilled(order_id, actor=SYSTEM)
    ft.orders.mark_delivered(order_id, actor=SYSTEM)
    ft.orders.request_return(order_id, actor=SYSTEM)
    ft.orders.close(order_id, actor=SYSTEM)  # committed: a refund and webhooks wait in the outbox
    os._exit(0)  # dies before any dispatch, without closing anything


def test_effects_of_a_killed_process_are_delivered_exactly_once(
    postgres_url: URL, keyring: LocalKeyRing, parent: FitTwin
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    _Endpoint.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = postgres_url.render_as_string(hide_password=False)
    try:
        shop = open_shop(parent)
        hook = parent.brands.add_webhook(
            shop.brand.id,
            f"http://127.0.0.1:{server.server_address[1]}/hooks",
            ["order.sent_to_brand", "order.return_requested"],
            actor=shop.owner_actor,
        )
        order = shop.pay(shop.place())
        proc = multiprocessing.get_context("spawn").Process(
            target=_commit_then_die, args=(url, keyring.to_json(), str(order.id))
        )
        proc.start()
        proc.join(timeout=60)
        assert proc.exitcode == 0
        closed = parent.orders.get(order.id, actor=SYSTEM)
        assert (closed.status, closed.refunded_cents) == (OrderStatus.CLOSED, closed.totals.total)
        payments = parent.context.payments
        assert isinstance(payments, FakePayments)
        assert _provider_refunds(payments, order.payment_intent_ref) == 0 and _Endpoint.received == []

        dispatcher = _connect(
            url, keyring.to_json(), payments=payments, webhooks=HttpWebhookSender(timeout=5)
        )
        try:
            while dispatcher.effects.dispatch(actor=SYSTEM).attempted:
                pass
            assert dispatcher.effects.dispatch(actor=SYSTEM).attempted == 0
        finally:
            dispatcher.close()
        assert _provider_refunds(payments, order.payment_intent_ref) == closed.totals.total
        events = sorted(json.loads(body)["type"] for body, _ in _Endpoint.received)
        assert events == ["order.return_requested", "order.sent_to_brand"]
        for body, header in _Endpoint.received:
            verify_webhook(body, header, hook.secret)
        effects = parent.effects.for_order(order.id, actor=SYSTEM)
        assert all(e.status == OutboxStatus.DELIVERED and e.attempts == 1 for e in effects)
    finally:
        server.shutdown()

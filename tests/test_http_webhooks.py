"""Brand webhooks over real HTTP (``HttpWebhookSender``), driven by the outbox (issue 11).

A local endpoint plays the brand: one that fails three times then accepts receives the webhook
once, with every attempt recorded; one that always fails ends in the dead letter while
checkouts go on at normal speed.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.http import HttpWebhookSender
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import EffectKind, OutboxStatus, ValidationError, WebhookDeliveryFailed
from fittwin_core.ports import OutgoingWebhook
from fittwin_core.services.base import Settings
from fittwin_core.testing.clock import FrozenClock
from fittwin_core.webhooks import SIGNATURE_HEADER, verify_webhook
from tests.support.shop import open_shop

SYSTEM = Actor.system()


class Brand:
    """A local HTTP endpoint answering ``answers`` in turn (then the last one forever)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        brand = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                brand.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
                status = brand.answers.pop(0) if len(brand.answers) > 1 else brand.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def _ft(clock: FrozenClock, **settings: Any) -> FitTwin:
    return connect(
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        webhooks=HttpWebhookSender(timeout=2),
        settings=Settings(**settings),
    )


def _subscribe(ft: FitTwin, brand: Brand) -> Any:
    shop = open_shop(ft)
    secret = ft.brands.add_webhook(shop.brand.id, brand.url, ["order.sent_to_brand"], actor=shop.owner_actor)
    return shop, secret


def test_the_sender_posts_the_signed_body_and_refuses_non_2xx() -> None:
    brand = Brand(204, 500)
    sender = HttpWebhookSender(timeout=2)
    hook = OutgoingWebhook(brand.url, "order.sent_to_brand", b'{"id":"1"}', {SIGNATURE_HEADER: "t=1,v1=ab"})
    sender.send(hook)
    with pytest.raises(WebhookDeliveryFailed, match="HTTP 500"):
        sender.send(hook)
    body, headers = brand.requests[0]
    assert body == b'{"id":"1"}' and headers[SIGNATURE_HEADER.lower()] == "t=1,v1=ab"
    brand.server.shutdown()
    with pytest.raises(WebhookDeliveryFailed, match="unreachable"):
        sender.send(hook)
    with pytest.raises(ValidationError):
        HttpWebhookSender(timeout=0)


def test_a_brand_failing_three_times_receives_the_webhook_once(clock: FrozenClock) -> None:
    brand = Brand(500, 503, 500, 200)
    ft = _ft(clock, outbox_backoff_seconds=1)
    shop, secret = _subscribe(ft, brand)
    order = ft.orders.send_to_brand(shop.pay(shop.place()).id, actor=SYSTEM)
    for _ in range(5):
        clock.advance(seconds=60)
        ft.effects.dispatch(actor=SYSTEM)
    (effect,) = [
        e for e in ft.effects.for_order(order.id, actor=SYSTEM) if e.kind == EffectKind.BRAND_WEBHOOK
    ]
    assert effect.status == OutboxStatus.DELIVERED
    assert [(a.ok, a.detail) for a in effect.history] == [
        (False, "WebhookDeliveryFailed: brand endpoint answered HTTP 500"),
        (False, "WebhookDeliveryFailed: brand endpoint answered HTTP 503"),
        (False, "WebhookDeliveryFailed: brand endpoint answered HTTP 500"),
        (True, "sent"),
    ]
    assert len(brand.requests) == 4  # three refused, one received
    ids = {json.loads(body)["id"] for body, _ in brand.requests}
    assert ids == {str(effect.id)}
    body, headers = brand.requests[-1]
    verify_webhook(body, headers[SIGNATURE_HEADER.lower()], secret.secret, now=int(clock.now().timestamp()))
    brand.server.shutdown()


def test_a_brand_that_is_down_ends_in_the_dead_letter_and_never_slows_checkout(clock: FrozenClock) -> None:
    healthy, down = Brand(200), Brand(500)
    timings = {}
    for name, brand in (("healthy", healthy), ("down", down)):
        ft = _ft(clock, outbox_max_attempts=3, outbox_backoff_seconds=0)
        shop, _ = _subscribe(ft, brand)
        started = time.perf_counter()
        for _ in range(10):
            ft.orders.send_to_brand(shop.pay(shop.place()).id, actor=SYSTEM)
        timings[name] = time.perf_counter() - started
        ft.effects.dispatch(actor=SYSTEM)
        ft.effects.dispatch(actor=SYSTEM)
        dead = ft.effects.failed(actor=SYSTEM).items
        assert len(dead) == (10 if name == "down" else 0)
        assert all(e.attempts == 3 and e.kind == EffectKind.BRAND_WEBHOOK for e in dead)
        ft.close()
    assert timings["down"] < timings["healthy"] * 3 + 0.5, timings
    healthy.server.shutdown()
    down.server.shutdown()

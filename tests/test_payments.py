"""Payment gateways: the shared contract on FakePayments and on StripePayments (against a
local Stripe-like server), then what each adapter adds."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_adapters.memory.payments import DEFAULT_WEBHOOK_SECRET, FakePayments
from fittwin_adapters.stripe import StripePayments
from fittwin_core import payments
from fittwin_core.domain.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    InvalidTransition,
    NotFound,
    PaymentError,
    ValidationError,
)
from fittwin_core.ports import PaymentEvent, PaymentGateway
from fittwin_core.testing.contract.payments import PaymentGatewayContract
from tests.support.stripe_server import StripeServer

API_KEY = "sk_test_local_51HxyzSECRETKEY"
WEBHOOK_SECRET = "whsec_local_endpoint_SECRET"
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------- test doubles of the world


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def stripe_sign(payload: bytes, *, timestamp: int, secrets: Sequence[str]) -> str:
    """Sign as Stripe does (``Stripe-Signature``), written here from Stripe's definition."""
    signed = f"{timestamp}.".encode() + payload
    entries = [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join([f"t={timestamp}", *entries])


class FakeSide:
    """The provider's side of a FakePayments: its own succeed() and refund webhooks."""

    def __init__(self, fake: FakePayments, clock: FrozenClock) -> None:
        self.fake = fake
        self.clock = clock

    @property
    def webhook_secret(self) -> str:
        return self.fake.webhook_secret

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def complete(self, payment_intent_id: str) -> bytes:
        return self.fake.succeed(payment_intent_id)[0]

    def refund_event(self, refund_id: str) -> bytes:
        return self.fake.refund_webhook(refund_id)[0]

    def sign(self, payload: bytes, *, timestamp: int, secrets: Sequence[str]) -> str:
        return stripe_sign(payload, timestamp=timestamp, secrets=secrets)


class LocalStripeSide:
    """The provider's side of the local Stripe server."""

    def __init__(self, server: StripeServer, clock: FrozenClock) -> None:
        self.server = server
        self.clock = clock

    @property
    def webhook_secret(self) -> str:
        return WEBHOOK_SECRET

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def complete(self, payment_intent_id: str) -> bytes:
        intent = self.server.succeed(payment_intent_id, created=self.now())
        return self.server.event("payment_intent.succeeded", intent, created=self.now())

    def refund_event(self, refund_id: str) -> bytes:
        return self.server.refund_event(refund_id, created=self.now())

    def sign(self, payload: bytes, *, timestamp: int, secrets: Sequence[str]) -> str:
        return stripe_sign(payload, timestamp=timestamp, secrets=secrets)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def server() -> StripeServer:
    return StripeServer(API_KEY)


@pytest.fixture
def api_base(server: StripeServer) -> Iterator[str]:
    with server.running() as url:
        yield url


@pytest.fixture
def stripe_payments(api_base: str, clock: FrozenClock) -> StripePayments:
    return StripePayments(API_KEY, WEBHOOK_SECRET, api_base=api_base, clock=clock, max_network_retries=0)


@pytest.fixture
def fake(clock: FrozenClock) -> FakePayments:
    return FakePayments(clock=clock)


def test_the_test_signer_signs_as_stripe_does() -> None:
    payload = b'{"id":"evt_1","object":"event"}'
    expected = stripe.WebhookSignature.generate_signature_header(payload.decode(), "whsec_x", 1_900_000_000)
    assert stripe_sign(payload, timestamp=1_900_000_000, secrets=["whsec_x"]) == expected


# ---------------------------------------------------------------------------- the contract, twice


class TestFakePaymentsContract(PaymentGatewayContract):
    @pytest.fixture
    def gateway(self, fake: FakePayments) -> PaymentGateway:
        return fake

    @pytest.fixture
    def provider(self, fake: FakePayments, clock: FrozenClock) -> FakeSide:
        return FakeSide(fake, clock)


class TestStripePaymentsContract(PaymentGatewayContract):
    @pytest.fixture
    def gateway(self, stripe_payments: StripePayments) -> PaymentGateway:
        return stripe_payments

    @pytest.fixture
    def provider(self, server: StripeServer, clock: FrozenClock) -> LocalStripeSide:
        return LocalStripeSide(server, clock)


# ---------------------------------------------------------------------------- StripePayments on the wire


def posts(server: StripeServer, path: str) -> list[dict[str, str]]:
    return [r.form for r in server.requests if r.method == "POST" and r.path == path]


class TestStripePayments:
    def test_a_payment_is_created_with_the_callers_idempotency_key(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        intent = stripe_payments.create_payment_intent(
            amount=2500, currency="EUR", idempotency_key="order-0190-payment"
        )
        (request,) = server.requests
        assert (request.method, request.path) == ("POST", "/v1/payment_intents")
        assert request.headers["idempotency-key"] == "order-0190-payment"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert intent.id in server.intents

    def test_the_form_carries_amount_lower_case_currency_payment_method_and_metadata(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        stripe_payments.create_payment_intent(
            amount=4999,
            currency="GBP",
            idempotency_key="k",
            payment_method="pm_card_visa",
            metadata={"order_id": "0190", "brand": "Acme"},
        )
        (form,) = posts(server, "/v1/payment_intents")
        assert form == {
            "amount": "4999",
            "currency": "gbp",
            "payment_method": "pm_card_visa",
            "metadata[order_id]": "0190",
            "metadata[brand]": "Acme",
        }

    def test_a_repeated_key_is_sent_again_and_stripe_replays_the_first_answer(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        first = stripe_payments.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        again = stripe_payments.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        assert again == first
        assert [r.headers["idempotency-key"] for r in server.requests] == ["k", "k"]
        assert len(server.intents) == 1

    def test_cancel_and_refund_send_their_idempotency_keys(
        self, stripe_payments: StripePayments, server: StripeServer, clock: FrozenClock
    ) -> None:
        paid = stripe_payments.create_payment_intent(amount=900, currency="EUR", idempotency_key="a")
        server.succeed(paid.id, created=0)
        refund = stripe_payments.refund(paid.id, amount=250, idempotency_key="refund-a")
        open_ = stripe_payments.create_payment_intent(amount=900, currency="EUR", idempotency_key="b")
        stripe_payments.cancel_payment_intent(open_.id, idempotency_key="cancel-b")

        assert (refund.amount, refund.payment_intent_id, refund.status) == (250, paid.id, "succeeded")
        refund_request, cancel_request = server.requests[1], server.requests[3]
        assert (refund_request.path, refund_request.headers["idempotency-key"]) == ("/v1/refunds", "refund-a")
        assert refund_request.form == {"payment_intent": paid.id, "amount": "250"}
        assert cancel_request.path == f"/v1/payment_intents/{open_.id}/cancel"
        assert cancel_request.headers["idempotency-key"] == "cancel-b"

    def test_retrieve_is_a_get_of_the_intent(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        intent = stripe_payments.create_payment_intent(amount=100, currency="JPY", idempotency_key="k")
        assert stripe_payments.retrieve_payment_intent(intent.id).currency == "JPY"
        assert (server.requests[-1].method, server.requests[-1].path) == (
            "GET",
            f"/v1/payment_intents/{intent.id}",
        )

    def test_bad_input_never_reaches_stripe(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        with pytest.raises(ValidationError):
            stripe_payments.create_payment_intent(amount=0, currency="EUR", idempotency_key="k")
        with pytest.raises(ValidationError):
            stripe_payments.retrieve_payment_intent("pi_1/../../v1/refunds")
        with pytest.raises(ValidationError):
            stripe_payments.refund("pi_1", amount=-1, idempotency_key="k")
        assert server.requests == []

    def test_a_declined_card_is_a_payment_error_naming_the_decline_code(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        server.fail_next(
            402,
            "card_error",
            "Your card has insufficient funds.",
            code="card_declined",
            decline_code="insufficient_funds",
        )
        with pytest.raises(PaymentError) as raised:
            stripe_payments.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        message = str(raised.value)
        assert "insufficient_funds" in message
        assert "card_declined" in message
        assert "402" in message
        assert raised.value.__cause__ is None
        assert raised.value.__context__ is None

    def test_a_server_error_is_a_payment_error(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        server.fail_next(500, "api_error", "Something went wrong on Stripe's end.")
        with pytest.raises(PaymentError, match="500"):
            stripe_payments.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        assert server.intents == {}

    def test_a_server_error_is_retried_with_the_same_idempotency_key(
        self, api_base: str, server: StripeServer
    ) -> None:
        gateway = StripePayments(API_KEY, WEBHOOK_SECRET, api_base=api_base, max_network_retries=1)
        server.fail_next(500, "api_error", "Something went wrong on Stripe's end.")
        intent = gateway.create_payment_intent(amount=100, currency="EUR", idempotency_key="order-1")
        assert [r.headers["idempotency-key"] for r in server.requests] == ["order-1", "order-1"]
        assert list(server.intents) == [intent.id]

    def test_an_unreachable_stripe_is_a_payment_error(self) -> None:
        with socket.socket() as probe:  # a port nothing listens on once closed
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        gateway = StripePayments(
            API_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{port}", max_network_retries=0
        )
        with pytest.raises(PaymentError, match="could not be reached") as raised:
            gateway.retrieve_payment_intent("pi_1")
        assert raised.value.__context__ is None

    def test_a_rejected_api_key_is_a_payment_error_that_does_not_quote_the_key(self, api_base: str) -> None:
        wrong_key = "sk_test_WRONG_0123456789"
        gateway = StripePayments(wrong_key, WEBHOOK_SECRET, api_base=api_base, max_network_retries=0)
        with pytest.raises(PaymentError, match="401") as raised:
            gateway.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        assert wrong_key not in str(raised.value)
        assert raised.value.__context__ is None

    def test_an_idempotency_error_is_a_conflict(
        self, stripe_payments: StripePayments, server: StripeServer
    ) -> None:
        stripe_payments.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        with pytest.raises(Conflict):
            stripe_payments.create_payment_intent(amount=200, currency="EUR", idempotency_key="k")
        assert len(server.intents) == 1

    def test_secrets_never_appear_in_the_repr(self, stripe_payments: StripePayments, api_base: str) -> None:
        text = repr(stripe_payments)
        assert API_KEY not in text
        assert WEBHOOK_SECRET not in text
        assert api_base in text

    @pytest.mark.parametrize(("key", "secret"), [("", WEBHOOK_SECRET), (API_KEY, ""), (API_KEY, "  ")])
    def test_missing_keys_are_configuration_errors(self, key: str, secret: str) -> None:
        with pytest.raises(ConfigurationError):
            StripePayments(key, secret)

    def test_webhooks_are_checked_against_the_real_time_without_a_clock(self, api_base: str) -> None:
        gateway = StripePayments(API_KEY, WEBHOOK_SECRET, api_base=api_base)
        payload = json.dumps(
            {
                "id": "evt_1",
                "object": "event",
                "type": "payment_intent.payment_failed",
                "data": {
                    "object": {"id": "pi_1", "object": "payment_intent", "amount": 5, "currency": "usd"}
                },
            }
        ).encode()
        now = int(time.time())
        event = gateway.parse_webhook(payload, stripe_sign(payload, timestamp=now, secrets=[WEBHOOK_SECRET]))
        assert event == PaymentEvent("evt_1", "payment_intent.payment_failed", "pi_1", 5, "USD")
        stale = stripe_sign(payload, timestamp=now - 301, secrets=[WEBHOOK_SECRET])
        with pytest.raises(AuthenticationFailed):
            gateway.parse_webhook(payload, stale)

    def test_a_payload_that_is_not_utf8_is_refused(
        self, stripe_payments: StripePayments, clock: FrozenClock
    ) -> None:
        payload = b"\xff\xfe{}"
        header = stripe_sign(payload, timestamp=int(clock.now().timestamp()), secrets=[WEBHOOK_SECRET])
        with pytest.raises(AuthenticationFailed):
            stripe_payments.parse_webhook(payload, header)


# ---------------------------------------------------------------------------- FakePayments, driven


def event_of(webhook: tuple[bytes, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(webhook[0])
    return loaded


class TestFakePayments:
    def test_ids_are_random_so_two_processes_never_share_one(self) -> None:
        # Two fakes stand for two app workers: sequential ids would collide at once.
        a, b = FakePayments(), FakePayments()
        made = [
            f.create_payment_intent(amount=100, currency="EUR", idempotency_key=f"k{n}").id
            for n in range(20)
            for f in (a, b)
        ]
        assert len(set(made)) == 40
        assert all(re.fullmatch(r"pi_fake_[0-9a-f]{24}", intent_id) for intent_id in made)
        assert re.fullmatch(r"re_fake_[0-9a-f]{24}", self._refunded(a, made[0]))

    @staticmethod
    def _refunded(fake: FakePayments, intent_id: str) -> str:
        assert re.fullmatch(r"evt_fake_[0-9a-f]{24}", event_of(fake.succeed(intent_id))["id"])
        return fake.refund(intent_id, amount=10, idempotency_key="r").id

    def test_success_sends_a_stripe_shaped_event_signed_as_stripe_signs(
        self, fake: FakePayments, clock: FrozenClock
    ) -> None:
        intent = fake.create_payment_intent(
            amount=2500,
            currency="EUR",
            idempotency_key="k",
            payment_method="pm_1",
            metadata={"order_id": "7"},
        )
        payload, header = fake.succeed(intent.id)
        now = int(clock.now().timestamp())
        assert header == stripe_sign(payload, timestamp=now, secrets=[DEFAULT_WEBHOOK_SECRET])
        assert stripe.WebhookSignature.verify_header(payload, header, fake.webhook_secret, tolerance=None)
        event = json.loads(payload)
        assert {k: event[k] for k in ("id", "object", "type", "created")} == {
            "id": event["id"],
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": now,
        }
        obj = event["data"]["object"]
        assert {k: obj[k] for k in ("id", "object", "amount", "currency", "status", "metadata")} == {
            "id": intent.id,
            "object": "payment_intent",
            "amount": 2500,
            "currency": "eur",
            "status": "succeeded",
            "metadata": {"order_id": "7"},
        }
        assert event["id"].startswith("evt_fake_")
        assert fake.parse_webhook(payload, header) == PaymentEvent(
            event["id"], "payment_intent.succeeded", intent.id, 2500, "EUR"
        )

    def test_a_failed_payment_asks_for_another_payment_method_and_may_then_succeed(
        self, fake: FakePayments
    ) -> None:
        intent = fake.create_payment_intent(
            amount=300, currency="EUR", idempotency_key="k", payment_method="pm_1"
        )
        failed = fake.fail(intent.id, decline_code="insufficient_funds")
        event = event_of(failed)
        assert event["type"] == "payment_intent.payment_failed"
        assert event["data"]["object"]["last_payment_error"]["decline_code"] == "insufficient_funds"
        assert fake.retrieve_payment_intent(intent.id).status == "requires_payment_method"
        assert fake.parse_webhook(*failed).type == "payment_intent.payment_failed"
        fake.succeed(intent.id)
        assert fake.retrieve_payment_intent(intent.id).status == "succeeded"

    def test_a_payment_succeeds_only_once_and_never_after_cancelling(self, fake: FakePayments) -> None:
        paid = fake.create_payment_intent(amount=300, currency="EUR", idempotency_key="a")
        fake.succeed(paid.id)
        with pytest.raises(InvalidTransition):
            fake.succeed(paid.id)
        with pytest.raises(InvalidTransition):
            fake.fail(paid.id)
        cancelled = fake.create_payment_intent(amount=300, currency="EUR", idempotency_key="b")
        fake.cancel_payment_intent(cancelled.id, idempotency_key="c")
        with pytest.raises(InvalidTransition):
            fake.succeed(cancelled.id)
        with pytest.raises(NotFound):
            fake.succeed("pi_fake_999999")

    def test_an_injected_create_failure_records_nothing(self, fake: FakePayments) -> None:
        fake.fail_next_create("api_error")
        fake.fail_next_create("rate_limit")
        with pytest.raises(PaymentError, match="api_error"):
            fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        with pytest.raises(PaymentError, match="rate_limit"):
            fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        intent = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        assert fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k") == intent
        assert "intents=1," in repr(fake)  # the failed attempts created none

    def test_an_injected_refund_failure_refunds_nothing(self, fake: FakePayments) -> None:
        intent = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        fake.succeed(intent.id)
        fake.fail_next_refund()
        with pytest.raises(PaymentError):
            fake.refund(intent.id, amount=100, idempotency_key="r")
        assert fake.refund(intent.id, amount=100, idempotency_key="r").amount == 100

    def test_a_refusal_is_replayed_for_its_key_as_stripe_does(self, fake: FakePayments) -> None:
        intent = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        with pytest.raises(PaymentError):
            fake.refund(intent.id, amount=50, idempotency_key="r")
        fake.succeed(intent.id)
        with pytest.raises(PaymentError):
            fake.refund(intent.id, amount=50, idempotency_key="r")
        assert fake.refund(intent.id, amount=50, idempotency_key="r2").amount == 50

    def test_refunds_produce_charge_refunded_webhooks(self, fake: FakePayments) -> None:
        intent = fake.create_payment_intent(amount=1000, currency="EUR", idempotency_key="k")
        fake.succeed(intent.id)
        partial = fake.refund(intent.id, amount=400, idempotency_key="r1")
        full = fake.refund(intent.id, amount=600, idempotency_key="r2")
        charge_then = event_of(fake.refund_webhook(partial.id))["data"]["object"]
        charge_now = event_of(fake.refund_webhook(full.id))["data"]["object"]
        assert (charge_then["amount_refunded"], charge_then["refunded"]) == (400, False)
        assert (charge_now["amount_refunded"], charge_now["refunded"]) == (1000, True)
        assert charge_now["payment_intent"] == intent.id
        assert fake.parse_webhook(*fake.refund_webhook(full.id)).amount == 1000
        with pytest.raises(NotFound):
            fake.refund_webhook("re_fake_999999")

    def test_every_webhook_is_kept_in_order(self, fake: FakePayments) -> None:
        a = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="a")
        b = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="b")
        fake.fail(a.id)
        fake.succeed(a.id)
        fake.cancel_payment_intent(b.id, idempotency_key="c")
        fake.refund(a.id, amount=100, idempotency_key="r")
        assert [event_of(w)["type"] for w in fake.webhooks()] == [
            "payment_intent.payment_failed",
            "payment_intent.succeeded",
            "payment_intent.canceled",
            "charge.refunded",
        ]

    def test_webhooks_go_stale_as_the_clock_moves(self, fake: FakePayments, clock: FrozenClock) -> None:
        intent = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        webhook = fake.succeed(intent.id)
        clock.advance(300)
        assert fake.parse_webhook(*webhook).payment_intent_id == intent.id
        clock.advance(1)
        with pytest.raises(AuthenticationFailed):
            fake.parse_webhook(*webhook)

    def test_a_fake_with_its_own_secret_refuses_the_default_one(self, clock: FrozenClock) -> None:
        own = FakePayments(webhook_secret="whsec_mine", clock=clock)
        other = FakePayments(clock=clock)
        intent = other.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        with pytest.raises(AuthenticationFailed):
            own.parse_webhook(*other.succeed(intent.id))

    def test_the_secret_is_not_in_the_repr(self) -> None:
        fake = FakePayments(webhook_secret="whsec_private_value")
        assert "whsec_private_value" not in repr(fake)
        with pytest.raises(ConfigurationError):
            FakePayments(webhook_secret="")

    def test_without_a_clock_it_uses_the_real_time(self) -> None:
        fake = FakePayments()
        intent = fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="k")
        payload, header = fake.succeed(intent.id)
        assert abs(json.loads(payload)["created"] - time.time()) < 60
        assert fake.parse_webhook(payload, header).type == "payment_intent.succeeded"

    def test_concurrent_creates_with_one_key_make_one_payment(self, fake: FakePayments) -> None:
        barrier = threading.Barrier(8, timeout=10)
        ids: list[str] = []

        def create() -> None:
            barrier.wait()
            ids.append(fake.create_payment_intent(amount=100, currency="EUR", idempotency_key="same").id)

        threads = [threading.Thread(target=create) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ids) == 8 and len(set(ids)) == 1

    def test_concurrent_refunds_never_exceed_the_amount(self, fake: FakePayments) -> None:
        intent = fake.create_payment_intent(amount=500, currency="EUR", idempotency_key="k")
        fake.succeed(intent.id)
        barrier = threading.Barrier(8, timeout=10)
        outcomes: list[str] = []

        def refund(n: int) -> None:
            barrier.wait()
            try:
                fake.refund(intent.id, amount=100, idempotency_key=f"r{n}")
                outcomes.append("refunded")
            except PaymentError:
                outcomes.append("refused")

        threads = [threading.Thread(target=refund, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refunded"] * 5 + ["refused"] * 3

    @settings(max_examples=40, deadline=None)
    @given(total=st.integers(min_value=1, max_value=10_000), asks=st.lists(st.integers(1, 4_000), max_size=8))
    def test_refunds_are_accepted_exactly_while_they_fit(self, total: int, asks: list[int]) -> None:
        fake = FakePayments(clock=FrozenClock())
        intent = fake.create_payment_intent(amount=total, currency="EUR", idempotency_key="k")
        fake.succeed(intent.id)
        refunded = 0
        for n, ask in enumerate(asks):
            if refunded + ask <= total:
                assert fake.refund(intent.id, amount=ask, idempotency_key=f"r{n}").amount == ask
                refunded += ask
            else:
                with pytest.raises(PaymentError):
                    fake.refund(intent.id, amount=ask, idempotency_key=f"r{n}")
        if refunded:
            last = fake.webhooks()[-1]
            assert fake.parse_webhook(*last).amount == refunded


# ---------------------------------------------------------------------------- provider edge helpers


@pytest.mark.parametrize(("fittwin", "provider"), [("EUR", "eur"), ("JPY", "jpy"), ("KWD", "kwd")])
def test_currencies_are_lower_case_at_the_provider_and_upper_case_in_fittwin(
    fittwin: str, provider: str
) -> None:
    assert payments.provider_currency(fittwin) == provider
    assert payments.fittwin_currency(provider) == fittwin


@pytest.mark.parametrize("code", ["eur", "EURO", "", "XXX"])
def test_only_fittwin_currencies_go_to_the_provider(code: str) -> None:
    with pytest.raises(ValidationError):
        payments.provider_currency(code)


def test_a_refund_event_names_its_payment_intent() -> None:
    payload = json.dumps(
        {
            "id": "evt_9",
            "object": "event",
            "type": "refund.updated",
            "data": {
                "object": {
                    "id": "re_1",
                    "object": "refund",
                    "payment_intent": "pi_9",
                    "amount": 70,
                    "currency": "sek",
                }
            },
        }
    )
    assert payments.payment_event_from_json(payload) == PaymentEvent(
        "evt_9", "refund.updated", "pi_9", 70, "SEK"
    )


def test_an_event_about_something_else_has_no_payment_intent() -> None:
    payload = json.dumps(
        {
            "id": "evt_2",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    )
    assert payments.payment_event_from_json(payload) == PaymentEvent("evt_2", "customer.created", None)


@pytest.mark.parametrize(
    "body",
    [
        {
            "id": "evt_1",
            "object": "event",
            "type": "x",
            "data": {"object": {"object": "payment_intent", "id": 7}},
        },
        {"id": "evt_1", "object": "event", "type": "x", "data": {}},
        {"id": "", "object": "event", "type": "x", "data": {"object": {}}},
        {"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"amount": "12"}}},
        {"id": "evt_1", "object": "event", "type": "x", "data": {"object": {"amount": True}}},
        {"id": "evt_1", "object": "event", "type": "x", "data": {"object": "pi_1"}},
    ],
)
def test_malformed_events_are_validation_errors(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        payments.payment_event_from_json(json.dumps(body))


def test_a_provider_answer_without_the_expected_fields_is_a_payment_error() -> None:
    with pytest.raises(PaymentError):
        payments.intent_from_provider({"id": "pi_1", "status": "succeeded"})
    with pytest.raises(PaymentError):
        payments.refund_from_provider({"id": "re_1", "amount": "5"})


def test_metadata_follows_stripes_limits() -> None:
    ok = {f"k{i}": "v" for i in range(50)}
    assert payments.check_payment_request(amount=1, currency="EUR", idempotency_key="k", metadata=ok) == ok
    for bad in ({f"k{i}": "v" for i in range(51)}, {"k" * 41: "v"}, {"k": "v" * 501}, {"": "v"}):
        with pytest.raises(ValidationError):
            payments.check_payment_request(amount=1, currency="EUR", idempotency_key="k", metadata=bad)


# ---------------------------------------------------------------------------- the documentation


def _doc_blocks() -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "payments.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("marker", ["fake.parse_webhook(payload, header)", "verify_webhook(body,"])
def test_the_runnable_snippets_in_the_docs_run(marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    (snippet,) = [block for block in _doc_blocks() if marker in block]
    exec(compile(snippet, "docs/payments.md", "exec"), {})
    if "verify_webhook" in marker:
        assert capsys.readouterr().out == "1893456000 order.paid\n"

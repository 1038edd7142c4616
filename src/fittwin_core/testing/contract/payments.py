"""Contract of the :class:`~fittwin_core.ports.PaymentGateway` port.

Subclass :class:`PaymentGatewayContract` once per adapter and provide two fixtures:
``gateway`` (the adapter under test) and ``provider`` (a :class:`PaymentProvider`: the
provider's side, which makes payments succeed and signs the webhooks it would send)::

    class TestFakePayments(PaymentGatewayContract):
        @pytest.fixture
        def gateway(self, clock):
            return FakePayments(clock=clock)

        @pytest.fixture
        def provider(self, gateway, clock):
            return MyFakeProviderSide(gateway, clock)

Signatures follow Stripe's scheme (``t=<unix>,v1=<hex>``); the ``provider`` signs them, so
the contract never trusts the code under test to sign what it then verifies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

import pytest

from fittwin_core.domain.errors import AuthenticationFailed, Conflict, NotFound, PaymentError, ValidationError
from fittwin_core.ports import PaymentEvent, PaymentGateway, PaymentIntent

TOLERANCE = 300
"""Seconds a webhook's signed timestamp may be away from the gateway's clock."""

WRONG_SECRET = "whsec_not_the_endpoint_secret"  # noqa: S105 - a deliberately wrong test value


class PaymentProvider(Protocol):
    """The payment provider's side of a gateway, as the contract drives it."""

    @property
    def webhook_secret(self) -> str:
        """The secret the gateway verifies webhooks with."""
        ...

    def now(self) -> int:
        """The gateway's current time, in unix seconds."""
        ...

    def complete(self, payment_intent_id: str) -> bytes:
        """Make the payment succeed at the provider; return the ``payment_intent.succeeded``
        event payload the provider sends (unsigned)."""
        ...

    def refund_event(self, refund_id: str) -> bytes:
        """The ``charge.refunded`` event payload the provider sends for this refund (unsigned)."""
        ...

    def sign(self, payload: bytes, *, timestamp: int, secrets: Sequence[str]) -> str:
        """The signature header the provider sends: one ``v1`` entry per secret, in order."""
        ...


class PaymentGatewayContract:
    """What every payment gateway adapter must do; subclass it and provide the fixtures."""

    @pytest.fixture
    def gateway(self) -> PaymentGateway:
        """The adapter under test (override)."""
        raise NotImplementedError("provide a `gateway` fixture")

    @pytest.fixture
    def provider(self, gateway: PaymentGateway) -> PaymentProvider:
        """The provider's side of ``gateway`` (override)."""
        raise NotImplementedError("provide a `provider` fixture")

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def create(
        gateway: PaymentGateway,
        key: str = "order-1",
        amount: int = 2500,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """A payment of ``amount`` EUR cents with a card, under idempotency key ``key``."""
        return gateway.create_payment_intent(
            amount=amount,
            currency="EUR",
            idempotency_key=key,
            payment_method="pm_card_visa",
            metadata=metadata,
        )

    @staticmethod
    def signed(
        provider: PaymentProvider,
        payload: bytes,
        *,
        age: int = 0,
        secrets: Sequence[str] | None = None,
    ) -> str:
        """A header signing ``payload`` ``age`` seconds ago (with the endpoint's secret by default)."""
        chosen = [provider.webhook_secret] if secrets is None else list(secrets)
        return provider.sign(payload, timestamp=provider.now() - age, secrets=chosen)

    def paid(self, gateway: PaymentGateway, provider: PaymentProvider, amount: int = 2500) -> PaymentIntent:
        """A payment that succeeded."""
        intent = self.create(gateway, "paid-order", amount)
        provider.complete(intent.id)
        return intent

    # ------------------------------------------------------------------ creating payments

    def test_a_payment_with_a_payment_method_awaits_confirmation(self, gateway: PaymentGateway) -> None:
        intent = self.create(gateway)
        assert intent.status == "requires_confirmation"
        assert (intent.amount, intent.currency) == (2500, "EUR")
        assert intent.id
        assert intent.client_secret

    def test_a_payment_without_a_payment_method_requires_one(self, gateway: PaymentGateway) -> None:
        intent = gateway.create_payment_intent(amount=1200, currency="JPY", idempotency_key="k")
        assert intent.status == "requires_payment_method"
        assert (intent.amount, intent.currency) == (1200, "JPY")

    def test_the_same_key_and_parameters_return_the_same_payment(self, gateway: PaymentGateway) -> None:
        first = self.create(gateway, "order-7", metadata={"order_id": "7"})
        again = self.create(gateway, "order-7", metadata={"order_id": "7"})
        assert again.id == first.id
        assert again == first

    def test_the_same_key_with_other_parameters_is_a_conflict(self, gateway: PaymentGateway) -> None:
        self.create(gateway, "order-7", 2500)
        with pytest.raises(Conflict):
            self.create(gateway, "order-7", 2600)

    def test_other_keys_make_other_payments(self, gateway: PaymentGateway) -> None:
        assert self.create(gateway, "a").id != self.create(gateway, "b").id

    @pytest.mark.parametrize(
        ("field", "params"),
        [
            ("amount", {"amount": 0}),
            ("amount", {"amount": -5}),
            ("amount", {"amount": True}),
            ("amount", {"amount": 12.5}),
            ("currency", {"currency": "eur"}),
            ("currency", {"currency": "XYZ"}),
            ("idempotency_key", {"idempotency_key": ""}),
            ("payment_method", {"payment_method": "pm/../x"}),
            ("metadata", {"metadata": {"k": 1}}),
            ("metadata", {"metadata": {"a[b]": "x"}}),
        ],
    )
    def test_bad_requests_are_validation_errors(
        self, gateway: PaymentGateway, field: str, params: dict[str, object]
    ) -> None:
        request: dict[str, object] = {"amount": 100, "currency": "EUR", "idempotency_key": "k", **params}
        with pytest.raises(ValidationError) as raised:
            gateway.create_payment_intent(**request)  # type: ignore[arg-type]
        assert raised.value.field.startswith(field)

    # ------------------------------------------------------------------ reading and cancelling

    def test_retrieve_shows_the_current_state(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.create(gateway)
        assert gateway.retrieve_payment_intent(intent.id).status == "requires_confirmation"
        provider.complete(intent.id)
        current = gateway.retrieve_payment_intent(intent.id)
        assert (current.id, current.status, current.amount, current.currency) == (
            intent.id,
            "succeeded",
            2500,
            "EUR",
        )

    def test_an_unknown_payment_is_not_found(self, gateway: PaymentGateway) -> None:
        with pytest.raises(NotFound):
            gateway.retrieve_payment_intent("pi_unknown")

    def test_a_payment_is_cancelled_before_it_succeeds(self, gateway: PaymentGateway) -> None:
        intent = self.create(gateway)
        cancelled = gateway.cancel_payment_intent(intent.id, idempotency_key="cancel-1")
        assert cancelled.status == "canceled"
        assert gateway.retrieve_payment_intent(intent.id).status == "canceled"
        assert gateway.cancel_payment_intent(intent.id, idempotency_key="cancel-1") == cancelled

    def test_a_succeeded_payment_cannot_be_cancelled(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.paid(gateway, provider)
        with pytest.raises(PaymentError):
            gateway.cancel_payment_intent(intent.id, idempotency_key="cancel-1")
        assert gateway.retrieve_payment_intent(intent.id).status == "succeeded"

    def test_cancelling_an_unknown_payment_is_not_found(self, gateway: PaymentGateway) -> None:
        with pytest.raises(NotFound):
            gateway.cancel_payment_intent("pi_unknown", idempotency_key="cancel-1")

    # ------------------------------------------------------------------ refunds

    def test_only_a_succeeded_payment_is_refunded(self, gateway: PaymentGateway) -> None:
        intent = self.create(gateway)
        with pytest.raises(PaymentError):
            gateway.refund(intent.id, amount=100, idempotency_key="refund-1")

    def test_refunds_add_up_to_the_amount_and_no_further(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.paid(gateway, provider, amount=1000)
        first = gateway.refund(intent.id, amount=400, idempotency_key="refund-1")
        assert (first.payment_intent_id, first.amount) == (intent.id, 400)
        with pytest.raises(PaymentError):
            gateway.refund(intent.id, amount=601, idempotency_key="refund-2")
        second = gateway.refund(intent.id, amount=600, idempotency_key="refund-3")
        assert second.id != first.id
        with pytest.raises(PaymentError):
            gateway.refund(intent.id, amount=1, idempotency_key="refund-4")

    def test_a_repeated_refund_key_refunds_once(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.paid(gateway, provider, amount=1000)
        first = gateway.refund(intent.id, amount=700, idempotency_key="refund-1")
        assert gateway.refund(intent.id, amount=700, idempotency_key="refund-1") == first
        # Only 700 went out, so the remaining 300 can still be refunded.
        assert gateway.refund(intent.id, amount=300, idempotency_key="refund-2").amount == 300
        with pytest.raises(Conflict):
            gateway.refund(intent.id, amount=200, idempotency_key="refund-1")

    @pytest.mark.parametrize("amount", [0, -1])
    def test_a_refund_amount_must_be_positive(
        self, gateway: PaymentGateway, provider: PaymentProvider, amount: int
    ) -> None:
        intent = self.paid(gateway, provider)
        with pytest.raises(ValidationError):
            gateway.refund(intent.id, amount=amount, idempotency_key="refund-1")

    def test_refunding_an_unknown_payment_is_not_found(self, gateway: PaymentGateway) -> None:
        with pytest.raises(NotFound):
            gateway.refund("pi_unknown", amount=100, idempotency_key="refund-1")

    # ------------------------------------------------------------------ webhooks

    def test_a_signed_success_event_is_parsed(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.create(gateway)
        payload = provider.complete(intent.id)
        event = gateway.parse_webhook(payload, self.signed(provider, payload))
        assert event == PaymentEvent(
            id=json.loads(payload)["id"],
            type="payment_intent.succeeded",
            payment_intent_id=intent.id,
            amount=2500,
            currency="EUR",
        )

    def test_a_refund_event_carries_the_amount_refunded_so_far(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.paid(gateway, provider, amount=1000)
        gateway.refund(intent.id, amount=300, idempotency_key="refund-1")
        refund = gateway.refund(intent.id, amount=200, idempotency_key="refund-2")
        payload = provider.refund_event(refund.id)
        event = gateway.parse_webhook(payload, self.signed(provider, payload))
        assert (event.type, event.payment_intent_id, event.amount, event.currency) == (
            "charge.refunded",
            intent.id,
            500,
            "EUR",
        )

    def test_a_tampered_payload_is_refused(self, gateway: PaymentGateway, provider: PaymentProvider) -> None:
        payload = provider.complete(self.create(gateway).id)
        header = self.signed(provider, payload)
        tampered = payload.replace(b'"amount":2500', b'"amount":1').replace(b'"amount": 2500', b'"amount": 1')
        assert tampered != payload
        with pytest.raises(AuthenticationFailed):
            gateway.parse_webhook(tampered, header)

    def test_a_signature_with_another_secret_is_refused(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        payload = provider.complete(self.create(gateway).id)
        with pytest.raises(AuthenticationFailed) as raised:
            gateway.parse_webhook(payload, self.signed(provider, payload, secrets=[WRONG_SECRET]))
        assert provider.webhook_secret not in str(raised.value)

    @pytest.mark.parametrize("age", [TOLERANCE + 1, 3600, -(TOLERANCE + 1)])
    def test_a_timestamp_outside_the_tolerance_is_refused(
        self, gateway: PaymentGateway, provider: PaymentProvider, age: int
    ) -> None:
        payload = provider.complete(self.create(gateway).id)
        with pytest.raises(AuthenticationFailed):
            gateway.parse_webhook(payload, self.signed(provider, payload, age=age))

    @pytest.mark.parametrize("age", [TOLERANCE - 1, 1, -(TOLERANCE - 1)])
    def test_a_timestamp_within_the_tolerance_is_accepted(
        self, gateway: PaymentGateway, provider: PaymentProvider, age: int
    ) -> None:
        payload = provider.complete(self.create(gateway).id)
        event = gateway.parse_webhook(payload, self.signed(provider, payload, age=age))
        assert event.type == "payment_intent.succeeded"

    @pytest.mark.parametrize(
        "header",
        [
            "",
            "garbage",
            "t=,v1=00",
            "t=abc,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1,t=2,v1=00",
            "t=1700000000,v0=00",
        ],
    )
    def test_a_malformed_header_is_refused(
        self, gateway: PaymentGateway, provider: PaymentProvider, header: str
    ) -> None:
        payload = provider.complete(self.create(gateway).id)
        with pytest.raises(AuthenticationFailed):
            gateway.parse_webhook(payload, header)

    def test_one_matching_signature_among_several_is_enough(
        self, gateway: PaymentGateway, provider: PaymentProvider
    ) -> None:
        intent = self.create(gateway)
        payload = provider.complete(intent.id)
        header = self.signed(
            provider, payload, secrets=[WRONG_SECRET, provider.webhook_secret, "whsec_other"]
        )
        assert header.count("v1=") == 3
        assert gateway.parse_webhook(payload, header).payment_intent_id == intent.id

    @pytest.mark.parametrize(
        "payload", [b"not json", b"[1, 2]", b'{"object": "event"}', b'{"object": "charge", "id": "ch_1"}']
    )
    def test_a_verified_payload_that_is_not_an_event_is_a_validation_error(
        self, gateway: PaymentGateway, provider: PaymentProvider, payload: bytes
    ) -> None:
        with pytest.raises(ValidationError):
            gateway.parse_webhook(payload, self.signed(provider, payload))


__all__ = ["TOLERANCE", "PaymentGatewayContract", "PaymentProvider"]

"""``FakePayments``: an in-memory payment provider that behaves like Stripe, for tests and demos.

It keeps Stripe-shaped objects in memory, honours idempotency keys as Stripe does, and sends
nothing anywhere: tests drive the provider's side with :meth:`FakePayments.succeed`,
:meth:`FakePayments.fail` and :meth:`FakePayments.fail_next_create`, and receive the webhooks
Stripe would have sent, signed with the ``Stripe-Signature`` scheme.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from fittwin_core import payments, webhooks
from fittwin_core.domain.errors import (
    ConfigurationError,
    IdempotencyKeyReused,
    InvalidTransition,
    NotFound,
    PaymentError,
)
from fittwin_core.domain.rules import redacted
from fittwin_core.ports import Clock, PaymentEvent, PaymentIntent, Refund

DEFAULT_WEBHOOK_SECRET = "whsec_fittwin_fake"  # noqa: S105 - a published test value, not a secret
"""The webhook secret of a ``FakePayments`` built without one."""

WEBHOOK_TOLERANCE = webhooks.DEFAULT_TOLERANCE

R = TypeVar("R", PaymentIntent, Refund)

# Allowed moves as data: target status -> statuses it may be reached from.
_OPEN = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "processing"})
_MOVES: dict[str, frozenset[str]] = {
    "succeeded": _OPEN,
    "requires_payment_method": _OPEN,  # a failed attempt asks for another payment method
    "canceled": _OPEN | {"requires_capture"},
}

Webhook = tuple[bytes, str]
"""A webhook as the provider sends it: ``(payload, Stripe-Signature header value)``."""


class FakePayments:
    """Take payments in memory, deterministically: the embedded default payment gateway.

    Ids are random, as the provider's are (``pi_fake_…``, ``re_fake_…``, ``evt_fake_…``), so
    two processes never hand out the same one. A created intent is ``requires_confirmation`` (or
    ``requires_payment_method`` without a payment method) until :meth:`succeed` or
    :meth:`fail` plays the customer's part. Every method is thread-safe.

    ``clock`` (anything with ``now()`` returning an aware datetime; real UTC time by default)
    stamps events and signatures and is the "now" of :meth:`parse_webhook`.
    """

    def __init__(self, *, webhook_secret: str = DEFAULT_WEBHOOK_SECRET, clock: Clock | None = None) -> None:
        if not isinstance(webhook_secret, str) or not webhook_secret.strip():
            raise ConfigurationError("FakePayments needs a non-empty webhook secret")
        self._secret = webhook_secret
        self._clock = clock
        self._lock = threading.RLock()
        self._counters: dict[str, int] = {}
        self._intents: dict[str, dict[str, Any]] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[tuple[Any, ...], PaymentIntent | Refund | PaymentError]] = {}
        self._webhooks: list[Webhook] = []
        self._refund_webhooks: dict[str, Webhook] = {}
        self._failures: dict[str, deque[PaymentError]] = {"create": deque(), "refund": deque()}

    def __repr__(self) -> str:
        return f"FakePayments(intents={len(self._intents)}, webhook_secret={redacted(self._secret)})"

    @property
    def webhook_secret(self) -> str:
        """The secret this fake signs its webhooks with (to verify them elsewhere)."""
        return self._secret

    # ------------------------------------------------------------------ the PaymentGateway port

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        payment_method: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """Create a payment for ``amount`` minor units; a repeated key returns the first answer.

        The same key with other parameters raises :class:`IdempotencyKeyReused` (a :class:`Conflict`).
        """
        checked = payments.check_payment_request(
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            payment_method=payment_method,
            metadata=metadata,
        )
        fingerprint = ("create", amount, currency, payment_method, tuple(sorted(checked.items())))
        with self._lock:
            replay = self._replay(idempotency_key, fingerprint, PaymentIntent)
            if replay is not None:
                return replay
            self._raise_injected("create")
            intent_id = self._next_id("pi")
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "currency": payments.provider_currency(currency),
                "status": "requires_confirmation" if payment_method else "requires_payment_method",
                "payment_method": payment_method,
                "metadata": checked,
                "client_secret": f"{intent_id}_secret_fake",
                "created": self._timestamp(),
                "latest_charge": None,
                "last_payment_error": None,
                "canceled_at": None,
                "livemode": False,
            }
            self._intents[intent_id] = intent
            result = payments.intent_from_provider(intent)
            self._idempotency[idempotency_key] = (fingerprint, result)
            return result

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        """The payment's current state; :class:`NotFound` for an unknown id."""
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        with self._lock:
            intent = dict(self._intent(payment_intent_id))
            if intent["latest_charge"] is not None:  # expanded, as with expand=["latest_charge"]
                intent["latest_charge"] = dict(self._charges[intent["latest_charge"]])
            return payments.intent_from_provider(intent)

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentIntent:
        """Cancel a payment that has not succeeded yet.

        :class:`PaymentError` once it succeeded or was already canceled (as Stripe answers).
        """
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        payments.check_idempotency_key(idempotency_key)
        fingerprint = ("cancel", payment_intent_id)
        with self._lock:
            replay = self._replay(idempotency_key, fingerprint, PaymentIntent)
            if replay is not None:
                return replay
            intent = self._intent(payment_intent_id)
            if intent["status"] not in _MOVES["canceled"]:
                self._refuse(idempotency_key, fingerprint, "payment_intent_unexpected_state")
            intent.update(status="canceled", canceled_at=self._timestamp())
            self._emit("payment_intent.canceled", intent)
            result = payments.intent_from_provider(intent)
            self._idempotency[idempotency_key] = (fingerprint, result)
            return result

    def refund(self, payment_intent_id: str, *, amount: int, idempotency_key: str) -> Refund:
        """Refund ``amount`` minor units of a succeeded payment, never more than is left to refund.

        Also produces a ``charge.refunded`` webhook (see :meth:`refund_webhook`).
        """
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        payments.check_refund_amount(amount)
        payments.check_idempotency_key(idempotency_key)
        fingerprint = ("refund", payment_intent_id, amount)
        with self._lock:
            replay = self._replay(idempotency_key, fingerprint, Refund)
            if replay is not None:
                return replay
            intent = self._intent(payment_intent_id)
            if intent["status"] != "succeeded":
                self._refuse(idempotency_key, fingerprint, "payment_intent_unexpected_state")
            charge = self._charges[intent["latest_charge"]]
            left = charge["amount"] - charge["amount_refunded"]
            if left == 0:
                self._refuse(idempotency_key, fingerprint, "charge_already_refunded")
            if amount > left:
                self._refuse(idempotency_key, fingerprint, "amount_too_large")
            self._raise_injected("refund")
            refund = {
                "id": self._next_id("re"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "payment_intent": payment_intent_id,
                "charge": charge["id"],
                "status": "succeeded",
                "created": self._timestamp(),
            }
            self._refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._refund_webhooks[refund["id"]] = self._emit("charge.refunded", charge)
            result = payments.refund_from_provider(refund)
            self._idempotency[idempotency_key] = (fingerprint, result)
            return result

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Verify a webhook signed with this fake's secret (300 s tolerance) and return its event.

        :class:`AuthenticationFailed` for a bad or stale signature, :class:`ValidationError`
        for a payload that is not an event.
        """
        now = int(self._now().timestamp())
        webhooks.verify_webhook(payload, signature_header, self._secret, tolerance=WEBHOOK_TOLERANCE, now=now)
        return payments.payment_event_from_json(payload)

    # ------------------------------------------------------------------ the provider's side

    def succeed(self, payment_intent_id: str) -> Webhook:
        """Play a successful payment: the intent becomes ``succeeded``; returns the
        ``payment_intent.succeeded`` webhook. :class:`InvalidTransition` if it cannot succeed."""
        with self._lock:
            intent = self._move(payment_intent_id, "succeeded")
            charge_id = self._next_id("ch")
            self._charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": intent["amount"],
                "amount_refunded": 0,
                "currency": intent["currency"],
                "payment_intent": payment_intent_id,
                "paid": True,
                "refunded": False,
                "status": "succeeded",
                "created": self._timestamp(),
            }
            intent.update(latest_charge=charge_id, amount_received=intent["amount"], last_payment_error=None)
            return self._emit("payment_intent.succeeded", intent)

    def fail(self, payment_intent_id: str, *, decline_code: str = "generic_decline") -> Webhook:
        """Play a declined payment: the intent goes back to ``requires_payment_method``;
        returns the ``payment_intent.payment_failed`` webhook."""
        with self._lock:
            intent = self._move(payment_intent_id, "requires_payment_method")
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
            }
            return self._emit("payment_intent.payment_failed", intent)

    def fail_next_create(self, code: str = "api_error", *, decline_code: str | None = None) -> None:
        """Make the next :meth:`create_payment_intent` raise :class:`PaymentError` (calls queue up).

        This plays a provider failure before the request was worked on: nothing is recorded,
        so a retry with the same idempotency key goes through.
        """
        with self._lock:
            self._failures["create"].append(payments.payment_refused(code, decline_code=decline_code))

    def fail_next_refund(self, code: str = "api_error") -> None:
        """Make the next :meth:`refund` that passes its checks raise :class:`PaymentError`
        (recording nothing, like :meth:`fail_next_create`)."""
        with self._lock:
            self._failures["refund"].append(payments.payment_refused(code))

    def refund_webhook(self, refund_id: str) -> Webhook:
        """The ``charge.refunded`` webhook the refund ``refund_id`` produced."""
        with self._lock:
            try:
                return self._refund_webhooks[refund_id]
            except KeyError:
                raise NotFound("refund", refund_id) from None

    def refunds(self, payment_intent_id: str) -> list[Refund]:
        """Every refund of a payment, oldest first."""
        with self._lock:
            return [
                payments.refund_from_provider(refund)
                for refund in self._refunds.values()
                if refund["payment_intent"] == payment_intent_id
            ]

    def sign(self, event: Mapping[str, Any]) -> Webhook:
        """Sign any event as this provider would (for tests of event types FitTwin ignores)."""
        payload = json.dumps(dict(event), separators=(",", ":")).encode()
        return payload, webhooks.sign_payload(payload, self._secret, self._timestamp())

    def webhooks(self) -> list[Webhook]:
        """Every webhook sent so far, oldest first (succeeded, failed, canceled, refunded)."""
        with self._lock:
            return list(self._webhooks)

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def _timestamp(self) -> int:
        return int(self._now().timestamp())

    def _next_id(self, prefix: str) -> str:
        # Random, like the provider's: two processes (app workers) never hand out the same id.
        return f"{prefix}_fake_{secrets.token_hex(12)}"

    def _intent(self, payment_intent_id: str) -> dict[str, Any]:
        try:
            return self._intents[payment_intent_id]
        except KeyError:
            raise NotFound("payment_intent", payment_intent_id) from None

    def _move(self, payment_intent_id: str, target: str) -> dict[str, Any]:
        intent = self._intent(payment_intent_id)
        if intent["status"] not in _MOVES[target]:
            raise InvalidTransition("payment_intent", intent["status"], target)
        intent["status"] = target
        return intent

    def _replay(self, key: str, fingerprint: tuple[Any, ...], kind: type[R]) -> R | None:
        # Like Stripe: a key is bound to its first request, and a repeat gets the first
        # answer again, a refusal included.
        seen = self._idempotency.get(key)
        if seen is None:
            return None
        if seen[0] != fingerprint:
            raise IdempotencyKeyReused("idempotency key was already used with other parameters")
        result = seen[1]
        if isinstance(result, PaymentError):
            raise PaymentError(*result.args)
        assert isinstance(result, kind)  # the fingerprint names the operation, hence the type
        return result

    def _refuse(self, key: str, fingerprint: tuple[Any, ...], code: str) -> NoReturn:
        error = payments.payment_refused(code, status=400)
        self._idempotency[key] = (fingerprint, error)
        raise error

    def _raise_injected(self, operation: str) -> None:
        queue = self._failures[operation]
        if queue:
            raise queue.popleft()

    def _emit(self, event_type: str, obj: dict[str, Any]) -> Webhook:
        created = self._timestamp()
        event = {
            "id": self._next_id("evt"),
            "object": "event",
            "type": event_type,
            "created": created,
            "livemode": False,
            "data": {"object": copy.deepcopy(obj)},
        }
        payload = json.dumps(event, separators=(",", ":")).encode()
        webhook = (payload, webhooks.sign_payload(payload, self._secret, created))
        self._webhooks.append(webhook)
        return webhook


__all__ = ["DEFAULT_WEBHOOK_SECRET", "FakePayments", "Webhook"]

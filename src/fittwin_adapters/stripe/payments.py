"""``StripePayments``: the :class:`~fittwin_core.ports.PaymentGateway` on Stripe PaymentIntents.

Calls go through stripe-python's ``StripeClient`` (its ``v1`` services); webhooks are verified
by the stripe library itself. Every stripe error is translated here, at the edge, into
FitTwin's errors, and no stripe object leaves this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from fittwin_core import payments, webhooks
from fittwin_core.domain.errors import (
    AuthenticationFailed,
    ConfigurationError,
    FitTwinError,
    IdempotencyKeyReused,
    NotFound,
    PaymentProviderUnavailable,
    ValidationError,
)
from fittwin_core.domain.rules import redacted
from fittwin_core.ports import Clock, PaymentEvent, PaymentIntent, Refund

try:
    import stripe
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError("StripePayments needs the stripe extra: pip install 'fittwin[stripe]'") from missing

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams, RefundCreateParams

T = TypeVar("T")

WEBHOOK_TOLERANCE = webhooks.DEFAULT_TOLERANCE
"""Seconds a Stripe webhook's signed timestamp may be away from now (Stripe's default)."""

DEFAULT_MAX_NETWORK_RETRIES = 2
"""Retries of a failed connection or 5xx answer; each retry reuses the idempotency key."""


class StripePayments:
    """Take payments with Stripe: the production payment gateway.

    ``api_key`` is the secret key (``sk_live_…``/``sk_test_…``), ``webhook_secret`` the signing
    secret of the webhook endpoint (``whsec_…``). ``api_base`` replaces Stripe's API address
    (a local test server, or a proxy). ``clock`` is the "now" of webhook verification
    (real UTC time by default). Neither secret ever appears in a repr or an error message.
    """

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        clock: Clock | None = None,
        max_network_retries: int = DEFAULT_MAX_NETWORK_RETRIES,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("StripePayments needs an API key (sk_...)")
        if not isinstance(webhook_secret, str) or not webhook_secret.strip():
            raise ConfigurationError("StripePayments needs the webhook signing secret (whsec_...)")
        if isinstance(max_network_retries, bool) or not isinstance(max_network_retries, int):
            raise ConfigurationError("max_network_retries must be an integer")
        if max_network_retries < 0:
            raise ConfigurationError("max_network_retries must not be negative")
        self._api_base = api_base
        self._webhook_secret = webhook_secret
        self._clock = clock
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
        )

    def __repr__(self) -> str:
        return (
            f"StripePayments(api_base={self._api_base!r}, api_key={redacted(True)}, "
            f"webhook_secret={redacted(self._webhook_secret)})"
        )

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        payment_method: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """Create a PaymentIntent for ``amount`` minor units (Stripe replays a repeated key).

        The same key with other parameters raises :class:`IdempotencyKeyReused` (a
        :class:`Conflict`); a refusal raises :class:`PaymentError`, an API error or an
        unreachable Stripe :class:`PaymentProviderUnavailable` (a retryable ``PaymentError``).
        """
        checked = payments.check_payment_request(
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            payment_method=payment_method,
            metadata=metadata,
        )
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": payments.provider_currency(currency),
        }
        if payment_method is not None:
            params["payment_method"] = payment_method
        if checked:
            params["metadata"] = checked
        intent = self._call(
            lambda: self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )
        return payments.intent_from_provider(intent.to_dict())

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        """The payment's current state; :class:`NotFound` for an unknown id."""
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        intent = self._call(
            lambda: self._client.v1.payment_intents.retrieve(payment_intent_id),
            missing=payment_intent_id,
        )
        return payments.intent_from_provider(intent.to_dict())

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentIntent:
        """Cancel a payment that has not succeeded yet (:class:`PaymentError` otherwise)."""
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        payments.check_idempotency_key(idempotency_key)
        intent = self._call(
            lambda: self._client.v1.payment_intents.cancel(
                payment_intent_id, options={"idempotency_key": idempotency_key}
            ),
            missing=payment_intent_id,
        )
        return payments.intent_from_provider(intent.to_dict())

    def refund(self, payment_intent_id: str, *, amount: int, idempotency_key: str) -> Refund:
        """Refund ``amount`` minor units of a succeeded payment.

        Stripe refuses (:class:`PaymentError`) a payment that has not succeeded and an amount
        beyond what is left to refund.
        """
        payments.check_provider_id("payment_intent_id", payment_intent_id)
        payments.check_refund_amount(amount)
        payments.check_idempotency_key(idempotency_key)
        params: RefundCreateParams = {"payment_intent": payment_intent_id, "amount": amount}
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        refund = self._call(
            lambda: self._client.v1.refunds.create(params=params, options=options),
            missing=payment_intent_id,
        )
        return payments.refund_from_provider(refund.to_dict())

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Verify a Stripe webhook with the stripe library and return its event.

        Every ``v1`` signature is tried; the signed timestamp must be within 300 s of the
        clock. :class:`AuthenticationFailed` for a missing, malformed, wrong or stale
        signature; :class:`ValidationError` for a verified payload that is not an event.
        """
        try:
            body = payload.decode() if isinstance(payload, bytes | bytearray) else payload
        except UnicodeDecodeError:
            raise AuthenticationFailed("webhook signature does not match the payload") from None
        # stripe checks the age against the real time; with an injected clock that check is
        # left to check_timestamp below (a tolerance of 0 turns stripe's off).
        tolerance = WEBHOOK_TOLERANCE if self._clock is None else 0
        failure: FitTwinError
        try:
            self._client.construct_event(body, signature_header, self._webhook_secret, tolerance)
        except stripe.SignatureVerificationError:
            failure = AuthenticationFailed("webhook signature is missing, malformed, wrong or stale")
        except (ValueError, TypeError, AttributeError):
            failure = ValidationError("payload", "must be a payment provider event")
        else:
            timestamp, _ = webhooks.parse_signature_header(signature_header)
            now = self._clock.now() if self._clock is not None else datetime.now(UTC)
            webhooks.check_timestamp(timestamp, tolerance=WEBHOOK_TOLERANCE, now=int(now.timestamp()))
            return payments.payment_event_from_json(body)
        raise failure

    def _call(self, request: Callable[[], T], *, missing: str | None = None) -> T:
        try:
            return request()
        except stripe.StripeError as error:
            failure = _translate(error, missing)
        # Raised outside the except block: the stripe error (which may quote the request)
        # is neither the cause nor the context of what the caller sees.
        raise failure


def _translate(error: stripe.StripeError, missing: str | None) -> FitTwinError:
    if isinstance(error, stripe.IdempotencyError):
        return IdempotencyKeyReused("idempotency key was already used with other parameters")
    if isinstance(error, stripe.APIConnectionError):
        return PaymentProviderUnavailable("payment provider could not be reached")
    if (
        missing is not None
        and isinstance(error, stripe.InvalidRequestError)
        and (error.http_status == 404 or error.code == "resource_missing")
    ):
        return NotFound("payment_intent", missing)
    details = error.error
    code = error.code or (details.type if details is not None else None)
    decline_code = details.decline_code if details is not None else None
    return payments.payment_refused(code, decline_code=decline_code, status=error.http_status)


__all__ = ["DEFAULT_MAX_NETWORK_RETRIES", "WEBHOOK_TOLERANCE", "StripePayments"]

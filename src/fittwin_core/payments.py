"""What every payment gateway adapter does at the provider edge, in one place.

The :class:`~fittwin_core.ports.PaymentGateway` adapters (``FakePayments`` embedded,
``StripePayments`` in production) share these rules so they behave alike:

- requests are checked before anything reaches the provider (:func:`check_payment_request`,
  :func:`check_refund_amount`, :func:`check_provider_id`): bad input is a
  :class:`ValidationError`, never a provider error;
- currencies are upper-case ISO-4217 codes in FitTwin and lower-case at the provider:
  :func:`provider_currency` and :func:`fittwin_currency` convert at the edge, both ways;
- provider objects and events are Stripe-shaped JSON, read by :func:`intent_from_provider`,
  :func:`refund_from_provider` and :func:`payment_event_from_json`;
- a refusal becomes a :class:`PaymentError` naming the provider's codes (:func:`payment_refused`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fittwin_core.domain import money
from fittwin_core.domain.errors import PaymentError, PaymentProviderUnavailable, ValidationError
from fittwin_core.domain.rules import integer, optional, text
from fittwin_core.ports import PaymentEvent, PaymentIntent, Refund

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LEN = 40
METADATA_VALUE_MAX_LEN = 500
IDEMPOTENCY_KEY_MAX_LEN = 255

_amount = integer(gt=0, le=money.MAX_CENTS)
_provider_id = text(max_len=255, pattern=r"[A-Za-z0-9_]+", rule="must be a provider id (letters, digits, _)")
_idempotency_key = text(max_len=IDEMPOTENCY_KEY_MAX_LEN)
_metadata_key = text(
    max_len=METADATA_KEY_MAX_LEN, pattern=r"[^\[\]]+", rule="must not contain square brackets"
)
_metadata_value = text(min_len=0, max_len=METADATA_VALUE_MAX_LEN)


def check_provider_id(field: str, value: object) -> str:
    """``value`` if it looks like a provider id (``pi_…``, ``pm_…``); :class:`ValidationError` otherwise."""
    _provider_id.check(field, value)
    assert isinstance(value, str)
    return value


def check_idempotency_key(value: object) -> str:
    """``value`` if it is a usable idempotency key (1 to 255 characters)."""
    _idempotency_key.check("idempotency_key", value)
    assert isinstance(value, str)
    return value


def check_payment_request(
    *,
    amount: object,
    currency: object,
    idempotency_key: object,
    payment_method: object = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Check a payment request as the provider would; return the metadata as a plain ``dict``.

    ``amount`` is a positive number of minor units, ``currency`` an upper-case ISO-4217
    code FitTwin handles, ``metadata`` at most 50 string pairs (keys up to 40 characters
    without square brackets, values up to 500), as Stripe allows.
    """
    _amount.check("amount", amount)
    money.currency.check("currency", currency)
    check_idempotency_key(idempotency_key)
    optional(_provider_id).check("payment_method", payment_method)
    return _check_metadata(metadata)


def check_refund_amount(amount: object) -> int:
    """``amount`` if it is a positive number of minor units; :class:`ValidationError` otherwise."""
    _amount.check("amount", amount)
    assert isinstance(amount, int)
    return amount


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata", "must be a mapping of strings to strings")
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValidationError("metadata", f"must have at most {METADATA_MAX_KEYS} keys")
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        _metadata_key.check("metadata key", key)
        _metadata_value.check(f"metadata.{key}", value)
        checked[key] = value
    return checked


def provider_currency(code: str) -> str:
    """FitTwin's upper-case ISO-4217 code as the provider writes it (``"EUR"`` → ``"eur"``)."""
    money.currency.check("currency", code)
    return code.lower()


def fittwin_currency(code: str) -> str:
    """A provider's currency code as FitTwin writes it (``"eur"`` → ``"EUR"``)."""
    return code.upper()


def payment_refused(
    code: str | None, *, decline_code: str | None = None, status: int | None = None
) -> PaymentError:
    """The :class:`PaymentError` for a provider's refusal, naming its codes (never card data).

    A failure on the provider's side (HTTP 5xx, or 429 when it limits the rate) is a
    :class:`PaymentProviderUnavailable`, which may be retried.

    >>> str(payment_refused("card_declined", decline_code="insufficient_funds", status=402))
    'payment provider refused the request (HTTP 402): card_declined (insufficient_funds)'
    >>> type(payment_refused("api_error", status=500)).__name__
    'PaymentProviderUnavailable'
    """
    where = f" (HTTP {status})" if status is not None else ""
    what = code or "unknown error"
    if decline_code:
        what = f"{what} ({decline_code})"
    if status is not None and (status >= 500 or status == 429):
        return PaymentProviderUnavailable(f"payment provider failed the request{where}: {what}")
    return PaymentError(f"payment provider refused the request{where}: {what}")


# ---------------------------------------------------------------------------- provider objects


def intent_from_provider(obj: Mapping[str, Any]) -> PaymentIntent:
    """A Stripe-shaped ``payment_intent`` object as a :class:`PaymentIntent`."""
    charge = obj.get("latest_charge")
    try:
        return PaymentIntent(
            id=_str(obj["id"]),
            status=_str(obj["status"]),
            amount=_int(obj["amount"]),
            currency=fittwin_currency(_str(obj["currency"])),
            client_secret=obj.get("client_secret"),
            amount_refunded=_int(charge.get("amount_refunded", 0)) if isinstance(charge, Mapping) else 0,
        )
    except (KeyError, TypeError):
        raise PaymentError("unexpected payment intent from the payment provider") from None


def refund_from_provider(obj: Mapping[str, Any]) -> Refund:
    """A Stripe-shaped ``refund`` object as a :class:`Refund`."""
    try:
        return Refund(
            id=_str(obj["id"]),
            payment_intent_id=_str(obj["payment_intent"]),
            amount=_int(obj["amount"]),
            status=_str(obj["status"]),
        )
    except (KeyError, TypeError):
        raise PaymentError("unexpected refund from the payment provider") from None


def payment_event_from_json(payload: bytes | str) -> PaymentEvent:
    """Read a Stripe-shaped event (``{"id", "object": "event", "type", "data": {"object"}}``).

    Call it only on a payload whose signature was verified. The payment intent id comes from a
    ``payment_intent`` object or from the ``payment_intent`` field of a charge or refund. The
    amount is the intent's ``amount``, the refund's ``amount``, and for ``charge.refunded``
    the charge's ``amount_refunded`` (the total refunded so far). :class:`ValidationError`
    (field ``payload``) for anything that is not such an event.
    """
    try:
        data = json.loads(payload)
    except ValueError:
        raise ValidationError("payload", "must be a JSON event") from None
    try:
        if data["object"] != "event":
            raise TypeError
        obj = data["data"]["object"]
        kind = obj.get("object")
        event_type = _str(data["type"])
        if kind == "payment_intent":
            intent_id: str | None = _str(obj["id"])
        else:
            intent_id = _optional_str(obj.get("payment_intent"))
        amount_field = "amount_refunded" if kind == "charge" and event_type == "charge.refunded" else "amount"
        amount = obj.get(amount_field)
        code = obj.get("currency")
        return PaymentEvent(
            id=_str(data["id"]),
            type=event_type,
            payment_intent_id=intent_id,
            amount=None if amount is None else _int(amount),
            currency=None if code is None else fittwin_currency(_str(code)),
        )
    except (KeyError, TypeError, AttributeError):
        raise ValidationError("payload", "must be a payment provider event") from None


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError
    return value


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError
    return value


__all__ = [
    "check_idempotency_key",
    "check_payment_request",
    "check_provider_id",
    "check_refund_amount",
    "fittwin_currency",
    "intent_from_provider",
    "payment_event_from_json",
    "payment_refused",
    "provider_currency",
    "refund_from_provider",
]

"""Webhook signatures: the Stripe scheme, which FitTwin also uses for its brand webhooks.

A signature header reads ``t=<unix seconds>,v1=<hex>``, where the hex string is the
HMAC-SHA256, keyed with the endpoint's secret, of ``b"<t>." + payload``. A header may carry
several ``v1`` entries (one per secret while a secret is being rolled); any one matching is
enough. The timestamp is signed too, so a receiver can refuse replays of old deliveries.

Senders call :func:`sign_payload`; receivers call :func:`verify_webhook` with the raw request
body (before any JSON parsing) and the header value::

    timestamp = verify_webhook(body, headers[SIGNATURE_HEADER], secret)

Only the standard library is used, so a receiver needs nothing but FitTwin's core.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from fittwin_core.domain.errors import AuthenticationFailed, ConfigurationError
from fittwin_core.domain.rules import integer

SIGNATURE_HEADER = "FitTwin-Signature"
"""The HTTP header carrying the signature of FitTwin's outgoing brand webhooks."""

DEFAULT_TOLERANCE = 300
"""Seconds a signed timestamp may differ from the receiver's clock (Stripe's default)."""

SCHEME = "v1"
"""The signature scheme: HMAC-SHA256 over ``<t>.<payload>``, hex encoded."""

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_positive = integer(gt=0)
_non_negative = integer(ge=0)


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """Sign ``payload`` with ``secret`` at ``timestamp`` (unix seconds): the header value to send.

    >>> sign_payload(b'{"id": "evt_1"}', "whsec_test", 1_700_000_000)[:22]
    't=1700000000,v1=a0c091'
    """
    _check_secret(secret)
    _non_negative.check("timestamp", timestamp)
    return f"t={timestamp},{SCHEME}={_signature(payload, secret, timestamp)}"


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """Split a signature header into its timestamp and its ``v1`` signatures.

    Entries of other schemes are ignored. A header without exactly one ``t``, with an entry
    that is not ``key=value``, or with no ``v1`` entry raises :class:`AuthenticationFailed`.
    """
    if not isinstance(header, str) or not header.strip():
        raise AuthenticationFailed("webhook signature header is missing")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise AuthenticationFailed("webhook signature header is malformed")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise AuthenticationFailed("webhook signature header has no valid timestamp")
    if not signatures:
        raise AuthenticationFailed(f"webhook signature header has no {SCHEME} signature")
    return int(timestamps[0]), signatures


def check_timestamp(timestamp: int, *, tolerance: int = DEFAULT_TOLERANCE, now: int | None = None) -> None:
    """Refuse a signed ``timestamp`` more than ``tolerance`` seconds away from ``now``.

    Both directions count: a delivery from too far in the past may be a replay, one from too
    far in the future comes from a clock that cannot be trusted. ``now`` defaults to the
    current time. Raises :class:`AuthenticationFailed`.
    """
    _positive.check("tolerance", tolerance)
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise AuthenticationFailed(f"webhook timestamp is outside the tolerance of {tolerance} s")


def verify_webhook(
    payload: bytes | str,
    header: str,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> int:
    """Check that ``payload`` was signed with ``secret`` recently; return the signed timestamp.

    ``payload`` is the raw request body (a ``str`` is taken as UTF-8); ``header`` the value of
    the signature header. Every ``v1`` signature in the header is compared in constant time;
    one match is enough. ``now`` (unix seconds) defaults to the current time.

    Raises :class:`AuthenticationFailed` for a malformed header, no matching signature, or a
    timestamp more than ``tolerance`` seconds away from ``now``; the message never contains
    the secret or the payload.
    """
    _check_secret(secret)
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    timestamp, signatures = parse_signature_header(header)
    expected = _signature(body, secret, timestamp).encode()
    matched = False
    for candidate in signatures:
        # Compare every entry (no early exit) so timing says nothing about which one matched.
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise AuthenticationFailed("webhook signature does not match the payload")
    check_timestamp(timestamp, tolerance=tolerance, now=now)
    return timestamp


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _check_secret(secret: str) -> None:
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError("a webhook secret must be a non-empty string")


__all__ = [
    "DEFAULT_TOLERANCE",
    "SCHEME",
    "SIGNATURE_HEADER",
    "check_timestamp",
    "parse_signature_header",
    "sign_payload",
    "verify_webhook",
]

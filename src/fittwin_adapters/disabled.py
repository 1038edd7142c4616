"""Ports left out on purpose: ``connect(url, keyring=NoKeyRing(), payments=NoPayments())``.

A FitTwin for analytics and exports decrypts nothing and takes no payment, so it needs
neither the key ring nor a payment gateway. These stand-ins make that explicit: wiring works,
and the first call that would need the missing port raises a :class:`ConfigurationError`
naming it, before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from fittwin_core.domain.errors import ConfigurationError
from fittwin_core.ports import PaymentEvent, PaymentIntent, Refund


class NoKeyRing:
    """A key ring that holds no key: for a FitTwin that seals and unseals nothing (analytics,
    exports). Every use raises :class:`ConfigurationError`."""

    def _refuse(self) -> NoReturn:
        raise ConfigurationError(
            "this FitTwin was connected without a key ring (keyring=NoKeyRing()): personal data "
            "can be neither sealed nor read; set FITTWIN_KEYRING or pass keyring=LocalKeyRing..."
        )

    @property
    def current_kek_id(self) -> str:
        """Refused: there is no key-encryption key."""
        self._refuse()

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Refused: there is no key-encryption key."""
        self._refuse()

    def unwrap(self, kek_id: str, blob: bytes) -> bytes:
        """Refused: there is no key-encryption key."""
        self._refuse()

    def __repr__(self) -> str:
        return "NoKeyRing()"


class NoPayments:
    """A payment gateway that takes no payment: for a FitTwin that places, refunds and
    cancels nothing (analytics, exports, maintenance jobs). Every use raises
    :class:`ConfigurationError`."""

    def _refuse(self) -> NoReturn:
        raise ConfigurationError(
            "this FitTwin was connected without a payment gateway (payments=NoPayments()): "
            "pass payments=StripePayments(...) to take payments"
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
        """Refused: no payment gateway."""
        self._refuse()

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        """Refused: no payment gateway."""
        self._refuse()

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentIntent:
        """Refused: no payment gateway."""
        self._refuse()

    def refund(self, payment_intent_id: str, *, amount: int, idempotency_key: str) -> Refund:
        """Refused: no payment gateway."""
        self._refuse()

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Refused: no payment gateway."""
        self._refuse()

    def __repr__(self) -> str:
        return "NoPayments()"


__all__ = ["NoKeyRing", "NoPayments"]

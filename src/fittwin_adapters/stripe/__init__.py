"""Stripe adapters: ``StripePayments``, the production payment gateway (needs ``fittwin[stripe]``)."""

from fittwin_adapters.stripe.payments import StripePayments

__all__ = ["StripePayments"]

"""The default pricing rules: a flat tax rate, a flat shipping fee, optional free shipping and a
percentage discount. Hosts with real tax engines implement :class:`~fittwin_core.ports.Pricing`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from fittwin_core.domain.money import Rounding, parse_percent, percent_of
from fittwin_core.ports import PriceLine, Quote


def _percent(value: object) -> Decimal:
    return parse_percent(value, "percent")


@attrs.frozen(kw_only=True)
class FlatRatePricing:
    """``discounts = discount_percent × subtotal``; ``tax = tax_percent × (subtotal − discounts)``;
    shipping is ``shipping_cents`` unless the subtotal reaches ``free_shipping_from``. All
    amounts are rounded half-even to whole minor units."""

    tax_percent: Decimal = attrs.field(default=Decimal(0), converter=_percent)
    shipping_cents: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    free_shipping_from: int | None = None
    discount_percent: Decimal = attrs.field(default=Decimal(0), converter=_percent)

    def quote(
        self, *, lines: Sequence[PriceLine], currency: str, subtotal: int, shipping_country: str | None
    ) -> Quote:
        """Tax, shipping and discount for an order."""
        discounts = percent_of(subtotal, self.discount_percent, Rounding.HALF_EVEN)
        tax = percent_of(subtotal - discounts, self.tax_percent, Rounding.HALF_EVEN)
        free = self.free_shipping_from is not None and subtotal >= self.free_shipping_from
        shipping = 0 if free or not lines else self.shipping_cents
        return Quote(tax=tax, shipping=shipping, discounts=discounts)


__all__ = ["FlatRatePricing"]

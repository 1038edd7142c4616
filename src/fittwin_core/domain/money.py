"""Money: integer minor units with an ISO-4217 currency, percentages as ``Decimal``.

No floats touch money. Percentages are applied with an explicit rounding mode (recorded in
policy snapshots), and every split conserves its total exactly (largest remainder).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError

# ISO 4217 active codes with their minor-unit exponents (codes without minor units, such as
# precious metals and testing codes, are not money FitTwin handles).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)

MINOR_UNITS: dict[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
}
"""ISO-4217 code → number of minor-unit digits (``JPY`` → 0, ``EUR`` → 2, ``KWD`` → 3)."""

CURRENCIES: frozenset[str] = frozenset(MINOR_UNITS)

MAX_CENTS = 2**63 - 1
"""Amounts are stored as BIGINT."""


def _currency(field: str, value: Any) -> None:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise ValidationError(field, "must be an upper-case ISO-4217 currency code")


currency = rules.Rule(_currency)
"""attrs validator: an ISO-4217 code FitTwin can charge in (``CHAR(3)``)."""

cents = rules.integer(ge=0, le=MAX_CENTS)
"""attrs validator: a non-negative amount in minor units that fits a BIGINT."""

signed_cents = rules.integer(ge=-MAX_CENTS, le=MAX_CENTS)
"""attrs validator: an amount in minor units that may be negative (clawbacks)."""


class Rounding(StrEnum):
    """How a percentage of an amount is rounded to whole minor units."""

    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    DOWN = "down"
    UP = "up"

    @property
    def decimal_mode(self) -> str:
        """The matching :mod:`decimal` rounding constant."""
        return _DECIMAL_MODES[self]


_DECIMAL_MODES = {
    Rounding.HALF_EVEN: ROUND_HALF_EVEN,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.DOWN: ROUND_DOWN,
    Rounding.UP: ROUND_UP,
}


def parse_percent(value: object, field: str = "percent") -> Decimal:
    """A percentage between 0 and 100 as a ``Decimal`` (from a ``Decimal``, ``int`` or string;
    floats are refused because they cannot say 12.3 exactly)."""
    if isinstance(value, bool | float):
        raise ValidationError(field, "must be a Decimal, an integer or a decimal string")
    try:
        percent = Decimal(value) if isinstance(value, int | str) else value
    except InvalidOperation:
        raise ValidationError(field, "must be a decimal number") from None
    if not isinstance(percent, Decimal) or not percent.is_finite():
        raise ValidationError(field, "must be a decimal number")
    if not Decimal(0) <= percent <= Decimal(100):
        raise ValidationError(field, "must be between 0 and 100")
    return percent


def percent_of(amount: int, percent: Decimal, rounding: Rounding) -> int:
    """``percent``% of ``amount`` minor units, rounded to a whole minor unit by ``rounding``.

    >>> percent_of(1050, Decimal("5"), Rounding.HALF_EVEN)  # 52.5 -> 52
    52
    >>> percent_of(1050, Decimal("5"), Rounding.HALF_UP)
    53
    """
    exact = Decimal(amount) * percent / Decimal(100)
    return int(exact.quantize(Decimal(1), rounding=rounding.decimal_mode))


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so the parts add up to ``total`` exactly.

    Largest-remainder method: each part gets the floor of its exact share, and the units left
    over go to the largest remainders (ties to the earlier part). All-zero weights split evenly.

    >>> allocate(100, [1, 1, 1])
    [34, 33, 33]
    """
    if not weights:
        if total:
            raise ValidationError("weights", "must not be empty when there is an amount to split")
        return []
    if any(w < 0 for w in weights):
        raise ValidationError("weights", "must not be negative")
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    effective = list(weights) if sum(weights) else [1] * len(weights)
    weight_sum = sum(effective)
    parts = [total * w // weight_sum for w in effective]
    remainders = [total * w % weight_sum for w in effective]
    leftover = total - sum(parts)
    for index in sorted(range(len(parts)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[index] += 1
    return parts


@attrs.frozen
class Money:
    """An amount in minor units of an ISO-4217 currency (``Money(1999, "EUR")`` is €19.99)."""

    amount: int = attrs.field(validator=signed_cents)
    currency: str = attrs.field(validator=currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, factor: int) -> Money:
        """This amount ``factor`` times."""
        return Money(self.amount * factor, self.currency)

    def percent(self, percent: Decimal, rounding: Rounding = Rounding.HALF_EVEN) -> Money:
        """``percent``% of this amount, rounded to a whole minor unit."""
        return Money(percent_of(self.amount, percent, rounding), self.currency)

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        """Split into parts proportional to ``weights`` that add up exactly (see :func:`allocate`)."""
        return [Money(part, self.currency) for part in allocate(self.amount, weights)]

    def format(self) -> str:
        """A human-readable amount such as ``"19.99 EUR"`` or ``"1050 JPY"``."""
        digits = MINOR_UNITS[self.currency]
        value = Decimal(self.amount).scaleb(-digits)
        return f"{value:.{digits}f} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationError("currency", "amounts in different currencies cannot be combined")


__all__ = [
    "CURRENCIES",
    "MAX_CENTS",
    "MINOR_UNITS",
    "Money",
    "Rounding",
    "allocate",
    "cents",
    "currency",
    "parse_percent",
    "percent_of",
    "signed_cents",
]

"""The reward ledger: what referrers earn, held until returns can no longer happen."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.orders import rid


class RewardStatus(StrEnum):
    """``reward_ledger_entries.status``: ``pending_hold → payable → paid`` or ``pending_hold → cancelled``."""

    PENDING_HOLD = "pending_hold"
    PAYABLE = "payable"
    PAID = "paid"
    CANCELLED = "cancelled"


REWARD_TRANSITIONS: dict[RewardStatus, frozenset[RewardStatus]] = {
    RewardStatus.PENDING_HOLD: frozenset({RewardStatus.PAYABLE, RewardStatus.CANCELLED}),
    RewardStatus.PAYABLE: frozenset({RewardStatus.PAID}),
    RewardStatus.PAID: frozenset(),
    RewardStatus.CANCELLED: frozenset(),
}
"""The only status moves a ledger entry may make; paid and cancelled entries never change."""


@attrs.frozen(kw_only=True)
class RewardLedgerEntry:
    """One ledger line (``reward_ledger_entries``): a reward for an order (positive) or a
    clawback after a return that came after payout (negative)."""

    id: UUID = attrs.field(validator=rules.uuid)
    rid: str = attrs.field(validator=rid)
    order_id: UUID = attrs.field(validator=rules.uuid)
    amount_cents: int = attrs.field(validator=money.signed_cents)
    currency: str = attrs.field(validator=money.currency)
    status: RewardStatus = attrs.field(
        default=RewardStatus.PENDING_HOLD, validator=rules.member_of(RewardStatus)
    )
    hold_until: date | None = attrs.field(default=None, validator=rules.optional(rules.calendar_date))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)

    @property
    def amount(self) -> money.Money:
        """The amount as :class:`~fittwin_core.domain.money.Money`."""
        return money.Money(self.amount_cents, self.currency)


__all__ = ["REWARD_TRANSITIONS", "RewardLedgerEntry", "RewardStatus"]

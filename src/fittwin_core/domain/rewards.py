"""The reward ledger: what referrers earn, held until returns can no longer happen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.errors import InvalidTransition
from fittwin_core.domain.orders import rid
from fittwin_core.domain.referrals import ReferralPolicy


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


REINSTATEMENT = (RewardStatus.CANCELLED, RewardStatus.PENDING_HOLD)
"""The one move out of ``cancelled``: a platform admin reinstating an entry that fraud checks
had cancelled. It is not part of the normal flow and never applies to other entries."""


def reward_amount(subtotal_cents: int, policy: ReferralPolicy) -> int:
    """The reward for an order: the policy's percent of its subtotal, rounded by its mode."""
    return money.percent_of(subtotal_cents, policy.reward_percent, policy.rounding)


def hold_until(delivered_at: datetime, hold_days: int) -> date:
    """The day a reward becomes payable: the delivery date (UTC) plus the hold."""
    return delivered_at.astimezone(UTC).date() + timedelta(days=hold_days)


def move(entry: RewardLedgerEntry, target: RewardStatus, *, at: datetime) -> RewardLedgerEntry:
    """``entry`` in ``target`` status; :class:`InvalidTransition` for any move the table does not
    allow (paid and cancelled entries never change)."""
    if target == entry.status:
        return entry
    if target not in REWARD_TRANSITIONS[entry.status]:
        raise InvalidTransition("reward ledger entry", entry.status, target)
    if target == RewardStatus.PAYABLE and (entry.hold_until is None or entry.hold_until > at.date()):
        raise InvalidTransition("reward ledger entry", entry.status, target, "its hold has not ended")
    return attrs.evolve(entry, status=target, updated_at=at)


def clawback_cents(entries: Iterable[RewardLedgerEntry]) -> int:
    """The (negative) amount that brings an order's paid-out or payable rewards back to zero;
    0 when nothing is owed back. Cancelled and still-held entries do not count: they are
    cancelled instead. Never claws back more than was earned."""
    outstanding = sum(
        e.amount_cents for e in entries if e.status in (RewardStatus.PAYABLE, RewardStatus.PAID)
    )
    return -outstanding if outstanding > 0 else 0


__all__ = [
    "REINSTATEMENT",
    "REWARD_TRANSITIONS",
    "RewardLedgerEntry",
    "RewardStatus",
    "clawback_cents",
    "hold_until",
    "move",
    "reward_amount",
]

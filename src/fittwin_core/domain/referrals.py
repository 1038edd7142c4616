"""Referral links, their policy snapshot, and what happens to them (clicks, conversions, fraud flags)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.money import Rounding
from fittwin_core.domain.orders import rid
from fittwin_core.domain.rules import JsonMap


def _percent(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return money.parse_percent(value, "reward_percent")
        except ValidationError:
            return value
    return value


def _percent_rule(field: str, value: Any) -> None:
    money.parse_percent(value, field)


@attrs.frozen(kw_only=True)
class ReferralPolicy:
    """The referral rules in force when a link was created (``referrals.policy_snapshot``).

    Frozen into every referral, so a later policy change never alters existing links.
    ``reward_percent`` is stored as a decimal string; amounts are rounded by ``rounding``.
    """

    reward_percent: Decimal = attrs.field(converter=_percent, validator=rules.Rule(_percent_rule))
    hold_days: int = attrs.field(default=30, validator=rules.integer(ge=0, le=365))
    attribution_window_days: int = attrs.field(default=30, validator=rules.integer(ge=1, le=365))
    rounding: Rounding = attrs.field(default=Rounding.HALF_EVEN, validator=rules.member_of(Rounding))
    click_dedup_seconds: int = attrs.field(default=3600, validator=rules.integer(ge=0, le=7 * 86400))
    velocity_limit: int = attrs.field(default=3, validator=rules.integer(ge=1, le=10000))
    velocity_window_hours: int = attrs.field(default=24, validator=rules.integer(ge=1, le=24 * 30))


@attrs.frozen(kw_only=True)
class Referral:
    """A share link (``referrals``), keyed by its rid."""

    rid: str = attrs.field(validator=rid)
    referrer_user_id: UUID = attrs.field(validator=rules.uuid)
    target_product_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    share_url: str = attrs.field(validator=rules.text(max_len=2048))
    policy_snapshot: ReferralPolicy = attrs.field(validator=rules.instance_of(ReferralPolicy))
    expires_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)

    def is_expired(self, at: datetime) -> bool:
        """Whether the link no longer counts at ``at``."""
        return self.expires_at is not None and at >= self.expires_at


class ReferralEventType(StrEnum):
    """``referral_events.event_type``."""

    CLICK = "click"
    CONVERSION = "conversion"
    FRAUD_FLAG = "fraud_flag"


_hash = rules.optional(
    rules.text(max_len=128, pattern=r"[0-9a-f]{16,128}", rule="must be a hex HMAC, never a raw value")
)


@attrs.frozen(kw_only=True)
class ReferralEvent:
    """Something that happened to a referral (``referral_events``). Only keyed hashes of the
    clicker's ip and device fingerprint are kept."""

    id: UUID = attrs.field(validator=rules.uuid)
    rid: str = attrs.field(validator=rid)
    event_type: ReferralEventType = attrs.field(validator=rules.member_of(ReferralEventType))
    order_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    device_fingerprint: str | None = attrs.field(default=None, validator=_hash)
    ip_hash: str | None = attrs.field(default=None, validator=_hash)
    metadata: JsonMap = attrs.field(
        factory=rules.JsonMap, converter=rules.to_json_map, validator=rules.json_object
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = ["Referral", "ReferralEvent", "ReferralEventType", "ReferralPolicy"]

"""Referral links, their policy snapshot, and what happens to them (clicks, conversions, fraud flags)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import money, rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.money import Rounding
from fittwin_core.domain.orders import rid
from fittwin_core.domain.rules import JsonMap, redacted


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
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)
    """When the link last changed; ``created_at`` when left out."""

    @updated_at.default
    def _updated_at_default(self) -> datetime:
        return self.created_at

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
    device_fingerprint: str | None = attrs.field(repr=redacted, default=None, validator=_hash)
    ip_hash: str | None = attrs.field(repr=redacted, default=None, validator=_hash)
    metadata: JsonMap = attrs.field(
        repr=redacted, factory=rules.JsonMap, converter=rules.to_json_map, validator=rules.json_object
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)


# ----------------------------------------------------------------------------- attribution


class Verdict(StrEnum):
    """What a paid order with a rid earns its referrer."""

    NONE = "none"
    """No attribution: no click inside the window, or the link had expired."""
    CONVERSION = "conversion"
    """A conversion: a ``pending_hold`` reward."""
    VELOCITY = "velocity"
    """Too many conversions from one ip or device: flagged, the reward created ``cancelled``."""
    SELF_REFERRAL = "self_referral"
    """The buyer is the referrer (or pays like them): flagged, no reward."""


@attrs.frozen(kw_only=True)
class Attribution:
    """The outcome of :func:`attribute` for one order."""

    verdict: Verdict
    click: ReferralEvent | None = None
    """The click that wins (the last one inside the window)."""
    reason: str = ""
    score: int = 0
    """Fraud score 0–100 (100: certain)."""
    recent_conversions: int = 0


def attribute(
    *,
    referral: Referral,
    buyer_id: UUID,
    buyer_payment_token: str | None,
    referrer_payment_tokens: frozenset[str],
    placed_at: datetime,
    paid_at: datetime,
    clicks: Sequence[ReferralEvent],
    conversions: Sequence[ReferralEvent],
) -> Attribution:
    """Decide what an order paid at ``paid_at`` through ``referral`` earns.

    The rid must be unexpired when the order is paid and have a click inside the attribution
    window before the order was placed; the last such click wins. Buying through one's own link
    (or with one of the referrer's payment tokens) is a self-referral. More than
    ``velocity_limit`` conversions on this rid from the winning click's ip or device within
    ``velocity_window_hours`` (counting this one) is flagged as velocity fraud. ``conversions``
    are the rid's earlier conversion and fraud-flag events.
    """
    policy = referral.policy_snapshot
    if referral.is_expired(paid_at):
        return Attribution(verdict=Verdict.NONE, reason="the referral link had expired")
    window_start = placed_at - timedelta(days=policy.attribution_window_days)
    eligible = [
        c
        for c in clicks
        if c.event_type == ReferralEventType.CLICK and window_start <= c.created_at <= placed_at
    ]
    if not eligible:
        return Attribution(verdict=Verdict.NONE, reason="no click inside the attribution window")
    click = max(eligible, key=lambda c: (c.created_at, c.id))
    if buyer_id == referral.referrer_user_id:
        return Attribution(
            verdict=Verdict.SELF_REFERRAL, click=click, reason="the buyer is the referrer", score=100
        )
    if buyer_payment_token is not None and buyer_payment_token in referrer_payment_tokens:
        return Attribution(
            verdict=Verdict.SELF_REFERRAL,
            click=click,
            reason="the buyer pays with the referrer's card",
            score=95,
        )
    since = paid_at - timedelta(hours=policy.velocity_window_hours)
    recent = sum(
        1
        for c in conversions
        if c.event_type in (ReferralEventType.CONVERSION, ReferralEventType.FRAUD_FLAG)
        and c.created_at >= since
        and (
            (click.ip_hash is not None and c.ip_hash == click.ip_hash)
            or (click.device_fingerprint is not None and c.device_fingerprint == click.device_fingerprint)
        )
    )
    if recent + 1 > policy.velocity_limit:
        score = min(100, 50 + 10 * (recent + 1 - policy.velocity_limit))
        return Attribution(
            verdict=Verdict.VELOCITY,
            click=click,
            reason=(
                f"{recent + 1} conversions from one ip or device within {policy.velocity_window_hours} h "
                f"(limit {policy.velocity_limit})"
            ),
            score=score,
            recent_conversions=recent,
        )
    return Attribution(verdict=Verdict.CONVERSION, click=click, recent_conversions=recent)


__all__ = [
    "Attribution",
    "Referral",
    "ReferralEvent",
    "ReferralEventType",
    "ReferralPolicy",
    "Verdict",
    "attribute",
]

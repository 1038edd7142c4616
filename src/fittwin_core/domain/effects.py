"""Effects as data: the rows of the outbox (``outbox``, an addition to the data model).

A state change that must reach the outside world (refund or cancel a payment at the provider,
send a brand webhook, notify a shopper) records an :class:`OutboxEffect` in the same
transaction as the change. A dispatcher runs pending effects after commit, with the effect's
idempotency key, records every attempt, retries with backoff and parks an effect that keeps
failing (``dead``) where an operator can see and retry it. See ``docs/effects.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.rules import JsonMap


class EffectKind(StrEnum):
    """What an effect does once its transaction committed."""

    REFUND = "refund"
    CANCEL_PAYMENT = "cancel_payment"
    BRAND_WEBHOOK = "brand_webhook"
    NOTIFY_SHOPPER = "notify_shopper"
    DELETE_OBJECT = "delete_object"


class OutboxStatus(StrEnum):
    """``outbox.status``: ``pending`` until delivered; ``dead`` once it failed too often."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@attrs.frozen(kw_only=True)
class OutboxAttempt:
    """One delivery attempt: when, whether it worked, and what went wrong (no payload, no PII)."""

    at: datetime = attrs.field(validator=rules.aware_datetime)
    ok: bool = attrs.field(validator=rules.boolean)
    detail: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=500)))


@attrs.frozen(kw_only=True)
class OutboxEffect:
    """A row of ``outbox``: one effect of a committed change, and its delivery record.

    ``idempotency_key`` is unique and is what the provider (or the brand, as the webhook's
    event id) sees on every attempt, so a repeated delivery is recognised as one.
    ``claimed_by``/``lease_until`` mark a dispatcher working on it; an expired lease makes it
    claimable again (the dispatcher died mid-delivery).
    """

    id: UUID = attrs.field(validator=rules.uuid)
    kind: EffectKind = attrs.field(validator=rules.member_of(EffectKind))
    order_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    """The order the effect is about, when there is one (no foreign key: effects outlive purges)."""
    payload: JsonMap = attrs.field(converter=rules.to_json_map, validator=rules.json_object)
    idempotency_key: str = attrs.field(validator=rules.text(max_len=255))
    status: OutboxStatus = attrs.field(default=OutboxStatus.PENDING, validator=rules.member_of(OutboxStatus))
    attempts: int = attrs.field(default=0, validator=rules.integer(ge=0, le=1000))
    available_at: datetime = attrs.field(validator=rules.aware_datetime)
    """Not claimed before this time (the backoff after a failed attempt)."""
    claimed_by: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    lease_until: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    history: tuple[OutboxAttempt, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.sequence_of(rules.instance_of(OutboxAttempt))
    )
    """Every attempt, oldest first."""
    outcome: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=500)))
    """How it was delivered (``"refunded re_…"``, ``"HTTP 200"``, ``"out of band"``) or why it died."""
    delivered_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


def backoff(attempts: int, *, base_seconds: float, cap_seconds: float) -> timedelta:
    """The wait before attempt ``attempts + 1``: ``base × 2^(attempts-1)``, at most ``cap``.

    >>> [backoff(n, base_seconds=1, cap_seconds=10).seconds for n in (1, 2, 3, 4, 5)]
    [1, 2, 4, 8, 10]
    """
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


__all__ = ["EffectKind", "OutboxAttempt", "OutboxEffect", "OutboxStatus", "backoff"]

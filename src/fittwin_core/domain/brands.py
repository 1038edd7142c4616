"""Brands, their onboarding, their users and roles, and their webhook subscriptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import attrs

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import redacted
from fittwin_core.domain.users import email, sealed_field


class BrandStatus(StrEnum):
    """``brands.onboarding_status``: ``invited → kyc_pending → active ⇄ suspended``."""

    INVITED = "invited"
    KYC_PENDING = "kyc_pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


BRAND_TRANSITIONS: dict[BrandStatus, frozenset[BrandStatus]] = {
    BrandStatus.INVITED: frozenset({BrandStatus.KYC_PENDING}),
    BrandStatus.KYC_PENDING: frozenset({BrandStatus.ACTIVE}),
    BrandStatus.ACTIVE: frozenset({BrandStatus.SUSPENDED}),
    BrandStatus.SUSPENDED: frozenset({BrandStatus.ACTIVE}),
}
"""Allowed onboarding moves: the one table that decides them."""


class BrandRole(StrEnum):
    """``brand_users.role``: ``owner ⊃ manager ⊃ analyst`` (analyst is read-only)."""

    OWNER = "owner"
    MANAGER = "manager"
    ANALYST = "analyst"

    @property
    def rank(self) -> int:
        """Higher ranks include every permission of lower ones."""
        return _ROLE_RANK[self]

    def includes(self, other: BrandRole) -> bool:
        """Whether this role has every permission of ``other``."""
        return self.rank >= other.rank


_ROLE_RANK = {BrandRole.ANALYST: 1, BrandRole.MANAGER: 2, BrandRole.OWNER: 3}


class BrandUserStatus(StrEnum):
    """``brand_users.status``: ``invited → active → revoked`` (or ``invited → revoked``)."""

    INVITED = "invited"
    ACTIVE = "active"
    REVOKED = "revoked"


@attrs.frozen(kw_only=True)
class PrimaryContact:
    """A brand's business contact (``brands.primary_contact``); kept out of reprs and audit diffs."""

    email: str = attrs.field(validator=email, repr=redacted)
    name: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=200)), repr=redacted
    )
    phone: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=40)), repr=redacted
    )
    address: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=500)), repr=redacted
    )


WEBHOOK_EVENTS = frozenset({"order.sent_to_brand", "order.return_requested", "variant.low_stock"})
"""Events a brand can subscribe to."""


def _events(field: str, value: object) -> None:
    rules.sequence_of(rules.text(max_len=64)).check(field, value)
    assert isinstance(value, tuple)
    unknown = sorted(set(value) - WEBHOOK_EVENTS)
    if unknown:
        raise ValidationError(field, f"unknown events: {', '.join(unknown)}")
    if not value:
        raise ValidationError(field, "must name at least one event")


@attrs.frozen(kw_only=True)
class WebhookSubscription:
    """Where a brand wants events delivered. ``secret`` is sealed ciphertext of the signing secret."""

    id: UUID = attrs.field(validator=rules.uuid)
    url: str = attrs.field(
        validator=rules.text(max_len=2048, pattern=r"https?://\S+", rule="must be an http(s) URL")
    )
    events: tuple[str, ...] = attrs.field(converter=rules.to_tuple, validator=rules.Rule(_events))
    secret: str = sealed_field()
    active: bool = attrs.field(default=True, validator=rules.boolean)


@attrs.frozen(kw_only=True)
class BrandWebhooks:
    """``brands.webhooks``: the brand's subscriptions."""

    subscriptions: tuple[WebhookSubscription, ...] = attrs.field(
        default=(),
        converter=rules.to_tuple,
        validator=rules.sequence_of(rules.instance_of(WebhookSubscription)),
    )


@attrs.frozen(kw_only=True)
class Brand:
    """A brand selling through FitTwin (``brands``); names are unique."""

    id: UUID = attrs.field(validator=rules.uuid)
    name: str = attrs.field(validator=rules.text(max_len=200))
    onboarding_status: BrandStatus = attrs.field(
        default=BrandStatus.INVITED, validator=rules.member_of(BrandStatus)
    )
    primary_contact: PrimaryContact = attrs.field(repr=redacted, validator=rules.instance_of(PrimaryContact))
    webhooks: BrandWebhooks | None = attrs.field(
        default=None, validator=rules.optional(rules.instance_of(BrandWebhooks)), repr=redacted
    )
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


@attrs.frozen(kw_only=True)
class BrandUser:
    """A person acting for a brand (``brand_users``). Email is unique per brand among active users."""

    id: UUID = attrs.field(validator=rules.uuid)
    brand_id: UUID = attrs.field(validator=rules.uuid)
    email: str = attrs.field(validator=email, repr=redacted)
    role: BrandRole = attrs.field(validator=rules.member_of(BrandRole))
    status: BrandUserStatus = attrs.field(
        default=BrandUserStatus.INVITED,
        validator=rules.member_of(BrandUserStatus),
    )
    invite_token: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid), repr=redacted)
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = [
    "BRAND_TRANSITIONS",
    "WEBHOOK_EVENTS",
    "Brand",
    "BrandRole",
    "BrandStatus",
    "BrandUser",
    "BrandUserStatus",
    "BrandWebhooks",
    "PrimaryContact",
    "WebhookSubscription",
]

"""Brands: onboarding (``invited → kyc_pending → active ⇄ suspended``), their users and roles,
and signed webhooks about orders and stock.

Every call takes ``actor=``: platform admins onboard brands; a brand's own users act within
their role (owner ⊃ manager ⊃ analyst, analysts read only) and never on another brand.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    AuthenticationFailed,
    Brand,
    BrandRole,
    BrandStatus,
    BrandUser,
    BrandUserStatus,
    BrandWebhooks,
    Conflict,
    EffectKind,
    InvalidTransition,
    PrimaryContact,
    ValidationError,
    WebhookSubscription,
)
from fittwin_core.domain.brands import BRAND_TRANSITIONS, WEBHOOK_EVENTS
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.domain.rules import parse_enum, redacted
from fittwin_core.domain.users import normalize_email
from fittwin_core.outbox import Recorded
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork
from fittwin_core.schema import WEBHOOK_SECRET
from fittwin_core.services.base import Context, Service, UnitOfWorkRunner, as_list, as_uuid, coerce, require
from fittwin_core.services.effects import Effects
from fittwin_core.services.permissions import allowed, authorize
from fittwin_core.services.vault import Vault


@attrs.frozen
class WebhookSecret:
    """A new subscription and its signing secret, shown once (store it on the receiver)."""

    subscription_id: UUID
    secret: str = attrs.field(repr=redacted)


@attrs.frozen
class BrandEvent:
    """Something a brand may subscribe to, recorded in the outbox and sent after commit.

    ``key`` names this occurrence (one webhook per subscription and key, however often the
    recording transaction is retried)."""

    brand_id: UUID
    event: str
    data: Mapping[str, Any]
    key: str
    order_id: UUID | None = None


class Brands(Service):
    """``ft.brands``: onboarding, brand users and roles, webhook subscriptions."""

    def __init__(
        self, ctx: Context, runner: UnitOfWorkRunner | None = None, effects: Effects | None = None
    ) -> None:
        super().__init__(ctx, runner)
        self.vault = Vault(ctx.cipher, ctx.clock)
        self.effects = effects or Effects(ctx, runner)

    # ------------------------------------------------------------------ onboarding

    def create(
        self,
        name: str,
        primary_contact: PrimaryContact | Mapping[str, Any],
        *,
        webhooks: Iterable[Mapping[str, Any]] | None = None,
        actor: Actor,
    ) -> Brand:
        """Onboard a brand (platform admins only): it starts ``invited``.

        ``webhooks`` items are ``{"url": ..., "events": [...], "secret": ...}``; the secret is
        sealed before it is stored.
        """
        authorize(actor, "brands.create")
        require(isinstance(name, str) and bool(name.strip()), "name", "must be a non-empty string")
        contact = coerce(_normalized_contact(primary_contact), PrimaryContact, "primary_contact")
        specs = [
            _subscription_spec(spec, f"webhooks[{n}]")
            for n, spec in enumerate(as_list(webhooks, "webhooks") if webhooks is not None else [])
        ]

        def work(uow: UnitOfWork) -> Brand:
            if uow.brands.where(name=name.strip(), limit=1):
                raise Conflict("a brand with this name already exists")
            now = self.now()
            brand_id = self._ctx.ids.new_id()
            subscriptions = tuple(
                self._subscription(uow, brand_id, url, events, secret) for url, events, secret in specs
            )
            brand = Brand(
                id=brand_id,
                name=name.strip(),
                primary_contact=contact,
                webhooks=BrandWebhooks(subscriptions=subscriptions) if subscriptions else None,
                created_at=now,
                updated_at=now,
            )
            uow.brands.add(brand)
            return brand

        return self.transaction(work, actor=actor)

    def get(self, brand_id: UUID, *, actor: Actor) -> Brand:
        """The brand (:class:`NotFound` if there is none), for its users and staff."""
        bid = as_uuid(brand_id, "brand_id")

        def work(uow: UnitOfWork) -> Brand:
            authorize(actor, "brands.read", uow=uow, brand_ids={bid})
            return uow.brands.get(bid)

        return self.read(work, actor=actor)

    def submit_kyc(self, brand_id: UUID, *, actor: Actor) -> Brand:
        """``invited → kyc_pending``: the brand's owner (or staff) submitted KYC documents."""
        return self._move(brand_id, BrandStatus.KYC_PENDING, actor, "brands.submit_kyc")

    def activate(self, brand_id: UUID, *, actor: Actor) -> Brand:
        """``kyc_pending → active`` or ``suspended → active`` (platform admins only)."""
        return self._move(brand_id, BrandStatus.ACTIVE, actor, "brands.activate")

    def suspend(self, brand_id: UUID, *, actor: Actor) -> Brand:
        """``active → suspended``: its products can no longer be ordered (platform admins only)."""
        return self._move(brand_id, BrandStatus.SUSPENDED, actor, "brands.suspend")

    def _move(self, brand_id: UUID, target: BrandStatus, actor: Actor, action: str) -> Brand:
        bid = as_uuid(brand_id, "brand_id")

        def work(uow: UnitOfWork) -> Brand:
            authorize(actor, action, uow=uow, brand_ids={bid})
            brand = uow.brands.get(bid)
            if brand.onboarding_status == target:
                return brand
            if target not in BRAND_TRANSITIONS[brand.onboarding_status]:
                raise InvalidTransition("brand", brand.onboarding_status, target)
            moved = attrs.evolve(brand, onboarding_status=target, updated_at=self.now())
            uow.brands.update(moved, expected={"onboarding_status": brand.onboarding_status})
            return moved

        return self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ brand users

    def invite_user(self, brand_id: UUID, email: str, role: BrandRole | str, *, actor: Actor) -> BrandUser:
        """Invite someone to act for the brand; the returned user carries the ``invite_token``
        to send them. Managers may invite managers and analysts; only owners (and staff)
        may invite owners."""
        bid = as_uuid(brand_id, "brand_id")
        address = normalize_email(email)
        wanted = parse_enum(BrandRole, role, "role")

        def work(uow: UnitOfWork) -> BrandUser:
            authorize(actor, f"brands.invite_{wanted.value}", uow=uow, brand_ids={bid})
            uow.brands.get(bid)
            for existing in uow.brand_users.where(brand_id=bid, email=address):
                if existing.status != BrandUserStatus.REVOKED:
                    raise Conflict("this email already has a pending or active membership of the brand")
            now = self.now()
            member = BrandUser(
                id=self._ctx.ids.new_id(),
                brand_id=bid,
                email=address,
                role=wanted,
                invite_token=self._ctx.ids.new_token(),
                created_at=now,
                updated_at=now,
            )
            uow.brand_users.add(member)
            return member

        return self.transaction(work, actor=actor)

    def accept_invite(self, token: UUID | str) -> BrandUser:
        """Turn an invitation into an active membership; the token stops working.

        :class:`AuthenticationFailed` for an unknown, used or revoked token.
        """
        try:
            value = as_uuid(token, "token")
        except Exception:
            raise AuthenticationFailed("invalid invitation token") from None

        def work(uow: UnitOfWork) -> BrandUser:
            found = uow.brand_users.where(invite_token=value, status=BrandUserStatus.INVITED)
            if not found:
                raise AuthenticationFailed("invalid invitation token")
            member = found[0]
            uow.act_as(Actor.brand_user(member.id))  # the token proves who is accepting
            active = attrs.evolve(
                member, status=BrandUserStatus.ACTIVE, invite_token=None, updated_at=self.now()
            )
            uow.brand_users.update(active, expected={"status": BrandUserStatus.INVITED})
            return active

        return self.transaction(work, actor=Actor.anonymous())

    def revoke_user(self, brand_user_id: UUID, *, actor: Actor) -> BrandUser:
        """Revoke a membership. Owners revoke anyone, managers revoke managers and analysts;
        the brand's last active owner cannot be revoked, even by owners revoking each other at
        the same moment (the brand is locked while the owners are counted)."""
        member_id = as_uuid(brand_user_id, "brand_user_id")

        def work(uow: UnitOfWork) -> BrandUser:
            # The brand's row is the per-brand lock: revocations of one brand's users run one
            # at a time, so two owners revoking each other cannot both see another owner left.
            uow.brands.lock(uow.brand_users.get(member_id).brand_id)
            member = uow.brand_users.lock(member_id)
            authorize(actor, f"brands.revoke_{member.role.value}", uow=uow, brand_ids={member.brand_id})
            if member.status == BrandUserStatus.REVOKED:
                return member
            if member.role == BrandRole.OWNER and member.status == BrandUserStatus.ACTIVE:
                owners = uow.brand_users.count(
                    brand_id=member.brand_id, role=BrandRole.OWNER, status=BrandUserStatus.ACTIVE
                )
                if owners <= 1:
                    raise Conflict("the brand's last active owner cannot be revoked")
            revoked = attrs.evolve(
                member, status=BrandUserStatus.REVOKED, invite_token=None, updated_at=self.now()
            )
            uow.brand_users.update(revoked)
            return revoked

        return self.transaction(work, actor=actor)

    def users(
        self, brand_id: UUID, *, actor: Actor, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Page[BrandUser]:
        """A page of the brand's users, oldest first (any role of that brand may read them).
        Pending invitation tokens are shown to staff only (an invitation's token is handed out
        once, by :meth:`invite_user`)."""
        bid = as_uuid(brand_id, "brand_id")
        window = PageRequest.of(limit, after)

        def work(uow: UnitOfWork) -> Page[BrandUser]:
            authorize(actor, "brands.list_users", uow=uow, brand_ids={bid})
            members = window.read(uow.brand_users, brand_id=bid)
            if allowed(actor, "brands.read_invite_tokens"):
                return members
            hidden = tuple(attrs.evolve(m, invite_token=None) for m in members.items)
            return attrs.evolve(members, items=hidden)

        return self.read(work, actor=actor)

    # ------------------------------------------------------------------ webhooks

    def add_webhook(self, brand_id: UUID, url: str, events: Sequence[str], *, actor: Actor) -> WebhookSecret:
        """Subscribe ``url`` to ``events``; returns the generated signing secret, shown only once."""
        bid = as_uuid(brand_id, "brand_id")
        secret = "whsec_" + secrets.token_urlsafe(32)
        spec_url, spec_events, _ = _subscription_spec(
            {"url": url, "events": events, "secret": secret}, "webhook"
        )

        def work(uow: UnitOfWork) -> WebhookSecret:
            authorize(actor, "brands.manage_webhooks", uow=uow, brand_ids={bid})
            brand = uow.brands.lock(bid)
            subscription = self._subscription(uow, bid, spec_url, spec_events, secret)
            existing = brand.webhooks.subscriptions if brand.webhooks else ()
            hooks = BrandWebhooks(subscriptions=(*existing, subscription))
            uow.brands.update(attrs.evolve(brand, webhooks=hooks, updated_at=self.now()))
            return WebhookSecret(subscription.id, secret)

        return self.transaction(work, actor=actor)

    def remove_webhook(self, brand_id: UUID, subscription_id: UUID, *, actor: Actor) -> Brand:
        """Remove a subscription."""
        bid, sid = as_uuid(brand_id, "brand_id"), as_uuid(subscription_id, "subscription_id")

        def work(uow: UnitOfWork) -> Brand:
            authorize(actor, "brands.manage_webhooks", uow=uow, brand_ids={bid})
            brand = uow.brands.lock(bid)
            kept = tuple(s for s in (brand.webhooks.subscriptions if brand.webhooks else ()) if s.id != sid)
            updated = attrs.evolve(
                brand, webhooks=BrandWebhooks(subscriptions=kept) if kept else None, updated_at=self.now()
            )
            uow.brands.update(updated)
            return updated

        return self.transaction(work, actor=actor)

    def _subscription(
        self, uow: UnitOfWork, brand_id: UUID, url: str, events: tuple[str, ...], secret: str
    ) -> WebhookSubscription:
        subscription_id = self._ctx.ids.new_id()
        # Bound to the brand as well as the subscription: copied into another brand's row,
        # the subscription no longer opens (nor signs that brand's events).
        sealed = self.vault.seal_nested(
            uow, PLATFORM_KEY_OWNER, WEBHOOK_SECRET, brand_id, subscription_id, secret
        )
        return WebhookSubscription(id=subscription_id, url=url, events=events, secret=sealed)

    def _record_events(self, uow: UnitOfWork, events: Iterable[BrandEvent], recorded: list[Recorded]) -> None:
        """Record a brand webhook effect in ``uow`` for every active subscription of each event's
        brand that listens to it (the outbox delivers them after the commit, signed then)."""
        for event in events:
            brand = uow.brands.find(event.brand_id)
            for subscription in brand.webhooks.subscriptions if brand and brand.webhooks else ():
                if subscription.active and event.event in subscription.events:
                    self.effects.outbox.record(
                        uow,
                        EffectKind.BRAND_WEBHOOK,
                        f"webhook:{event.key}:{subscription.id}",
                        {
                            "brand_id": str(event.brand_id),
                            "subscription_id": str(subscription.id),
                            "event": event.event,
                            "data": dict(event.data),
                        },
                        order_id=event.order_id,
                        recorded=recorded,
                    )


def _normalized_contact(value: object) -> object:
    if isinstance(value, Mapping) and isinstance(value.get("email"), str):
        return {**value, "email": normalize_email(value["email"], "primary_contact.email")}
    return value


def _subscription_spec(spec: object, field: str) -> tuple[str, tuple[str, ...], str]:
    if not isinstance(spec, Mapping):
        raise ValidationError(field, "must be a mapping with url, events and secret")
    url, events, secret = spec.get("url"), spec.get("events"), spec.get("secret")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValidationError(f"{field}.url", "must be an http(s) URL")
    if not isinstance(events, list | tuple) or not events or not set(events) <= WEBHOOK_EVENTS:
        raise ValidationError(
            f"{field}.events", f"must name events among {', '.join(sorted(WEBHOOK_EVENTS))}"
        )
    if not isinstance(secret, str) or len(secret) < 16:
        raise ValidationError(f"{field}.secret", "must be at least 16 characters")
    return url, tuple(events), secret


__all__ = ["BrandEvent", "Brands", "WebhookSecret"]

"""Who may do what: the one permission matrix, and the one function that reads it.

Every service call names an *action* (``orders.fulfil``, ``catalog.create_product``, ...) and
asks :func:`authorize` whether its actor may perform it on the shopper and/or brands the call
is about. :data:`PERMISSIONS` says, for every action, which grants allow it:

* ``platform_admin`` and ``system`` — staff, on anything;
* ``brand_owner`` / ``brand_manager`` / ``brand_analyst`` — an *active* user of a brand the
  call is about, holding exactly that role (so "owner ⊃ manager ⊃ analyst" is written out:
  an action open to analysts lists all three roles);
* ``self`` — the shopper the call is about, and nobody else;
* ``shopper`` — any signed-in shopper;
* ``anonymous`` — a visitor who is not signed in (:meth:`Actor.anonymous`);
* ``anyone`` — every actor (public catalog reads, share-link clicks).

A missing grant is :class:`PermissionDenied`; an ``actor`` that is not an :class:`Actor` is a
:class:`ValidationError`. ``docs/permissions.md`` renders the matrix as a table.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from uuid import UUID

from fittwin_core.domain import (
    Actor,
    ActorType,
    Address,
    BrandRole,
    BrandUser,
    BrandUserStatus,
    NotFound,
    PaymentMethod,
    PermissionDenied,
    ValidationError,
)
from fittwin_core.ports import UnitOfWork


class Grant(StrEnum):
    """Who an entry of :data:`PERMISSIONS` lets through."""

    PLATFORM_ADMIN = "platform_admin"
    SYSTEM = "system"
    BRAND_OWNER = "brand_owner"
    BRAND_MANAGER = "brand_manager"
    BRAND_ANALYST = "brand_analyst"
    SELF = "self"
    SHOPPER = "shopper"
    ANONYMOUS = "anonymous"
    ANYONE = "anyone"


_ROLE_GRANT: Mapping[BrandRole, Grant] = {
    BrandRole.OWNER: Grant.BRAND_OWNER,
    BrandRole.MANAGER: Grant.BRAND_MANAGER,
    BrandRole.ANALYST: Grant.BRAND_ANALYST,
}

_ADMIN, _SYSTEM = Grant.PLATFORM_ADMIN, Grant.SYSTEM
_OWNER, _MANAGER, _ANALYST = Grant.BRAND_OWNER, Grant.BRAND_MANAGER, Grant.BRAND_ANALYST
_SELF, _SHOPPER, _ANONYMOUS, _ANYONE = Grant.SELF, Grant.SHOPPER, Grant.ANONYMOUS, Grant.ANYONE


PERMISSIONS: Mapping[str, frozenset[Grant]] = {
    # accounts: a shopper's own data
    "accounts.register": frozenset({_ADMIN, _SYSTEM, _ANONYMOUS}),
    "accounts.read": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "accounts.read_password_hash": frozenset({_ADMIN, _SYSTEM}),
    "accounts.update": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "accounts.change_password": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "accounts.verify_phone": frozenset({_ADMIN, _SYSTEM}),
    "accounts.manage_addresses": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "accounts.find_addresses": frozenset({_ADMIN, _SYSTEM}),
    "accounts.manage_payment_methods": frozenset({_ADMIN, _SYSTEM, _SELF}),
    # avatars
    "avatars.read": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "avatars.manage": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "avatars.clean_up": frozenset({_ADMIN, _SYSTEM}),
    # brands
    "brands.create": frozenset({_ADMIN, _SYSTEM}),
    "brands.read": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST}),
    "brands.submit_kyc": frozenset({_ADMIN, _SYSTEM, _OWNER}),
    "brands.activate": frozenset({_ADMIN, _SYSTEM}),
    "brands.suspend": frozenset({_ADMIN, _SYSTEM}),
    "brands.invite_owner": frozenset({_ADMIN, _SYSTEM, _OWNER}),
    "brands.invite_manager": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "brands.invite_analyst": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "brands.revoke_owner": frozenset({_ADMIN, _SYSTEM, _OWNER}),
    "brands.revoke_manager": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "brands.revoke_analyst": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "brands.list_users": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST}),
    "brands.read_invite_tokens": frozenset({_ADMIN, _SYSTEM}),
    "brands.manage_webhooks": frozenset({_ADMIN, _SYSTEM, _OWNER}),
    # catalog
    "catalog.read": frozenset({_ANYONE}),
    "catalog.create_size_chart": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.create_fit_map": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.create_product": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.publish_product": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.archive_product": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.add_variant": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.set_inventory": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.set_backorder": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.calibrate_confidence": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "catalog.propose_fit_offsets": frozenset({_ADMIN, _SYSTEM}),
    "catalog.read_fit_proposals": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST}),
    "catalog.decide_fit_proposals": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    # fit
    "fit.recommend": frozenset({_ADMIN, _SYSTEM, _SELF}),
    # orders: the order's shopper is "self"; the brands of its products are "this brand"
    "orders.read": frozenset({_ADMIN, _SYSTEM, _SELF, _OWNER, _MANAGER, _ANALYST}),
    "orders.list_for_brand": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST}),
    "orders.place": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "orders.pay": frozenset({_ADMIN, _SYSTEM}),
    "orders.cancel": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "orders.send_to_brand": frozenset({_ADMIN, _SYSTEM}),
    "orders.fulfil": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "orders.deliver": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "orders.request_return": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "orders.close": frozenset({_ADMIN, _SYSTEM}),
    "orders.receive_return": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER}),
    "orders.close_expired_returns": frozenset({_ADMIN, _SYSTEM}),
    "orders.reconcile": frozenset({_ADMIN, _SYSTEM}),
    "orders.cancel_abandoned": frozenset({_ADMIN, _SYSTEM}),
    "effects.dispatch": frozenset({_ADMIN, _SYSTEM}),
    "effects.read": frozenset({_ADMIN, _SYSTEM}),
    "effects.retry": frozenset({_ADMIN, _SYSTEM}),
    # referrals: the link's referrer is "self"
    "referrals.create": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "referrals.read": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "referrals.record_click": frozenset({_ANYONE}),
    "referrals.record_clicks": frozenset({_ADMIN, _SYSTEM}),
    # rewards: the referrer is "self"
    "rewards.read": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "rewards.release_due": frozenset({_ADMIN, _SYSTEM}),
    "rewards.mark_paid": frozenset({_ADMIN, _SYSTEM}),
    "rewards.reinstate": frozenset({_ADMIN}),
    # privacy and audit
    "privacy.export_user": frozenset({_ADMIN, _SYSTEM, _SELF}),
    "privacy.erase_user": frozenset({_ADMIN, _SYSTEM}),
    "privacy.purge_expired": frozenset({_ADMIN, _SYSTEM}),
    "privacy.rotate_data_keys": frozenset({_ADMIN, _SYSTEM}),
    "audit.read": frozenset({_ADMIN, _SYSTEM}),
    # analytics: platform-wide views for staff; the fit views also for a brand's own users
    "analytics.read": frozenset({_ADMIN, _SYSTEM}),
    "analytics.fit": frozenset({_ADMIN, _SYSTEM, _OWNER, _MANAGER, _ANALYST}),
    "analytics.export": frozenset({_ADMIN, _SYSTEM}),
}
"""``action → grants``: every action a service performs, and who may perform it."""


def check_actor(actor: object) -> Actor:
    """``actor`` if it is an :class:`Actor`; :class:`ValidationError` otherwise."""
    if not isinstance(actor, Actor):
        raise ValidationError("actor", "must be an Actor (Actor.shopper(id), Actor.brand_user(id), ...)")
    return actor


def authorize(
    actor: Actor,
    action: str,
    *,
    uow: UnitOfWork | None = None,
    user_id: UUID | None = None,
    brand_ids: Collection[UUID] = (),
) -> BrandUser | None:
    """Let ``actor`` perform ``action`` about the shopper ``user_id`` and/or the brands
    ``brand_ids``, or raise :class:`PermissionDenied`.

    A brand user is looked up in ``uow`` (it must be active); it is returned when it was its
    brand role that allowed the action (``None`` otherwise).
    """
    acting = check_actor(actor)
    grants = PERMISSIONS[action]
    if Grant.ANYONE in grants:
        return None
    if acting.type == ActorType.PLATFORM_ADMIN and Grant.PLATFORM_ADMIN in grants:
        return None
    if acting.type == ActorType.SYSTEM and Grant.SYSTEM in grants:
        return None
    if acting.type == ActorType.SHOPPER:
        if acting.id is None:
            if Grant.ANONYMOUS in grants:
                return None
        elif Grant.SHOPPER in grants or (Grant.SELF in grants and user_id == acting.id):
            return None
    if acting.type == ActorType.BRAND_ADMIN:
        roles = {role for role, grant in _ROLE_GRANT.items() if grant in grants}
        if roles and brand_ids:
            if uow is None:
                raise TypeError(f"authorize({action!r}) needs a unit of work to check a brand user")
            member = active_brand_user(uow, acting)
            if member.brand_id not in brand_ids:
                raise PermissionDenied(f"a brand {member.role.value} may not {action} for another brand")
            if member.role in roles:
                return member
            raise PermissionDenied(f"a brand {member.role.value} may not {action}")
    raise PermissionDenied(f"{_who(acting)} may not {action}{_about(acting, user_id)}")


def allowed(
    actor: Actor,
    action: str,
    *,
    uow: UnitOfWork | None = None,
    user_id: UUID | None = None,
    brand_ids: Collection[UUID] = (),
) -> bool:
    """Whether :func:`authorize` lets ``actor`` perform ``action`` (never raises for a refusal)."""
    try:
        authorize(actor, action, uow=uow, user_id=user_id, brand_ids=brand_ids)
    except PermissionDenied:
        return False
    return True


def active_brand_user(uow: UnitOfWork, actor: Actor) -> BrandUser:
    """The active brand user behind a brand-user ``actor``; :class:`PermissionDenied` otherwise."""
    if actor.type != ActorType.BRAND_ADMIN or actor.id is None:
        raise PermissionDenied("this action needs a brand user")
    member = uow.brand_users.find(actor.id)
    if member is None or member.status != BrandUserStatus.ACTIVE:
        raise PermissionDenied("the brand user is not active")
    return member


def _who(actor: Actor) -> str:
    if actor.is_anonymous:
        return "an anonymous visitor"
    return {
        ActorType.SHOPPER: "a shopper",
        ActorType.BRAND_ADMIN: "a brand user",
        ActorType.PLATFORM_ADMIN: "a platform admin",
        ActorType.SYSTEM: "the system",
    }[actor.type]


def _about(actor: Actor, user_id: UUID | None) -> str:
    if actor.type == ActorType.SHOPPER and actor.id is not None and user_id is not None:
        return " about another shopper" if user_id != actor.id else ""
    return ""


def own_live_address(uow: UnitOfWork, user_id: UUID, address_id: UUID, field: str) -> Address:
    """The shopper's own, not removed address (:class:`NotFound` for anyone else's).

    Not a permission check: it keeps a call about one shopper from naming another's data."""
    return checked_own_live_address(uow.addresses.find(address_id), user_id, address_id, field)


def checked_own_live_address(address: Address | None, user_id: UUID, address_id: UUID, field: str) -> Address:
    """:func:`own_live_address`'s checks on an address already read (``None``: not found)."""
    if address is None or address.user_id != user_id:
        raise NotFound("addresses", address_id)
    if address.deleted_at is not None:
        raise ValidationError(field, "refers to a removed address")
    return address


def own_payment_method(uow: UnitOfWork, user_id: UUID, payment_method_id: UUID) -> PaymentMethod:
    """The shopper's own payment method (:class:`NotFound` for anyone else's)."""
    return checked_own_payment_method(uow.payment_methods.find(payment_method_id), user_id, payment_method_id)


def checked_own_payment_method(
    method: PaymentMethod | None, user_id: UUID, payment_method_id: UUID
) -> PaymentMethod:
    """:func:`own_payment_method`'s check on a payment method already read (``None``: not found)."""
    if method is None or method.user_id != user_id:
        raise NotFound("payment_methods", payment_method_id)
    return method


__all__ = [
    "PERMISSIONS",
    "Grant",
    "active_brand_user",
    "allowed",
    "authorize",
    "check_actor",
    "checked_own_live_address",
    "checked_own_payment_method",
    "own_live_address",
    "own_payment_method",
]

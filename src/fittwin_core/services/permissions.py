"""Who may do what: shoppers act on their own data, brand users on their own brand within
their role (owner ⊃ manager ⊃ analyst), platform admins and the system on anything."""

from __future__ import annotations

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

STAFF = frozenset({ActorType.PLATFORM_ADMIN, ActorType.SYSTEM})


def check_actor(actor: object) -> Actor:
    """``actor`` if it is an :class:`Actor`; :class:`ValidationError` otherwise."""
    if not isinstance(actor, Actor):
        raise ValidationError("actor", "must be an Actor (Actor.shopper(id), Actor.brand_user(id), ...)")
    return actor


def is_staff(actor: Actor) -> bool:
    """Platform admins and the system may act on any shopper or brand."""
    return check_actor(actor).type in STAFF


def require_staff(actor: Actor, action: str) -> None:
    """Only a platform admin (or the system) may ``action``."""
    if not is_staff(actor):
        raise PermissionDenied(f"only platform admins may {action}")


def require_self_or_staff(actor: Actor, user_id: UUID, action: str) -> None:
    """The shopper themself, a platform admin or the system may ``action``."""
    if is_staff(actor):
        return
    if actor.type == ActorType.SHOPPER and actor.id == user_id:
        return
    raise PermissionDenied(f"a shopper may only {action} on their own account")


def brand_user_of(uow: UnitOfWork, actor: Actor) -> BrandUser:
    """The active brand user behind ``actor``; :class:`PermissionDenied` otherwise."""
    if check_actor(actor).type != ActorType.BRAND_ADMIN or actor.id is None:
        raise PermissionDenied("this action needs a brand user or a platform admin")
    member = uow.brand_users.find(actor.id)
    if member is None or member.status != BrandUserStatus.ACTIVE:
        raise PermissionDenied("the brand user is not active")
    return member


def require_brand_role(
    uow: UnitOfWork, actor: Actor, brand_id: UUID, minimum: BrandRole, action: str
) -> BrandUser | None:
    """Staff, or an active user of ``brand_id`` holding at least ``minimum``, may ``action``.

    Returns the brand user (``None`` for staff)."""
    if is_staff(actor):
        return None
    member = brand_user_of(uow, actor)
    if member.brand_id != brand_id:
        raise PermissionDenied(f"brand users may only {action} for their own brand")
    if not member.role.includes(minimum):
        raise PermissionDenied(f"{action} needs the {minimum.value} role or higher")
    return member


def own_live_address(uow: UnitOfWork, user_id: UUID, address_id: UUID, field: str) -> Address:
    """The shopper's own, not removed address (:class:`NotFound` for anyone else's)."""
    address = uow.addresses.find(address_id)
    if address is None or address.user_id != user_id:
        raise NotFound("addresses", address_id)
    if address.deleted_at is not None:
        raise ValidationError(field, "refers to a removed address")
    return address


def own_payment_method(uow: UnitOfWork, user_id: UUID, payment_method_id: UUID) -> PaymentMethod:
    """The shopper's own payment method (:class:`NotFound` for anyone else's)."""
    method = uow.payment_methods.find(payment_method_id)
    if method is None or method.user_id != user_id:
        raise NotFound("payment_methods", payment_method_id)
    return method


__all__ = [
    "STAFF",
    "brand_user_of",
    "check_actor",
    "is_staff",
    "own_live_address",
    "own_payment_method",
    "require_brand_role",
    "require_self_or_staff",
    "require_staff",
]

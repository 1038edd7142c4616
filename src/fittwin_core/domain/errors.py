"""The one error hierarchy of FitTwin.

Every failure a caller can act on is a :class:`FitTwinError`. Messages name fields, rules,
entity types and ids, never the offending values: a value may be a password, an email or
another piece of personal data, and error messages end up in logs.
"""

from __future__ import annotations

from typing import Any


class FitTwinError(Exception):
    """Base class of every error FitTwin raises on purpose."""


class ValidationError(FitTwinError, ValueError):
    """A value broke a rule. ``field`` names the field (dotted for nested values), ``rule`` the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.rule))


class NotFound(FitTwinError, LookupError):
    """No ``entity`` with that key exists (or it is not visible to the caller)."""

    def __init__(self, entity: str, key: object = None) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} not found" if key is None else f"{entity} {key} not found")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.entity, self.key))


class Conflict(FitTwinError):
    """The change clashes with the current state: a unique key taken, a row changed by
    someone else in the meantime, an idempotency key reused with other input."""


class TransientConflict(Conflict):
    """A conflict that goes away when the whole unit of work is tried again
    (serialization failure, deadlock, lock time-out). Services retry these a bounded
    number of times before letting them surface."""


class InvalidTransition(FitTwinError):
    """A status change that the entity's transition table does not allow."""

    def __init__(self, entity: str, current: str, target: str, detail: str | None = None) -> None:
        self.entity = entity
        self.current = current
        self.target = target
        self.detail = detail
        message = f"{entity} cannot move from {current!s} to {target!s}"
        super().__init__(f"{message}: {detail}" if detail else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.entity, self.current, self.target, self.detail))


class InsufficientInventory(FitTwinError):
    """A variant has fewer units than an order asked for; nothing was reserved."""

    def __init__(self, variant_id: object, requested: int, available: int) -> None:
        self.variant_id = variant_id
        self.requested = requested
        self.available = available
        super().__init__(f"variant {variant_id}: {requested} requested, {available} available")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.variant_id, self.requested, self.available))


class PermissionDenied(FitTwinError):
    """The actor may not perform this action (another brand's data, or above its role)."""


class AuthenticationFailed(FitTwinError):
    """Credentials, a token or a signature did not check out. Deliberately unspecific."""


class WrongRegion(FitTwinError):
    """A call reached the store of one region for a shopper whose data lives in another.

    ``user_region`` is where the shopper belongs, ``store_region`` the region of the FitTwin
    that was called. Route the call through ``ShardRouter.for_user`` / ``for_region``."""

    def __init__(self, user_region: str, store_region: str, user_id: object = None) -> None:
        self.user_region = user_region
        self.store_region = store_region
        self.user_id = user_id
        who = "this shopper" if user_id is None else f"user {user_id}"
        super().__init__(
            f"{who} belongs to region {user_region!r}, but this FitTwin serves region "
            f"{store_region!r}: route the call to the {user_region!r} store"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.user_region, self.store_region, self.user_id))


class PaymentError(FitTwinError):
    """The payment provider refused or failed an operation."""


class StoreUnavailable(FitTwinError):
    """The store could not be reached; the unit of work was rolled back."""


class ConfigurationError(FitTwinError):
    """FitTwin was wired with settings that cannot work (missing key ring, bad URL, ...)."""


__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "Conflict",
    "FitTwinError",
    "InsufficientInventory",
    "InvalidTransition",
    "NotFound",
    "PaymentError",
    "PermissionDenied",
    "StoreUnavailable",
    "TransientConflict",
    "ValidationError",
    "WrongRegion",
]

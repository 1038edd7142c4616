"""The one error hierarchy of FitTwin.

Every failure a caller can act on is a :class:`FitTwinError`. Messages name fields, rules,
entity types and ids, never the offending values: a value may be a password, an email or
another piece of personal data, and error messages end up in logs.

For hosts, every class carries a stable machine-readable :attr:`~FitTwinError.code`, a
suggested :attr:`~FitTwinError.http_status` and whether the same call may simply be tried
again (:attr:`~FitTwinError.retryable`); ``docs/errors.md`` has the table and the reasons.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FitTwinError(Exception):
    """Base class of every error FitTwin raises on purpose.

    ``code`` is stable across releases (match on it, not on messages), ``http_status`` is the
    status a web host would answer with, and ``retryable`` says whether repeating the same call
    later can succeed without changing it. Subclasses refine all three.
    """

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    sqlstate: str | None = None
    """The SQLSTATE of the database error a store translated into this one (``None`` for the
    rest). The driver's exception itself is never kept: not as ``__cause__``, not as
    ``__context__``, since its message quotes the values involved."""

    def as_problem(self) -> dict[str, Any]:
        """The error as an RFC 9457 problem-details body: ``code``, ``status``, ``title``
        (the class), ``detail`` (the message, which holds no values), ``retryable``, and the
        ``field`` of a :class:`ValidationError`."""
        problem: dict[str, Any] = {
            "code": self.code,
            "status": self.http_status,
            "title": type(self).__name__,
            "detail": str(self),
            "retryable": self.retryable,
        }
        field = getattr(self, "field", None)
        if field is not None:
            problem["field"] = field
        return problem


class ValidationError(FitTwinError, ValueError):
    """A value broke a rule. ``field`` names the field (dotted for nested values), ``rule`` the rule."""

    code = "validation_error"
    http_status = 422

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.rule))


class NotFound(FitTwinError, LookupError):
    """No ``entity`` with that key exists (or it is not visible to the caller)."""

    code = "not_found"
    http_status = 404

    def __init__(self, entity: str, key: object = None) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} not found" if key is None else f"{entity} {key} not found")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.entity, self.key))


class Conflict(FitTwinError):
    """The change clashes with the current state: a unique key taken, a row changed by
    someone else in the meantime, an idempotency key reused with other input."""

    code = "conflict"
    http_status = 409


class TransientConflict(Conflict):
    """A conflict that goes away when the whole unit of work is tried again
    (serialization failure, deadlock, lock time-out). Services retry these a bounded
    number of times before letting them surface."""

    code = "transient_conflict"
    http_status = 503
    retryable = True


class IdempotencyKeyInUse(TransientConflict):
    """Another request with the same idempotency key is being processed right now.

    Services wait for that request and answer with its result, so this surfaces only when
    it did not finish within the bounded retries: send the same request again (with the
    same key) a little later."""

    code = "idempotency_key_in_use"
    http_status = 409


class IdempotencyKeyReused(Conflict):
    """The idempotency key was already used for a request with other input: a bug in the
    caller (or a key collision), never fixed by retrying."""

    code = "idempotency_key_reused"
    http_status = 422


class InvalidTransition(FitTwinError):
    """A status change that the entity's transition table does not allow."""

    code = "invalid_transition"
    http_status = 409

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

    code = "insufficient_inventory"
    http_status = 409

    def __init__(self, variant_id: object, requested: int, available: int) -> None:
        self.variant_id = variant_id
        self.requested = requested
        self.available = available
        super().__init__(f"variant {variant_id}: {requested} requested, {available} available")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.variant_id, self.requested, self.available))


class PermissionDenied(FitTwinError):
    """The actor may not perform this action (another brand's data, or above its role)."""

    code = "permission_denied"
    http_status = 403


class AuthenticationFailed(FitTwinError):
    """Credentials, a token or a signature did not check out. Deliberately unspecific."""

    code = "authentication_failed"
    http_status = 401


class WrongRegion(FitTwinError):
    """A call reached the store of one region for a shopper whose data lives in another.

    ``user_region`` is where the shopper belongs, ``store_region`` the region of the FitTwin
    that was called. Route the call through ``ShardRouter.for_user`` / ``for_region``."""

    code = "wrong_region"
    http_status = 421

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

    code = "payment_error"
    http_status = 402


class PaymentProviderUnavailable(PaymentError):
    """The payment provider could not be reached or failed on its side (a network error,
    its HTTP 5xx or rate limit); nothing was charged by this call, and trying again later
    with the same idempotency key is safe."""

    code = "payment_provider_unavailable"
    http_status = 502
    retryable = True


class WebhookDeliveryFailed(FitTwinError):
    """A brand's webhook endpoint did not accept a delivery (no answer, or not 2xx); the
    outbox tries again later with the same event id."""

    code = "webhook_delivery_failed"
    http_status = 502
    retryable = True


class StoreUnavailable(FitTwinError):
    """The store could not be reached; the unit of work was rolled back."""

    code = "store_unavailable"
    http_status = 503
    retryable = True


class ConfigurationError(FitTwinError):
    """FitTwin was wired with settings that cannot work (missing key ring, bad URL, ...)."""

    code = "configuration_error"
    http_status = 500


__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "Conflict",
    "FitTwinError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientInventory",
    "InvalidTransition",
    "NotFound",
    "PaymentError",
    "PaymentProviderUnavailable",
    "PermissionDenied",
    "StoreUnavailable",
    "TransientConflict",
    "ValidationError",
    "WebhookDeliveryFailed",
    "WrongRegion",
]

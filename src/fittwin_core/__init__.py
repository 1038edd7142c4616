"""FitTwin core: the domain, the fit engine, the services and the ports of a fit-aware
commerce platform. Build a :class:`FitTwin` with ``fittwin_adapters.connect()``."""

from typing import TYPE_CHECKING, Any

from fittwin_core.domain import (
    Actor,
    AuthenticationFailed,
    BodyMetrics,
    ConfigurationError,
    Conflict,
    FitTwinError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    PaymentError,
    PaymentProviderUnavailable,
    PermissionDenied,
    StoreUnavailable,
    TransientConflict,
    ValidationError,
    WebhookDeliveryFailed,
    WrongRegion,
)

if TYPE_CHECKING:
    from fittwin_core.app import FitTwin
    from fittwin_core.pagination import Page

__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> Any:
    # The facade pulls in every service; importing the domain or the fit engine alone should not.
    if name == "FitTwin":
        from fittwin_core.app import FitTwin

        return FitTwin
    if name == "Page":
        from fittwin_core.pagination import Page

        return Page
    raise AttributeError(f"module 'fittwin_core' has no attribute {name!r}")


__all__ = [
    "Actor",
    "AuthenticationFailed",
    "BodyMetrics",
    "ConfigurationError",
    "Conflict",
    "FitTwin",
    "FitTwinError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientInventory",
    "InvalidTransition",
    "NotFound",
    "Page",
    "PaymentError",
    "PaymentProviderUnavailable",
    "PermissionDenied",
    "StoreUnavailable",
    "TransientConflict",
    "ValidationError",
    "WebhookDeliveryFailed",
    "WrongRegion",
    "__version__",
]

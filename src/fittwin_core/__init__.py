"""FitTwin core: the domain, the fit engine, the services and the ports of a fit-aware
commerce platform. Build a :class:`FitTwin` with ``fittwin_adapters.connect()``."""

from fittwin_core.app import FitTwin
from fittwin_core.domain import (
    Actor,
    AuthenticationFailed,
    BodyMetrics,
    ConfigurationError,
    Conflict,
    FitTwinError,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    PaymentError,
    PermissionDenied,
    StoreUnavailable,
    TransientConflict,
    ValidationError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "Actor",
    "AuthenticationFailed",
    "BodyMetrics",
    "ConfigurationError",
    "Conflict",
    "FitTwin",
    "FitTwinError",
    "InsufficientInventory",
    "InvalidTransition",
    "NotFound",
    "PaymentError",
    "PermissionDenied",
    "StoreUnavailable",
    "TransientConflict",
    "ValidationError",
    "__version__",
]

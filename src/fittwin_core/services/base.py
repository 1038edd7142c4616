"""What every service shares: the ports it runs on, the settings, and the transaction runner."""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain import Actor, EventLog, JsonMap, ReferralPolicy, TransientConflict, ValidationError
from fittwin_core.domain.audit import SYSTEM
from fittwin_core.domain.converter import structure
from fittwin_core.domain.orders import DEFAULT_RETURN_WINDOW_DAYS
from fittwin_core.ports import (
    Clock,
    ExportSink,
    FieldCipher,
    Ids,
    ObjectStore,
    OutgoingWebhook,
    PasswordHasher,
    PaymentGateway,
    Pricing,
    Store,
    UnitOfWork,
    WebhookSender,
)

T = TypeVar("T")
log = logging.getLogger("fittwin")


@attrs.frozen(kw_only=True)
class RetentionPolicy:
    """How long data is kept once it no longer serves an open purpose (see ``docs/privacy.md``).

    Closed orders (with their items) are purged ``closed_order_days`` after closing, once their
    rewards are settled; paid or cancelled ledger entries ``settled_reward_days`` after their last
    change; event logs by whole months older than ``event_log_months``.
    """

    closed_order_days: int = attrs.field(default=3 * 365, validator=attrs.validators.ge(1))
    settled_reward_days: int = attrs.field(default=3 * 365, validator=attrs.validators.ge(1))
    event_log_months: int = attrs.field(default=24, validator=attrs.validators.ge(1))


@attrs.frozen(kw_only=True)
class Settings:
    """Business settings a host can change (each has a sensible default).

    ``referral_policy`` is frozen into every new referral; changing it never alters existing ones.
    """

    share_base_url: str = "https://fittwin.example/r/"
    referral_policy: ReferralPolicy = attrs.field(
        factory=lambda: ReferralPolicy(reward_percent=Decimal("10"))
    )
    return_window_days: int = DEFAULT_RETURN_WINDOW_DAYS
    low_stock_threshold: int = 5
    default_region: str = "default"
    transaction_attempts: int = 4
    retention: RetentionPolicy = attrs.field(factory=RetentionPolicy)
    password_min_length: int = 8
    password_max_length: int = 256


class LoggingWebhookSender:
    """The default :class:`~fittwin_core.ports.WebhookSender`: keeps what it was given and logs
    the event name (never the payload). Hosts plug in a real sender."""

    def __init__(self) -> None:
        self.sent: list[OutgoingWebhook] = []

    def send(self, webhook: OutgoingWebhook) -> None:
        """Record the webhook for delivery by the host."""
        self.sent.append(webhook)
        log.info("brand webhook ready: %s", webhook.event)


@attrs.frozen(kw_only=True)
class Context:
    """The ports and settings services run on (built by ``fittwin_adapters.connect``)."""

    store: Store
    clock: Clock
    ids: Ids
    cipher: FieldCipher
    hasher: PasswordHasher
    payments: PaymentGateway
    objects: ObjectStore
    pricing: Pricing
    webhooks: WebhookSender = attrs.field(factory=LoggingWebhookSender)
    settings: Settings = attrs.field(factory=Settings)
    exports: ExportSink | None = None
    """Where ``ft.analytics.export_parquet`` writes (``None``: exports are not configured)."""


class Service:
    """Base of the service groups: runs units of work with bounded retries."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def transaction(self, work: Callable[[UnitOfWork], T], *, actor: Actor | None = None) -> T:
        """Run ``work`` in a unit of work and commit; retry the whole of it on a
        :class:`TransientConflict` (serialization failure, deadlock, lock time-out) a bounded
        number of times with jittered back-off, then let the conflict surface."""
        attempts = self._ctx.settings.transaction_attempts
        for attempt in range(1, attempts + 1):
            try:
                with self._ctx.store.unit_of_work(actor or SYSTEM) as uow:
                    result = work(uow)
                    uow.commit()
                    return result
            except TransientConflict:
                if attempt == attempts:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 — jitter, not a secret
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, work: Callable[[UnitOfWork], T], *, actor: Actor | None = None) -> T:
        """Run read-only ``work`` in a unit of work (nothing is committed)."""
        with self._ctx.store.unit_of_work(actor or SYSTEM) as uow:
            return work(uow)

    def now(self) -> Any:
        """The clock's time."""
        return self._ctx.clock.now()

    def record(
        self,
        uow: UnitOfWork,
        action: str,
        entity_type: str,
        entity_id: UUID,
        metadata: Mapping[str, Any] | None = None,
    ) -> EventLog:
        """Append a service-level audit record (metadata must hold no personal data)."""
        entry = EventLog(
            id=self._ctx.ids.new_id(),
            actor_type=uow.actor.type,
            actor_id=uow.actor.id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            metadata=JsonMap(metadata or {}),
            created_at=self.now(),
        )
        uow.event_logs.add(entry)
        return entry


class Unset(enum.Enum):
    """Marker for "not given" in update calls, where ``None`` means "clear"."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


def coerce(value: object, cls: type[T], field: str) -> T:
    """``value`` as a ``cls`` value object: instances pass; mappings are built from either the
    Python field names or the JSON form; anything else is a :class:`ValidationError`."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a {cls.__name__} or a mapping")
    json_keys = {f.name: f.metadata.get("json", f.name) for f in attrs.fields(cls)}  # type: ignore[arg-type]
    try:
        return structure({json_keys.get(key, key): item for key, item in value.items()}, cls)
    except ValidationError as exc:
        raise ValidationError(f"{field}.{exc.field}", exc.rule) from None
    except TypeError:
        raise ValidationError(field, f"is not a valid {cls.__name__}") from None


def require(condition: bool, field: str, rule: str) -> None:
    """Raise :class:`ValidationError` for ``field`` breaking ``rule`` unless ``condition`` holds."""
    if not condition:
        raise ValidationError(field, rule)


def as_uuid(value: object, field: str) -> UUID:
    """``value`` as a UUID (UUIDs pass, strings are parsed); :class:`ValidationError` otherwise."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValidationError(field, "must be a UUID")


__all__ = [
    "UNSET",
    "Context",
    "LoggingWebhookSender",
    "RetentionPolicy",
    "Service",
    "Settings",
    "Unset",
    "as_uuid",
    "coerce",
    "require",
]

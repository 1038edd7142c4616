"""What every service shares: the ports it runs on, the settings, and the transaction runner."""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Conflict,
    EventLog,
    JsonMap,
    NotFound,
    ReferralPolicy,
    TransientConflict,
    UserProfile,
    ValidationError,
    WrongRegion,
)
from fittwin_core.domain.converter import structure
from fittwin_core.domain.orders import DEFAULT_RETURN_WINDOW_DAYS
from fittwin_core.domain.rules import parse_uuid
from fittwin_core.domain.users import region_name
from fittwin_core.ports import (
    Clock,
    ExportSink,
    FieldCipher,
    Ids,
    Notifier,
    ObjectStore,
    OutgoingWebhook,
    PasswordHasher,
    PaymentGateway,
    Pricing,
    ShopperNotification,
    Store,
    UnitOfWork,
    WebhookSender,
)
from fittwin_core.services.boundary import guard_public_methods
from fittwin_core.services.permissions import check_actor

T = TypeVar("T")
log = logging.getLogger("fittwin")


@attrs.frozen(kw_only=True)
class RetentionPolicy:
    """How long data is kept once it no longer serves an open purpose (see ``docs/privacy.md``).

    Closed orders (with their items) are purged ``closed_order_days`` after closing, once their
    rewards are settled; paid or cancelled ledger entries ``settled_reward_days`` after their last
    change; event logs by whole months older than ``event_log_months``. The declaration of
    personal data (:mod:`fittwin_core.schema`) names the rest: referral clicks lose their ip and
    device hashes (and device metadata) after ``click_hash_days``; soft-deleted addresses go
    ``deleted_row_days`` after deletion (once nothing refers to them) and soft-deleted avatars
    lose their sources and photos then; erased profiles go ``erased_profile_days`` after the
    erasure, once nothing refers to them.
    """

    closed_order_days: int = attrs.field(default=3 * 365, validator=attrs.validators.ge(1))
    settled_reward_days: int = attrs.field(default=3 * 365, validator=attrs.validators.ge(1))
    event_log_months: int = attrs.field(default=24, validator=attrs.validators.ge(1))
    click_hash_days: int = attrs.field(default=90, validator=attrs.validators.ge(1))
    deleted_row_days: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    erased_profile_days: int = attrs.field(default=30, validator=attrs.validators.ge(1))


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
    region: str | None = attrs.field(default=None, validator=attrs.validators.optional(region_name))
    """The region this FitTwin serves when it is one shard of several (see ``docs/privacy.md`` (Regions)):
    it then registers shoppers only in this region and refuses calls about shoppers of other
    regions (:class:`WrongRegion`). ``None``: one FitTwin serves every region."""
    transaction_attempts: int = 4
    dispatch_inline: bool = True
    """Deliver a call's effects (refunds, webhooks, notifications) right after its commit; with
    ``False`` only ``ft.effects.dispatch`` (``fittwin jobs dispatch``) delivers them."""
    outbox_max_attempts: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    """Attempts before an effect is parked as a dead letter."""
    outbox_backoff_seconds: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    """The wait after the first failed attempt; it doubles with every further one."""
    outbox_backoff_cap_seconds: float = attrs.field(default=3600.0, validator=attrs.validators.ge(0))
    abandoned_checkout_minutes: int = attrs.field(default=24 * 60, validator=attrs.validators.ge(1))
    """``created`` orders unpaid for this long are cancelled by ``ft.orders.cancel_abandoned``."""
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


class LoggingNotifier:
    """The default :class:`~fittwin_core.ports.Notifier`: keeps what it was given and logs the
    template name (never a recipient). Hosts plug in their email/SMS sender."""

    def __init__(self) -> None:
        self.sent: list[ShopperNotification] = []

    def notify(self, notification: ShopperNotification) -> None:
        """Record the notification."""
        self.sent.append(notification)
        log.info("shopper notification: %s", notification.template)


class RegionDirectory:
    """Where shoppers live, for a FitTwin serving one region of several.

    Unbound it knows nothing (single-region deployments). A ``ShardRouter`` binds it to a
    lookup over every region's store, so a regional FitTwin asked about a shopper it does not
    hold can say which region does (:class:`WrongRegion`) instead of a bare :class:`NotFound`.
    """

    def __init__(self) -> None:
        self._lookup: Callable[[UUID], str | None] | None = None

    def bind(self, lookup: Callable[[UUID], str | None]) -> None:
        """Answer :meth:`region_of` with ``lookup`` from now on."""
        self._lookup = lookup

    def region_of(self, user_id: UUID) -> str | None:
        """The region holding ``user_id``, or ``None`` when unknown."""
        return None if self._lookup is None else self._lookup(user_id)


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
    notifier: Notifier = attrs.field(factory=LoggingNotifier)
    settings: Settings = attrs.field(factory=Settings)
    directory: RegionDirectory = attrs.field(factory=RegionDirectory)
    exports: ExportSink | None = None
    """Where ``ft.analytics.export_parquet`` writes (``None``: exports are not configured)."""


class UnitOfWorkRunner:
    """How service calls meet the store: each call in a unit of work of its own.

    :meth:`write` commits at the end of the call and retries the whole of it on a
    :class:`TransientConflict` (serialization failure, deadlock, lock time-out) a bounded
    number of times with jittered back-off; :meth:`after_commit` runs its action at once (the
    call's own transaction has committed). :class:`Session` is the runner of
    ``ft.transaction``, which shares one unit of work between calls.
    """

    commits_each_call = True
    """Each call's work is committed as soon as it returns, so it may commit itself with its
    last round trip (``OrderRepository.commit_with_items``); not in ``ft.transaction``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def write(self, work: Callable[[UnitOfWork], T], actor: Actor, *, durable: bool = True) -> T:
        """Run ``work`` as ``actor`` in a new unit of work and commit it; not ``durable``, the
        commit may return before it is on disk (``UnitOfWork.relax_durability``)."""
        attempts = self._ctx.settings.transaction_attempts
        for attempt in range(1, attempts + 1):
            try:
                with self._ctx.store.unit_of_work(actor) as uow:
                    result = work(uow)
                    if not durable:
                        uow.relax_durability()
                    uow.commit()
                    return result
            except TransientConflict:
                if attempt == attempts:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 — jitter, not a secret
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, work: Callable[[UnitOfWork], T], actor: Actor) -> T:
        """Run read-only ``work`` as ``actor`` in a new unit of work (nothing is committed)."""
        with self._ctx.store.unit_of_work(actor) as uow:
            return work(uow)

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once what the calling service wrote is committed: here, now."""
        action()


class Session(UnitOfWorkRunner):
    """The runner of one ``ft.transaction``: every call made through it runs in one unit of
    work, committed once when the ``with`` block ends and rolled back on any error.

    * No automatic retry: a :class:`TransientConflict` surfaces and the host retries its block.
    * Each call runs as its own actor (checked by the service, recorded on the audit rows of
      its statements); the transaction's actor is the unit of work's default.
    * A call that fails dooms the transaction (it may have written part of its work): later
      calls raise :class:`Conflict` and the block's end rolls back.
    * :meth:`after_commit` actions (brand webhooks, opening payments, deleting objects) wait
      for the commit; they run after it, each as a call of its own.
    """

    commits_each_call = False

    def __init__(self, ctx: Context, actor: Actor) -> None:
        super().__init__(ctx)
        self.actor = actor
        self._uow: UnitOfWork | None = None
        self._failed = False
        self._finished = False
        self._pending: list[Callable[[], object]] = []

    def begin(self) -> None:
        """Open the unit of work."""
        if self._uow is not None or self._finished:
            raise Conflict("this transaction was already started")
        uow = self._ctx.store.unit_of_work(self.actor)
        uow.__enter__()
        self._uow = uow

    def end(self, error: BaseException | None) -> None:
        """Commit (``error`` is ``None`` and no call failed) or roll back, then run the
        after-commit actions of a committed transaction (the first of their errors is raised
        after all ran)."""
        uow, self._uow = self._uow, None
        self._finished = True
        if uow is None:
            return
        committed = False
        try:
            if error is None and not self._failed:
                uow.commit()
                committed = True
        finally:
            uow.__exit__(None, None, None)
        if not committed:
            self._pending.clear()
            if error is None:
                raise Conflict("a call of this transaction failed, so nothing it did was committed")
            return
        pending, self._pending = self._pending, []
        problem: BaseException | None = None
        for action in pending:
            try:
                action()
            except Exception as exc:
                problem = problem or exc
                log.exception("an after-commit action of a transaction failed")
        if problem is not None:
            raise problem

    def _open(self) -> UnitOfWork | None:
        if self._finished:
            return None  # after the commit: after-commit actions run as calls of their own
        if self._uow is None:
            raise Conflict("this transaction has not been started: use it as `with ft.transaction(...)`")
        if self._failed:
            raise Conflict("a call of this transaction failed, which aborted it: leave the with block")
        return self._uow

    def write(self, work: Callable[[UnitOfWork], T], actor: Actor, *, durable: bool = True) -> T:
        """Run ``work`` as ``actor`` in the transaction's unit of work (committed at its end,
        durably whatever ``durable`` says: the host's transaction holds more than this call)."""
        uow = self._open()
        if uow is None:
            return super().write(work, actor, durable=durable)
        try:
            return self._as(uow, actor, work)
        except BaseException:
            self._failed = True
            raise

    def read(self, work: Callable[[UnitOfWork], T], actor: Actor) -> T:
        """Run read-only ``work`` in the transaction's unit of work (it sees the block's writes)."""
        uow = self._open()
        if uow is None:
            return super().read(work, actor)
        return self._as(uow, actor, work)

    def after_commit(self, action: Callable[[], object]) -> None:
        """Keep ``action`` until the transaction commits (drop it if it rolls back)."""
        if self._finished:
            action()
        else:
            self._pending.append(action)

    def _as(self, uow: UnitOfWork, actor: Actor, work: Callable[[UnitOfWork], T]) -> T:
        uow.act_as(actor)
        try:
            return work(uow)
        finally:
            uow.act_as(self.actor)


class Service:
    """Base of the service groups: runs units of work through a :class:`UnitOfWorkRunner`.

    Every public method of a subclass checks its arguments against its annotations before it
    runs (:mod:`fittwin_core.services.boundary`): one input boundary for every service."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_public_methods(cls)

    def __init__(self, ctx: Context, runner: UnitOfWorkRunner | None = None) -> None:
        self._ctx = ctx
        self._runner = runner or UnitOfWorkRunner(ctx)

    def transaction(self, work: Callable[[UnitOfWork], T], *, actor: Actor, durable: bool = True) -> T:
        """Run ``work`` as ``actor`` in a unit of work and commit: at the end of this call, or
        at the end of the enclosing ``ft.transaction`` (see :class:`Session`). Not ``durable``
        (writes a later run redoes if they are lost, see ``UnitOfWork.relax_durability``), a
        call's own commit does not wait for the disk."""
        return self._runner.write(work, check_actor(actor), durable=durable)

    def read(self, work: Callable[[UnitOfWork], T], *, actor: Actor) -> T:
        """Run read-only ``work`` as ``actor`` in a unit of work (nothing is committed)."""
        return self._runner.read(work, check_actor(actor))

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the work written so far is committed — the one place where
        post-commit work (brand webhooks, payment intents, object deletions) is scheduled."""
        self._runner.after_commit(action)

    def now(self) -> Any:
        """The clock's time."""
        return self._ctx.clock.now()

    @property
    def region(self) -> str | None:
        """The region this FitTwin serves as a shard (``None``: every region)."""
        return self._ctx.settings.region

    def check_region(self, region: str, user_id: UUID | None = None) -> None:
        """Refuse a shopper of ``region`` on a FitTwin that serves another (:class:`WrongRegion`)."""
        home = self._ctx.settings.region
        if home is not None and region != home:
            raise WrongRegion(region, home, user_id)

    def shopper(self, uow: UnitOfWork, user_id: UUID, *, lock: bool = False) -> UserProfile:
        """The shopper's profile (locked when ``lock``), checked to belong to this FitTwin's region.

        A shopper this regional store does not hold but another region does is a
        :class:`WrongRegion`; one no region holds is :class:`NotFound`.
        """
        profile: UserProfile | None
        if lock:
            try:
                profile = uow.user_profiles.lock(user_id)
            except NotFound:
                profile = None
        else:
            profile = uow.user_profiles.find(user_id)
        return self.found_shopper(profile, user_id)

    def found_shopper(self, profile: UserProfile | None, user_id: UUID) -> UserProfile:
        """:meth:`shopper`'s checks on a profile already read (``None``: none was found)."""
        if profile is None:
            home = self._ctx.settings.region
            elsewhere = None if home is None else self._ctx.directory.region_of(user_id)
            if home is not None and elsewhere is not None and elsewhere != home:
                raise WrongRegion(elsewhere, home, user_id)
            raise NotFound("user_profiles", user_id)
        self.check_region(profile.region, user_id)
        return profile

    def live_shopper(self, uow: UnitOfWork, user_id: UUID, field: str = "user_id") -> UserProfile:
        """The shopper's profile, locked, for a write about them: :class:`ValidationError` on
        ``field`` when the account was erased.

        Every shopper-scoped write goes through here, so it serialises with
        :meth:`~fittwin_core.services.privacy.Privacy.erase_user` (which holds the same row
        lock): a write either commits before the erasure, which then erases it too, or waits
        for the erasure and is refused."""
        return self.found_live_shopper(self.shopper(uow, user_id, lock=True), user_id, field)

    def found_live_shopper(
        self, profile: UserProfile | None, user_id: UUID, field: str = "user_id"
    ) -> UserProfile:
        """:meth:`live_shopper`'s checks on a profile already read and locked (by
        :meth:`~fittwin_core.ports.UnitOfWork.load_checkout`, say)."""
        profile = self.found_shopper(profile, user_id)
        require(not profile.erased, field, "refers to an erased account")
        return profile

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


class BatchResult(list[T]):
    """What a batch job did: the rows it changed (the list itself), plus ``skipped``, the ids
    of rows another writer changed or held while the job ran, which it left alone.

    Jobs work in small transactions, so one conflict costs one row, not the batch; running the
    job again picks up whatever is still due (and changes nothing twice)."""

    def __init__(self, done: Iterable[T] = (), skipped: Iterable[UUID] = ()) -> None:
        super().__init__(done)
        self.skipped: list[UUID] = list(skipped)

    def __repr__(self) -> str:
        return f"BatchResult({list.__repr__(self)}, skipped={self.skipped!r})"


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


def as_list(value: object, field: str) -> list[Any]:
    """``value`` (a list, tuple, set or other non-text iterable) as a list; a
    :class:`ValidationError` for text, mappings and non-iterables."""
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise ValidationError(field, "must be a list")
    return list(value)


def require(condition: bool, field: str, rule: str) -> None:
    """Raise :class:`ValidationError` for ``field`` breaking ``rule`` unless ``condition`` holds."""
    if not condition:
        raise ValidationError(field, rule)


def as_uuid(value: object, field: str) -> UUID:
    """``value`` as a UUID (UUIDs pass, strings are parsed); :class:`ValidationError` otherwise."""
    return parse_uuid(value, field)


__all__ = [
    "UNSET",
    "BatchResult",
    "Context",
    "LoggingNotifier",
    "LoggingWebhookSender",
    "RegionDirectory",
    "RetentionPolicy",
    "Service",
    "Session",
    "Settings",
    "UnitOfWorkRunner",
    "Unset",
    "as_list",
    "as_uuid",
    "coerce",
    "require",
]

"""The composition root: ``connect()`` picks the adapters and returns a wired :class:`FitTwin`
(or, for several regions, a :class:`~fittwin_core.routing.ShardRouter` of them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, TypeGuard, Unpack, overload

import attrs

from fittwin_adapters.crypto import AesGcmFieldCipher, Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.disabled import NoKeyRing
from fittwin_adapters.export import ParquetExport
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import FitTwin
from fittwin_core.domain import AuthenticationFailed, ConfigurationError
from fittwin_core.domain.keys import DataKey
from fittwin_core.domain.users import region_name
from fittwin_core.ports import (
    Clock,
    Ids,
    KeyRing,
    Notifier,
    ObjectStore,
    PasswordHasher,
    PaymentGateway,
    Pricing,
    Store,
    WebhookSender,
)
from fittwin_core.routing import ShardRouter
from fittwin_core.services.base import Context, LoggingNotifier, LoggingWebhookSender, Settings
from fittwin_core.services.pricing import FlatRatePricing
from fittwin_core.system import SystemClock, SystemIds

if TYPE_CHECKING:
    from sqlalchemy import Engine

KEYRING_ENV = "FITTWIN_KEYRING"
DATABASE_URL_ENV = "FITTWIN_DATABASE_URL"
"""The store URL ``connect()`` and the ``fittwin`` command use when none is given."""
KEYRING_SAMPLE = 200
"""Data keys read at each end of ``data_keys`` (by owner id) to check the key ring."""


class PostgresOptions(TypedDict, total=False):
    """The PostgreSQL options of :func:`connect` (defaults and meaning: ``docs/postgres.md``).

    They configure :class:`~fittwin_adapters.postgres.PostgresStore`; ``memory://`` ignores
    them, so one configuration serves tests on memory and production on PostgreSQL."""

    schema: str
    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_pre_ping: bool
    prepare_statements: bool
    pool_recycle: int | None
    connect_timeout: int
    statement_timeout_ms: int | None
    lock_timeout_ms: int | None
    idle_in_transaction_timeout_ms: int | None


def database_url(url: str | None = None) -> str:
    """``url``, else ``FITTWIN_DATABASE_URL``, else ``memory://`` (the embedded default)."""
    if url is not None:
        return url
    return os.environ.get(DATABASE_URL_ENV, "").strip() or "memory://"


def open_store(url: str, *, clock: Clock, ids: Ids, **options: Unpack[PostgresOptions]) -> Store:
    """The store for ``url``: ``memory://`` or a PostgreSQL URL (``postgresql+psycopg://...``)."""
    if not isinstance(url, str):
        raise ConfigurationError(
            "the store URL must be a string such as 'memory://' or 'postgresql+psycopg://...'"
        )
    if url == "memory://" or url.startswith("memory:"):
        return MemoryStore(clock=clock, ids=ids)
    if url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        try:
            from fittwin_adapters.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError("PostgreSQL needs the extra: pip install 'fittwin[postgres]'") from exc
        store: Store = PostgresStore(url, clock=clock, ids=ids, **options)
        return store
    raise ConfigurationError("unsupported store URL: use memory:// or postgresql+psycopg://user@host/db")


def default_keyring(persistent: bool) -> KeyRing:
    """``FITTWIN_KEYRING``/``FITTWIN_KEYRING_FILE`` when set; otherwise a fresh key ring, but only
    for the memory store (a persistent store with a throw-away key ring would lose its data)."""
    if os.environ.get(KEYRING_ENV) or os.environ.get(f"{KEYRING_ENV}_FILE"):
        return LocalKeyRing.from_env(KEYRING_ENV)
    if not persistent:
        return LocalKeyRing.generate()
    raise ConfigurationError(
        f"a persistent store needs a key ring: set {KEYRING_ENV} (see docs/security.md) or pass keyring= "
        "(keyring=NoKeyRing() for analytics and exports, which decrypt nothing)"
    )


def check_keyring(store: Store, keyring: KeyRing) -> None:
    """Fail fast when ``keyring`` cannot unwrap the store's data keys: a one-line
    :class:`ConfigurationError` naming the key-encryption keys it lacks.

    A sample is checked — the :data:`KEYRING_SAMPLE` oldest and newest data keys by owner, one
    unwrap per key-encryption key found — so it costs two indexed reads however large the
    store; a key used only by owners in between is noticed when first used
    (:class:`AuthenticationFailed`). An empty or not yet migrated store passes."""
    sample = _data_key_sample(store)
    by_kek = {key.kek_id: key for key in sample}
    missing = []
    for kek_id, key in sorted(by_kek.items()):
        try:
            keyring.unwrap(kek_id, key.wrapped_key)
        except AuthenticationFailed:
            missing.append(kek_id)
    if missing:
        raise ConfigurationError(
            "the key ring cannot unwrap this store's data keys (key-encryption key(s) "
            f"{', '.join(missing)} missing or different): load the key ring the data was written with"
        )


def _data_key_sample(store: Store) -> list[DataKey]:
    try:
        with store.unit_of_work() as uow:
            first = uow.data_keys.where(limit=KEYRING_SAMPLE)
            last = uow.data_keys.where(order_by="-owner_id", limit=KEYRING_SAMPLE) if first else []
    except ConfigurationError:
        revision = getattr(store, "revision", None)
        if callable(revision) and revision() is None:
            return []  # not migrated yet: nothing is stored
        raise
    return [*first, *last]


@overload
def connect(
    url: str | Store | None = None,
    *,
    engine: Engine | None = None,
    regions: None = None,
    object_regions: None = None,
    objects: str | Mapping[str, str] | ObjectStore = "memory://fittwin",
    storage_options: Mapping[str, Any] | None = None,
    payments: PaymentGateway | None = None,
    keyring: KeyRing | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    pricing: Pricing | None = None,
    webhooks: WebhookSender | None = None,
    notifier: Notifier | None = None,
    settings: Settings | None = None,
    **postgres: Unpack[PostgresOptions],
) -> FitTwin: ...


@overload
def connect(
    url: None = None,
    *,
    engine: None = None,
    regions: Mapping[str, str | Store],
    object_regions: Mapping[str, str | ObjectStore] | None = None,
    objects: str | Mapping[str, str] | ObjectStore = "memory://fittwin",
    storage_options: Mapping[str, Any] | None = None,
    payments: PaymentGateway | None = None,
    keyring: KeyRing | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    pricing: Pricing | None = None,
    webhooks: WebhookSender | None = None,
    notifier: Notifier | None = None,
    settings: Settings | None = None,
    **postgres: Unpack[PostgresOptions],
) -> ShardRouter: ...


def connect(
    url: str | Store | None = None,
    *,
    engine: Engine | None = None,
    regions: Mapping[str, str | Store] | None = None,
    object_regions: Mapping[str, str | ObjectStore] | None = None,
    objects: str | Mapping[str, str] | ObjectStore = "memory://fittwin",
    storage_options: Mapping[str, Any] | None = None,
    payments: PaymentGateway | None = None,
    keyring: KeyRing | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    ids: Ids | None = None,
    pricing: Pricing | None = None,
    webhooks: WebhookSender | None = None,
    notifier: Notifier | None = None,
    settings: Settings | None = None,
    **postgres: Unpack[PostgresOptions],
) -> FitTwin | ShardRouter:
    """Wire FitTwin to a store and its other ports.

    With no arguments you get the embedded default: the in-memory store, ``memory://`` object
    storage, :class:`~fittwin_adapters.memory.FakePayments`, a fresh development key ring and
    argon2id hashing — it needs no services. ``url`` may name PostgreSQL instead
    (``postgresql+psycopg://user@host/db``; run ``ft.store.migrate()`` or ``fittwin db upgrade``
    first), or be a ready-made store; without it, ``FITTWIN_DATABASE_URL`` is used when set.
    ``engine`` is a host's SQLAlchemy engine to run on instead of a URL (its pool stays the
    host's: FitTwin never disposes it). The :class:`PostgresOptions` (``schema``, pool,
    time-outs) configure a PostgreSQL store.

    A persistent store needs ``payments=`` (``StripePayments(...)``; ``FakePayments()`` on
    purpose in tests; ``NoPayments()`` for analytics) and a key ring (``keyring=`` or
    ``FITTWIN_KEYRING``/``FITTWIN_KEYRING_FILE``; ``NoKeyRing()`` for analytics and exports);
    a key ring that cannot unwrap the store's data keys is refused at once.

    ``webhooks`` sends brand webhooks (``HttpWebhookSender()`` from ``fittwin_adapters.http``
    POSTs them; the default keeps them in memory) and ``notifier`` shopper notifications (the
    default keeps them in memory and logs the template); the outbox drives both, with retries
    (``docs/effects.md``).

    ``objects`` is an fsspec URL (``memory://``, ``file://``, ``s3://``), a ``region → URL``
    mapping, or an object store; ``storage_options`` go to fsspec/s3fs.
    ``ft.analytics.export_parquet`` writes through :class:`~fittwin_adapters.export.ParquetExport`.

    With ``regions`` (``{region: store URL or store}``) you get a
    :class:`~fittwin_core.routing.ShardRouter` instead: one FitTwin per region, each with its
    own store and its own object-store location from ``object_regions`` (``{region: fsspec
    URL or object store}``; by default ``<objects>/<region>``). The other ports are shared.
    """
    clock = clock or SystemClock()
    ids = ids or SystemIds()
    hasher = hasher or Argon2PasswordHasher()
    pricing = pricing or FlatRatePricing()
    webhooks = webhooks or LoggingWebhookSender()
    notifier = notifier or LoggingNotifier()
    settings = settings or Settings()
    fake: list[PaymentGateway] = []  # one fake provider for every memory shard

    def build(target: str | Store | Engine, object_store: ObjectStore, shard_settings: Settings) -> FitTwin:
        store = _open(target, clock=clock, ids=ids, postgres=postgres)
        try:
            persistent = not isinstance(store, MemoryStore)
            gateway = payments
            if gateway is None:
                if persistent:
                    raise ConfigurationError(
                        "a persistent store needs a payment gateway: pass payments=StripePayments(...) "
                        "(payments=FakePayments() on purpose in tests, NoPayments() for analytics)"
                    )
                if not fake:
                    fake.append(FakePayments(clock=clock))
                gateway = fake[0]
            ring = keyring or default_keyring(persistent)
            if not isinstance(ring, NoKeyRing):
                check_keyring(store, ring)
        except BaseException:
            if isinstance(target, str) or _is_engine(target):
                store.close()  # opened here (a host's engine itself stays open)
            raise
        ctx = Context(
            store=store,
            clock=clock,
            ids=ids,
            cipher=AesGcmFieldCipher(ring),
            hasher=hasher,
            payments=gateway,
            objects=object_store,
            pricing=pricing,
            webhooks=webhooks,
            notifier=notifier,
            settings=shard_settings,
            exports=ParquetExport(),
        )
        return FitTwin(ctx)

    if regions is None:
        if object_regions is not None:
            raise ConfigurationError("object_regions needs regions: pass objects= for a single store")
        if engine is not None and url is not None:
            raise ConfigurationError("pass either a store URL (or store) or engine=, not both")
        object_store = (
            objects
            if not isinstance(objects, str | Mapping)
            else FsspecObjectStore(objects, storage_options=storage_options)
        )
        return build(
            engine if engine is not None else (url if url is not None else database_url()),
            object_store,
            settings,
        )

    if url is not None or engine is not None:
        raise ConfigurationError("pass either a store URL or regions={region: URL}, not both")
    if not isinstance(regions, Mapping) or not regions:
        raise ConfigurationError("regions must be a non-empty {region: store URL} map")
    places = _object_places(regions, object_regions, objects)
    shards: dict[str, FitTwin] = {}
    try:
        for region, store_url in regions.items():
            region_name.check("regions", region)
            place = places[region]
            object_store = (
                place
                if not isinstance(place, str)
                else FsspecObjectStore({region: place}, storage_options=storage_options)
            )
            shards[region] = build(store_url, object_store, attrs.evolve(settings, region=region))
    except BaseException:
        for ft in shards.values():
            ft.close()
        raise
    return ShardRouter(shards)


def _open(target: str | Store | Engine, *, clock: Clock, ids: Ids, postgres: PostgresOptions) -> Store:
    """The store for a URL, a host's engine or a ready store."""
    if isinstance(target, str):
        return open_store(target, clock=clock, ids=ids, **postgres)
    if _is_engine(target):
        from fittwin_adapters.postgres import PostgresStore

        engine_store: Store = PostgresStore(target, clock=clock, ids=ids, **postgres)
        return engine_store
    if postgres:
        raise ConfigurationError(
            f"{', '.join(sorted(postgres))} configure a store connect() opens; this one is already "
            "open: pass them to PostgresStore(...)"
        )
    return target  # type: ignore[return-value]


def _is_engine(value: object) -> TypeGuard[Engine]:
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover - depends on the installed extras
        return False
    return isinstance(value, sa.Engine)


def _object_places(
    regions: Mapping[str, Any],
    object_regions: Mapping[str, str | ObjectStore] | None,
    objects: str | Mapping[str, str] | ObjectStore,
) -> Mapping[str, str | ObjectStore]:
    """Where each region keeps its media: ``object_regions``, else derived from ``objects``."""
    if object_regions is None:
        if isinstance(objects, str):
            base = objects.rstrip("/")
            object_regions = {region: f"{base}/{region}" for region in regions}
        elif isinstance(objects, Mapping):
            object_regions = objects
        else:
            object_regions = dict.fromkeys(regions, objects)
    missing = sorted(set(regions) - set(object_regions))
    if missing:
        raise ConfigurationError(f"object_regions has no location for region(s) {', '.join(missing)}")
    extra = sorted(set(object_regions) - set(regions))
    if extra:
        raise ConfigurationError(f"object_regions names region(s) without a store: {', '.join(extra)}")
    return object_regions


__all__ = [
    "DATABASE_URL_ENV",
    "KEYRING_ENV",
    "PostgresOptions",
    "check_keyring",
    "connect",
    "database_url",
    "default_keyring",
    "open_store",
]

"""The composition root: ``connect()`` picks the adapters and returns a wired :class:`FitTwin`
(or, for several regions, a :class:`~fittwin_core.routing.ShardRouter` of them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, overload

import attrs

from fittwin_adapters.crypto import AesGcmFieldCipher, Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.export import ParquetExport
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import FitTwin
from fittwin_core.domain import ConfigurationError
from fittwin_core.domain.users import region_name
from fittwin_core.ports import (
    Clock,
    Ids,
    KeyRing,
    ObjectStore,
    PasswordHasher,
    PaymentGateway,
    Pricing,
    Store,
    WebhookSender,
)
from fittwin_core.routing import ShardRouter
from fittwin_core.services.base import Context, LoggingWebhookSender, Settings
from fittwin_core.services.pricing import FlatRatePricing
from fittwin_core.system import SystemClock, SystemIds

KEYRING_ENV = "FITTWIN_KEYRING"


def open_store(
    url: str, *, clock: Clock, ids: Ids, pool_size: int = 5, max_overflow: int = 10, **options: Any
) -> Store:
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
        store: Store = PostgresStore(
            url, clock=clock, ids=ids, pool_size=pool_size, max_overflow=max_overflow, **options
        )
        return store
    raise ConfigurationError("unsupported store URL: use memory:// or postgresql+psycopg://user@host/db")


def default_keyring(url: str) -> KeyRing:
    """``FITTWIN_KEYRING``/``FITTWIN_KEYRING_FILE`` when set; otherwise a fresh key ring, but only
    for the memory store (a persistent store with a throw-away key ring would lose its data)."""
    if os.environ.get(KEYRING_ENV) or os.environ.get(f"{KEYRING_ENV}_FILE"):
        return LocalKeyRing.from_env(KEYRING_ENV)
    if url.startswith("memory:"):
        return LocalKeyRing.generate()
    raise ConfigurationError(
        f"a persistent store needs a key ring: set {KEYRING_ENV} (see docs/security.md) or pass keyring="
    )


@overload
def connect(
    url: str | Store = "memory://",
    *,
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
    settings: Settings | None = None,
    pool_size: int = 5,
    max_overflow: int = 10,
) -> FitTwin: ...


@overload
def connect(
    url: str | Store = "memory://",
    *,
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
    settings: Settings | None = None,
    pool_size: int = 5,
    max_overflow: int = 10,
) -> ShardRouter: ...


def connect(
    url: str | Store = "memory://",
    *,
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
    settings: Settings | None = None,
    pool_size: int = 5,
    max_overflow: int = 10,
) -> FitTwin | ShardRouter:
    """Wire FitTwin to a store and its other ports.

    With no arguments you get the embedded default: the in-memory store, ``memory://`` object
    storage, :class:`~fittwin_adapters.memory.FakePayments`, a fresh development key ring and
    argon2id hashing — it needs no services. ``url`` may name PostgreSQL instead
    (``postgresql+psycopg://user@host/db``; run ``ft.store.migrate()`` or ``fittwin db upgrade``
    first), or be a ready-made store. ``objects`` is an fsspec URL (``memory://``, ``file://``, ``s3://``), a
    ``region → URL`` mapping, or an object store; ``storage_options`` go to fsspec/s3fs.
    ``ft.analytics.export_parquet`` writes through :class:`~fittwin_adapters.export.ParquetExport`.

    With ``regions`` (``{region: store URL or store}``) you get a
    :class:`~fittwin_core.routing.ShardRouter` instead: one FitTwin per region, each with its
    own store and its own object-store location from ``object_regions`` (``{region: fsspec
    URL or object store}``; by default ``<objects>/<region>``). The other ports are shared.
    """
    clock = clock or SystemClock()
    ids = ids or SystemIds()
    hasher = hasher or Argon2PasswordHasher()
    payments = payments or FakePayments(clock=clock)
    pricing = pricing or FlatRatePricing()
    webhooks = webhooks or LoggingWebhookSender()
    settings = settings or Settings()

    def build(store_url: str | Store, object_store: ObjectStore, shard_settings: Settings) -> FitTwin:
        if isinstance(store_url, str):
            store = open_store(
                store_url, clock=clock, ids=ids, pool_size=pool_size, max_overflow=max_overflow
            )
            ring = keyring or default_keyring(store_url)
        else:
            store = store_url
            ring = keyring or default_keyring("memory:" if isinstance(store, MemoryStore) else "store")
        ctx = Context(
            store=store,
            clock=clock,
            ids=ids,
            cipher=AesGcmFieldCipher(ring),
            hasher=hasher,
            payments=payments,
            objects=object_store,
            pricing=pricing,
            webhooks=webhooks,
            settings=shard_settings,
            exports=ParquetExport(),
        )
        return FitTwin(ctx)

    if regions is None:
        if object_regions is not None:
            raise ConfigurationError("object_regions needs regions: pass objects= for a single store")
        object_store = (
            objects
            if not isinstance(objects, str | Mapping)
            else FsspecObjectStore(objects, storage_options=storage_options)
        )
        return build(url, object_store, settings)

    if url != "memory://":
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


__all__ = ["KEYRING_ENV", "connect", "default_keyring", "open_store"]

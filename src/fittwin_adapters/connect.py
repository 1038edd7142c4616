"""The composition root: ``connect()`` picks the adapters and returns a wired :class:`FitTwin`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fittwin_adapters.crypto import AesGcmFieldCipher, Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.export import ParquetExport
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import FitTwin
from fittwin_core.domain import ConfigurationError
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


def connect(
    url: str | Store = "memory://",
    *,
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
) -> FitTwin:
    """Wire FitTwin to a store and its other ports.

    With no arguments you get the embedded default: the in-memory store, ``memory://`` object
    storage, :class:`~fittwin_adapters.memory.FakePayments`, a fresh development key ring and
    argon2id hashing — it needs no services. ``url`` may name PostgreSQL instead
    (``postgresql+psycopg://user@host/db``; run ``ft.store.migrate()`` or ``fittwin db upgrade``
    first), or be a ready-made store. ``objects`` is an fsspec URL (``memory://``, ``file://``, ``s3://``), a
    ``region → URL`` mapping, or an object store; ``storage_options`` go to fsspec/s3fs.
    ``ft.analytics.export_parquet`` writes through :class:`~fittwin_adapters.export.ParquetExport`.
    """
    clock = clock or SystemClock()
    ids = ids or SystemIds()
    if isinstance(url, str):
        store = open_store(url, clock=clock, ids=ids, pool_size=pool_size, max_overflow=max_overflow)
        ring = keyring or default_keyring(url)
    else:
        store = url
        ring = keyring or default_keyring("memory:" if isinstance(store, MemoryStore) else "store")
    object_store = (
        objects
        if not isinstance(objects, str | Mapping)
        else FsspecObjectStore(objects, storage_options=storage_options)
    )
    ctx = Context(
        store=store,
        clock=clock,
        ids=ids,
        cipher=AesGcmFieldCipher(ring),
        hasher=hasher or Argon2PasswordHasher(),
        payments=payments or FakePayments(clock=clock),
        objects=object_store,
        pricing=pricing or FlatRatePricing(),
        webhooks=webhooks or LoggingWebhookSender(),
        settings=settings or Settings(),
        exports=ParquetExport(),
    )
    return FitTwin(ctx)


__all__ = ["KEYRING_ENV", "connect", "default_keyring", "open_store"]

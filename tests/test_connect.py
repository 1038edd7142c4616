"""``connect()``: where the store comes from, what a persistent store needs (payments, a key ring
that unwraps its data keys), and a FitTwin for analytics that needs neither."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.engine import URL

from fittwin_adapters import NoKeyRing, NoPayments, connect
from fittwin_adapters.crypto import AesGcmFieldCipher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_core.domain import Actor, ConfigurationError
from fittwin_core.domain.keys import DataKey
from fittwin_core.ports import Store
from fittwin_core.testing.clock import FrozenClock

pg = pytest.mark.postgres


def seal_some(store: Store, ring: LocalKeyRing, clock: FrozenClock, owners: int = 3) -> None:
    """Data keys wrapped under ``ring``, as sealing personal data leaves them."""
    cipher = AesGcmFieldCipher(ring)
    with store.unit_of_work() as uow:
        for _ in range(owners):
            wrapped = cipher.new_data_key()
            now = clock.now()
            uow.data_keys.add(
                DataKey(
                    owner_id=uuid.uuid4(),
                    key_id=wrapped.key_id,
                    kek_id=wrapped.kek_id,
                    wrapped_key=wrapped.blob,
                    created_at=now,
                    updated_at=now,
                )
            )
        uow.commit()


def test_the_embedded_default_needs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FITTWIN_DATABASE_URL", raising=False)
    ft = connect()
    assert isinstance(ft.context.store, MemoryStore) and isinstance(ft.context.payments, FakePayments)
    ft = connect("memory://", statement_timeout_ms=100, schema="elsewhere")  # PostgreSQL options: ignored
    assert isinstance(ft.context.store, MemoryStore)


@pg
def test_fittwin_database_url_is_read_when_no_url_is_given(
    postgres_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FITTWIN_DATABASE_URL", postgres_url.render_as_string(hide_password=False))
    with connect(payments=FakePayments(), keyring=LocalKeyRing.generate()) as ft:
        store: Any = ft.context.store
        assert type(store).__name__ == "PostgresStore"
        assert store.engine.url.database == postgres_url.database


@pg
def test_a_persistent_store_without_payments_names_the_fix(postgres_url: URL) -> None:
    url = postgres_url.render_as_string(hide_password=False)
    with pytest.raises(ConfigurationError, match=r"payments=StripePayments\(\.\.\.\).*FakePayments\(\)"):
        connect(url, keyring=LocalKeyRing.generate())
    with connect(url, payments=FakePayments(), keyring=LocalKeyRing.generate()) as ft:
        assert isinstance(ft.context.payments, FakePayments)  # on purpose, as tests do


def test_a_ready_store_takes_no_store_options() -> None:
    with pytest.raises(ConfigurationError, match="pass them to PostgresStore"):
        connect(MemoryStore(), pool_size=3)


def test_a_key_ring_that_cannot_unwrap_the_stores_data_keys_is_refused_at_once(
    store: Store, clock: FrozenClock
) -> None:
    ring = LocalKeyRing.generate()
    seal_some(store, ring, clock)
    payments = FakePayments(clock=clock)
    stranger = LocalKeyRing.generate()
    with pytest.raises(ConfigurationError) as raised:
        connect(store, keyring=stranger, payments=payments, clock=clock)
    assert ring.current_kek_id in str(raised.value) and "\n" not in str(raised.value)

    rotated = ring.rotated()  # holds the old key too
    connect(store, keyring=rotated, payments=payments, clock=clock).privacy.rotate_data_keys(
        actor=Actor.system()
    )
    only_new = LocalKeyRing(
        {rotated.current_kek_id: _key(rotated)}, rotated.current_kek_id, rotated.index_key
    )
    connect(store, keyring=only_new, payments=payments, clock=clock)  # every key re-wrapped: accepted
    with pytest.raises(ConfigurationError, match=rotated.current_kek_id):
        connect(store, keyring=ring, payments=payments, clock=clock)  # the old ring lacks the new key


def _key(ring: LocalKeyRing) -> bytes:
    import base64
    import json

    return base64.b64decode(json.loads(ring.to_json())["keys"][ring.current_kek_id])


def test_analytics_and_exports_run_without_a_key_ring(store: Store, clock: FrozenClock) -> None:
    seal_some(store, LocalKeyRing.generate(), clock)
    ft = connect(store, keyring=NoKeyRing(), payments=NoPayments(), clock=clock)
    assert ft.analytics.summary(actor=Actor.system()).orders == {}
    files = ft.analytics.export_parquet(f"memory://fittwin-no-keys/{uuid.uuid4().hex}", actor=Actor.system())
    assert isinstance(files, list)
    with pytest.raises(ConfigurationError, match="without a key ring"):
        ft.context.cipher.new_data_key()
    with pytest.raises(ConfigurationError, match="without a payment gateway"):
        ft.context.payments.retrieve_payment_intent("pi_1")

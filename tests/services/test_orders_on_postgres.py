"""Orders on PostgreSQL when the database connection dies in the middle of a checkout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core.domain import Actor, StoreUnavailable
from fittwin_core.ports import PriceLine, Quote
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import open_shop
from tests.support.snapshots import snapshot

pytestmark = pytest.mark.postgres


class KillingPricing:
    """Prices like the default, but the first time it is asked it terminates every other session
    of the database — the checkout's own connection included — from a separate connection."""

    def __init__(self, admin_url: Any) -> None:
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.armed = False

    def quote(
        self, *, lines: Sequence[PriceLine], currency: str, subtotal: int, shipping_country: str | None
    ) -> Quote:
        if self.armed:
            self.armed = False
            with self.admin.connect() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            assert killed >= 1
        return Quote()


def test_a_checkout_killed_mid_transaction_leaves_nothing_and_a_retry_places_one_order(
    postgres_url: Any, clock: FrozenClock, ids: Any
) -> None:
    from fittwin_adapters.postgres import PostgresStore

    pricing = KillingPricing(postgres_url)
    store = PostgresStore(postgres_url, clock=clock, ids=ids)
    ft = connect(
        store,
        pricing=pricing,
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    try:
        shop = open_shop(ft)
        before = snapshot(store)
        pricing.armed = True
        with pytest.raises(StoreUnavailable):
            shop.place(idempotency_key="dying-checkout")
        assert snapshot(store) == before
        first = shop.place(idempotency_key="dying-checkout")
        again = shop.place(idempotency_key="dying-checkout")
        assert again.id == first.id
        assert [
            o.id for o in ft.orders.for_user(shop.shopper.id, actor=Actor.shopper(shop.shopper.id)).items
        ] == [first.id]
        assert ft.catalog.variant(shop.variants["M"].id, actor=Actor.anonymous()).inventory == 9
    finally:
        ft.close()
        pricing.admin.dispose()

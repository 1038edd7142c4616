"""Concurrent checkouts with one idempotency key: one order, and every caller gets it.

Sixteen workers place the same order with the same key at the same moment. On PostgreSQL each
worker has a FitTwin (and a connection pool) of its own, as separate web workers would. The
invariant afterwards: exactly one order exists, its stock was taken once, and every response
is that order or the documented retryable :class:`IdempotencyKeyInUse`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    Conflict,
    FitTwinError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Order,
    TransientConflict,
)
from fittwin_core.ports import Store
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import open_shop

WORKERS = 16


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def fittwins(request: pytest.FixtureRequest) -> Iterator[list[FitTwin]]:
    """``WORKERS`` FitTwins over one store: on PostgreSQL each with its own pool, on memory
    one FitTwin shared by every worker (the memory store lives in one process)."""
    clock = FrozenClock()
    ids = SequentialIds(clock)
    keyring, payments = LocalKeyRing.generate(), FakePayments(clock=clock)
    objects = FsspecObjectStore(f"memory://fittwin-tests/{uuid.uuid4().hex}")
    hasher = Argon2PasswordHasher.owasp_minimum()

    def build(store: Store) -> FitTwin:
        return connect(
            store, objects=objects, payments=payments, keyring=keyring, hasher=hasher, clock=clock, ids=ids
        )

    if request.param == "memory":
        shared = build(MemoryStore(clock=clock, ids=ids))
        yield [shared] * WORKERS
        shared.close()
        return
    factory: Callable[..., Store] = request.getfixturevalue("postgres_store_factory")
    yield [build(factory(clock=clock, ids=ids, pool_size=1, max_overflow=1)) for _ in range(WORKERS)]


def test_concurrent_checkouts_with_one_key_place_one_order(fittwins: list[FitTwin]) -> None:
    shop = open_shop(fittwins[0], stock=50)
    variant = shop.variants["M"]
    shopper = Actor.shopper(shop.shopper.id)
    for round_ in range(3):
        start = threading.Barrier(WORKERS)

        def checkout(ft: FitTwin, key: str = f"checkout-{round_}") -> Order | FitTwinError:
            start.wait()
            try:
                return ft.orders.place(
                    shop.shopper.id,
                    [(variant.id, 2)],
                    shipping_address_id=shop.address.id,
                    billing_address_id=shop.address.id,
                    payment_method_id=shop.card.id,
                    idempotency_key=key,
                    actor=shopper,
                )
            except FitTwinError as exc:
                return exc

        with ThreadPoolExecutor(WORKERS) as pool:
            responses: list[Any] = list(pool.map(checkout, fittwins))

        placed = fittwins[0].orders.for_user(shop.shopper.id, actor=Actor.system()).items
        assert len(placed) == round_ + 1, "one order per key"
        order = placed[-1]
        for response in responses:
            assert isinstance(response, Order | IdempotencyKeyInUse), repr(response)
            if isinstance(response, Order):
                assert response.id == order.id
        assert fittwins[0].catalog.variant(variant.id, actor=Actor.system()).inventory == 50 - 2 * (
            round_ + 1
        )
    assert fittwins[0].orders.get(order.id, actor=Actor.system()).payment_intent_ref is not None


def test_a_key_reused_for_another_order_is_not_retryable(fittwins: list[FitTwin]) -> None:
    shop = open_shop(fittwins[0])
    shop.place(idempotency_key="k", actor=Actor.shopper(shop.shopper.id))
    with pytest.raises(IdempotencyKeyReused) as raised:
        shop.place([(shop.variants["L"].id, 1)], idempotency_key="k", actor=Actor.shopper(shop.shopper.id))
    assert isinstance(raised.value, Conflict) and not raised.value.retryable
    assert raised.value.code == "idempotency_key_reused"
    in_use = IdempotencyKeyInUse("a request with this idempotency key is in progress")
    assert isinstance(in_use, TransientConflict) and in_use.retryable
    assert in_use.code == "idempotency_key_in_use"

"""The memory and PostgreSQL stores against the shared analytics contract."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import FitTwin
from fittwin_core.ports import Store
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from fittwin_core.testing.contract.analytics import AnalyticsContract

_HASHER = Argon2PasswordHasher.owasp_minimum()


def _fit_twin(store: Store, clock: FrozenClock, ids: SequentialIds) -> FitTwin:
    return connect(
        store,
        objects=FsspecObjectStore(f"memory://fittwin-analytics/{uuid.uuid4().hex}"),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=_HASHER,
        clock=clock,
        ids=ids,
    )


class TestMemoryAnalytics(AnalyticsContract):
    @pytest.fixture
    def ft(self, clock: FrozenClock, ids: SequentialIds) -> Iterator[FitTwin]:
        app = _fit_twin(MemoryStore(clock=clock, ids=ids), clock, ids)
        yield app
        app.close()


@pytest.mark.postgres
class TestPostgresAnalytics(AnalyticsContract):
    @pytest.fixture
    def ft(
        self, clock: FrozenClock, ids: SequentialIds, postgres_store_factory: Callable[..., Store]
    ) -> Iterator[FitTwin]:
        app = _fit_twin(postgres_store_factory(clock=clock, ids=ids), clock, ids)
        yield app
        app.close()

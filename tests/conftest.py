"""Shared test configuration: hypothesis profiles, backends, and a FitTwin per backend.

Every service test that takes ``ft`` runs once per store backend: the in-memory store and
PostgreSQL (a throw-away database; see ``tests/support/postgres.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import FitTwin
from fittwin_core.ports import Store
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.postgres import postgres_databases, postgres_url
from tests.support.s3 import MotoS3, moto_s3_session

__all__ = ["postgres_databases", "postgres_url"]  # fixtures, re-exported for every test module

# Fast locally, more thorough in CI; FITTWIN_HYPOTHESIS_PROFILE overrides either.
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci", max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# The suite never picks up a developer's database: connect() without a URL stays on memory://.
os.environ.pop("FITTWIN_DATABASE_URL", None)

settings.load_profile(
    os.environ.get("FITTWIN_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)

BACKENDS = ["memory", pytest.param("postgres", marks=pytest.mark.postgres)]
_HASHER = Argon2PasswordHasher.owasp_minimum()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server, started once per session (skipped, or failed under CI=true, if it cannot start)."""
    yield from moto_s3_session()


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that only moves when a test moves it."""
    return FrozenClock()


@pytest.fixture
def ids(clock: FrozenClock) -> SequentialIds:
    """Reproducible ids following ``clock``."""
    return SequentialIds(clock)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def store(
    backend: str, clock: FrozenClock, ids: SequentialIds, request: pytest.FixtureRequest
) -> Iterator[Store]:
    """An empty store of the backend under test."""
    if backend == "memory":
        yield MemoryStore(clock=clock, ids=ids)
        return
    factory = request.getfixturevalue("postgres_store_factory")
    yield factory(clock=clock, ids=ids)


@pytest.fixture
def postgres_store_factory(postgres_url: object) -> Iterator[Callable[..., Store]]:
    """Builds ``PostgresStore``s on this test's fresh, migrated database (closed afterwards)."""
    from fittwin_adapters.postgres import PostgresStore

    stores: list[PostgresStore] = []

    def make(**kwargs: object) -> Store:
        store = PostgresStore(postgres_url, **kwargs)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def ft(store: Store, clock: FrozenClock, ids: SequentialIds) -> Iterator[FitTwin]:
    """FitTwin on the backend under test, with a frozen clock, fake payments and memory:// objects."""
    app = connect(
        store,
        objects=FsspecObjectStore(f"memory://fittwin-tests/{uuid.uuid4().hex}"),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=_HASHER,
        clock=clock,
        ids=ids,
    )
    yield app
    app.close()

"""The PostgreSQL store against the shared store contract."""

from __future__ import annotations

import pytest

from fittwin_adapters.postgres import PostgresStore
from fittwin_core.testing.contract.store import StoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, postgres_store: PostgresStore) -> PostgresStore:
        return postgres_store

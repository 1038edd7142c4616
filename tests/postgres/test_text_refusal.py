"""Text PostgreSQL cannot take becomes a ValidationError naming the column, and the pooled
connection survives it (the services refuse such text before it gets here; this is the
adapter's own guarantee for anything that calls a repository directly)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from fittwin_adapters.postgres import PostgresStore
from fittwin_adapters.postgres.store import STATEMENTS
from fittwin_core.domain import ValidationError

pytestmark = pytest.mark.postgres

BAD_TEXT = ["lone \ud800 surrogate", "\udfff", "nul \x00 inside"]


def backend_pid(store: PostgresStore) -> int:
    with store.unit_of_work() as uow:
        return int(uow.execute(sa.text("SELECT pg_backend_pid()"), table="store").scalar_one())


@pytest.mark.parametrize("value", BAD_TEXT, ids=repr)
def test_bad_text_in_a_lookup_is_a_validation_error_naming_the_column(postgres_url: Any, value: str) -> None:
    store = PostgresStore(postgres_url, pool_size=1, max_overflow=0)
    try:
        pid = backend_pid(store)
        with store.unit_of_work() as uow, pytest.raises(ValidationError) as raised:
            uow.user_profiles.where(email=value)
        assert raised.value.field == "user_profiles.email"
        assert raised.value.__cause__ is None and raised.value.__context__ is None
        assert backend_pid(store) == pid, "the pooled connection was kept"
    finally:
        store.close()


@pytest.mark.parametrize("value", BAD_TEXT, ids=repr)
def test_bad_text_in_bound_parameters_and_json_names_the_column(postgres_store: Any, value: str) -> None:
    events = STATEMENTS["event_logs"]
    with postgres_store.unit_of_work() as uow, pytest.raises(ValidationError) as raised:
        uow.execute(events.get, {"k_id": value}, table="event_logs")
    assert raised.value.field == "event_logs.id"
    with postgres_store.unit_of_work() as uow, pytest.raises(ValidationError) as raised:
        uow.execute(
            sa.select(events.table).where(events.table.c.metadata == {"note": value}), table="event_logs"
        )
    assert raised.value.field == "event_logs.metadata"

"""Time windows read only the monthly partitions they reach.

``orders`` and ``event_logs`` are partitioned by ranges of UUIDv7 ids; a ``created_at`` window
(analytics, listings through the repositories) carries the id bounds of
:func:`~fittwin_adapters.postgres.partitions.id_window` as well, so PostgreSQL prunes the other
months. The plans are read with ``EXPLAIN`` of the very statement and parameters the store
sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from fittwin_adapters.postgres import PostgresStore
from fittwin_adapters.postgres.partitions import ID_CLOCK_SLACK, id_window
from fittwin_core.domain.ids import uuid7, uuid7_floor
from fittwin_core.ports import after, at_most, within
from fittwin_core.schema import TABLES
from fittwin_core.testing.contract.store import uniquify
from fittwin_core.testing.world import seed_world

pytestmark = pytest.mark.postgres

JUNE_3, JUNE_20, JULY_20 = (datetime(2031, m, d, tzinfo=UTC) for m, d in ((6, 3), (6, 20), (7, 20)))
_n = iter(range(1, 1_000_000))


@pytest.fixture
def store(postgres_store: PostgresStore) -> PostgresStore:
    postgres_store.maintain_partitions(ahead_months=3, now=datetime(2031, 5, 10, tzinfo=UTC))
    return postgres_store


def _plans(store: PostgresStore, action: Callable[[], Any], table: str) -> list[set[str]]:
    """The partitions of ``table`` each statement on it reads, from its ``EXPLAIN``."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if re.search(rf"\b\w+\.{table}\b", statement):
            sent.append((statement, parameters))

    sa.event.listen(store._base_engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        sa.event.remove(store._base_engine, "before_cursor_execute", capture)
    assert sent, f"no statement on {table}"
    plans = []
    with store.engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        for statement, parameters in sent:
            lines = [row[0] for row in driver.execute("EXPLAIN " + statement, parameters)]
            plans.append(set(re.findall(rf"on ({table}_(?:p\d{{4}}_\d{{2}}|default))", "\n".join(lines))))
    return plans


def _month(moment: datetime, table: str = "orders") -> str:
    return f"{table}_p{moment.year:04d}_{moment.month:02d}"


def test_the_id_window_holds_every_id_minted_in_the_time_window() -> None:
    lower, upper = id_window(JUNE_3, JUNE_20)
    assert lower is not None and upper is not None
    for moment in (JUNE_3, JUNE_3 + timedelta(microseconds=1), JUNE_20 - timedelta(milliseconds=1)):
        minted = uuid7(int(moment.timestamp() * 1000), next(_n))
        assert lower <= minted < upper
    assert (lower, upper) == (uuid7_floor(JUNE_3 - ID_CLOCK_SLACK), uuid7_floor(JUNE_20 + ID_CLOCK_SLACK))
    too_early = uuid7(int((JUNE_3 - ID_CLOCK_SLACK).timestamp() * 1000) - 1, next(_n))
    too_late = uuid7(int((JUNE_20 + ID_CLOCK_SLACK).timestamp() * 1000), 0)
    assert too_early < lower and too_late >= upper
    assert id_window(None, None) == (None, None)


def test_analytics_windows_read_only_their_months(store: PostgresStore) -> None:
    assert _plans(store, lambda: store.orders_by_status(since=JUNE_3, until=JUNE_20), "orders") == [
        {_month(JUNE_3)}
    ]
    assert _plans(store, lambda: store.orders_by_status(since=JUNE_3, until=JULY_20), "orders") == [
        {_month(JUNE_3), _month(JULY_20)}
    ]
    for query in (store.returns_by_size, store.returns_by_reason):
        assert _plans(store, lambda q=query: q(since=JUNE_3, until=JUNE_20), "orders") == [{_month(JUNE_3)}]
    everything = _plans(store, store.orders_by_status, "orders")[0]
    assert {_month(JUNE_3), _month(JULY_20), "orders_default"} <= everything


def test_repository_windows_on_created_at_read_only_their_months(store: PostgresStore) -> None:
    world = seed_world(store)
    inside = attrs.evolve(
        uniquify(TABLES["orders"], world["orders"]),
        id=uuid7(int(JUNE_20.timestamp() * 1000) - 5, next(_n)),
        created_at=JUNE_20 - timedelta(milliseconds=4),
    )
    with store.unit_of_work() as uow:
        uow.orders.add(inside)
        uow.commit()
    found: list[Any] = []

    def read(**filters: Any) -> Callable[[], None]:
        def run() -> None:
            with store.unit_of_work() as uow:
                found.append([o.id for o in uow.orders.where(**filters)])

        return run

    assert _plans(store, read(created_at=within(JUNE_3, JUNE_20)), "orders") == [{_month(JUNE_3)}]
    assert _plans(store, read(created_at=at_most(JUNE_20), id=after(uuid7_floor(JUNE_3))), "orders") == [
        {_month(JUNE_3)}
    ]
    assert found == [[inside.id], [inside.id]]
    now = datetime.now(UTC)
    start, stop = now - timedelta(minutes=5), now + timedelta(minutes=5)
    with store.unit_of_work() as uow:  # event_logs too
        (logs,) = _plans(store, lambda: uow.event_logs.where(created_at=within(start, stop)), "event_logs")
    reachable = {_month(m, "event_logs") for m in (start - ID_CLOCK_SLACK, now, stop + ID_CLOCK_SLACK)}
    assert logs and logs <= reachable

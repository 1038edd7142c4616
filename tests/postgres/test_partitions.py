"""Monthly partitions of orders and event_logs: placement, maintenance, retention, purge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import PostgresStore, maintain_partitions
from fittwin_adapters.postgres.partitions import add_months, list_partitions, month_bounds, month_start
from fittwin_core.domain import ActorType, Conflict, EventLog
from fittwin_core.domain.ids import uuid7, uuid7_floor
from fittwin_core.schema import TABLES
from fittwin_core.testing.contract.store import fresh_id, uniquify
from fittwin_core.testing.world import World, seed_world
from tests.support.postgres import sql_engine

pytestmark = pytest.mark.postgres

MAY_2031 = datetime(2031, 5, 10, tzinfo=UTC)
_n = iter(range(1, 1_000_000))


def at(moment: datetime) -> UUID:
    """A UUIDv7 minted at ``moment``."""
    return uuid7(int(moment.timestamp() * 1000), next(_n))


def record(moment: datetime) -> EventLog:
    return EventLog(
        id=at(moment),
        actor_type=ActorType.SYSTEM,
        action="test",
        entity_type="tests",
        entity_id=fresh_id(),
        created_at=moment,
    )


@pytest.fixture
def world(postgres_store: PostgresStore) -> World:
    return seed_world(postgres_store)


@pytest.fixture
def sql(postgres_url: URL) -> Iterator[sa.Engine]:
    engine = sql_engine(postgres_url)
    yield engine
    engine.dispose()


def partition_of(sql: sa.Engine, table: str, row_id: UUID) -> str:
    with sql.connect() as conn:
        return str(
            conn.execute(
                sa.text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :id"),
                {"id": row_id},
            ).scalar_one()
        )


def partitions(sql: sa.Engine, table: str) -> list[str]:
    with sql.connect() as conn:
        return [p.name for p in list_partitions(conn, table)]


def test_month_bounds_are_the_uuid7_floors_of_month_starts() -> None:
    lower, upper = month_bounds(datetime(2031, 12, 1, tzinfo=UTC))
    assert lower == uuid7_floor(datetime(2031, 12, 1, tzinfo=UTC))
    assert upper == uuid7_floor(datetime(2032, 1, 1, tzinfo=UTC))
    assert add_months(datetime(2031, 1, 1, tzinfo=UTC), -13) == datetime(2029, 12, 1, tzinfo=UTC)
    assert month_start(datetime(2031, 3, 31, 23, 59, tzinfo=UTC)) == datetime(2031, 3, 1, tzinfo=UTC)


def test_migration_premakes_this_month_and_three_ahead(sql: sa.Engine) -> None:
    this_month = month_start(datetime.now(UTC))
    expected = [f"orders_p{add_months(this_month, k):%Y_%m}" for k in range(4)]
    assert partitions(sql, "orders")[-4:] == expected


def test_rows_land_in_their_months_partition(
    postgres_store: PostgresStore, sql: sa.Engine, world: World
) -> None:
    report = postgres_store.maintain_partitions(ahead_months=3, now=MAY_2031)
    assert sorted(report.created) == sorted(
        f"{table}_p2031_{month:02d}" for table in ("orders", "event_logs") for month in (5, 6, 7, 8)
    )
    june = datetime(2031, 6, 15, 8, 30, tzinfo=UTC)
    order = attrs.evolve(uniquify(TABLES["orders"], world["orders"]), id=at(june))
    first_instant = attrs.evolve(
        uniquify(TABLES["orders"], world["orders"]), id=uuid7_floor(datetime(2031, 7, 1, tzinfo=UTC))
    )
    log = record(june)
    with postgres_store.unit_of_work() as uow:
        uow.orders.add(order)
        uow.orders.add(first_instant)
        uow.event_logs.add(log)
        uow.commit()
    assert partition_of(sql, "orders", order.id) == "orders_p2031_06"
    assert partition_of(sql, "orders", first_instant.id) == "orders_p2031_07"
    assert partition_of(sql, "event_logs", log.id) == "event_logs_p2031_06"
    assert partition_of(sql, "orders", world["orders"].id) == "orders_default"  # January 2026
    # Foreign keys to the partitioned orders table still hold.
    with postgres_store.unit_of_work() as uow:
        item = attrs.evolve(uniquify(TABLES["order_items"], world["order_items"]), order_id=order.id)
        uow.order_items.add(item)
        uow.commit()
        assert uow.orders.get(order.id) == order


def test_maintenance_is_idempotent_and_moves_strays_out_of_default(
    postgres_store: PostgresStore, sql: sa.Engine, world: World
) -> None:
    october = datetime(2031, 10, 3, tzinfo=UTC)
    stray_log = record(october)
    stray_order = attrs.evolve(uniquify(TABLES["orders"], world["orders"]), id=at(october))
    item = attrs.evolve(uniquify(TABLES["order_items"], world["order_items"]), order_id=stray_order.id)
    with postgres_store.unit_of_work() as uow:
        uow.event_logs.add(stray_log)
        uow.orders.add(stray_order)
        uow.order_items.add(item)  # a reference into the DEFAULT partition
        uow.commit()
    assert partition_of(sql, "event_logs", stray_log.id) == "event_logs_default"
    assert partition_of(sql, "orders", stray_order.id) == "orders_default"
    report = postgres_store.maintain_partitions(ahead_months=3, now=datetime(2031, 9, 1, tzinfo=UTC))
    assert {"event_logs_p2031_10", "orders_p2031_10"} <= set(report.created)
    assert report.moved_rows == 2
    assert report.skipped == ()
    assert partition_of(sql, "event_logs", stray_log.id) == "event_logs_p2031_10"
    assert partition_of(sql, "orders", stray_order.id) == "orders_p2031_10"
    with postgres_store.unit_of_work() as uow:
        assert uow.event_logs.get(stray_log.id) == stray_log
        assert uow.orders.get(stray_order.id) == stray_order
        assert uow.order_items.get(item.id) == item
        # The relocation is not a change: the order's only audit row is its insert.
        assert [e.action for e in uow.event_logs.where(entity_id=stray_order.id)] == ["insert"]
        with pytest.raises(Conflict):  # the foreign key still guards the moved order
            uow.orders.delete(stray_order.id)
    again = postgres_store.maintain_partitions(ahead_months=3, now=datetime(2031, 9, 1, tzinfo=UTC))
    assert again.created == () and again.moved_rows == 0


def test_retention_drops_expired_months_and_keeps_orders_that_exist(
    postgres_store: PostgresStore, sql: sa.Engine, world: World
) -> None:
    postgres_store.maintain_partitions(ahead_months=3, now=MAY_2031)
    june_order = attrs.evolve(
        uniquify(TABLES["orders"], world["orders"]), id=at(datetime(2031, 6, 2, tzinfo=UTC))
    )
    logs = [record(datetime(2031, 5, 20, tzinfo=UTC)), record(datetime(2031, 8, 20, tzinfo=UTC))]
    with postgres_store.unit_of_work() as uow:
        uow.orders.add(june_order)
        uow.event_logs.add_many(logs)
        uow.commit()
    report = maintain_partitions(
        postgres_store.engine.url, ahead_months=3, retain_months=2, now=datetime(2031, 10, 5, tzinfo=UTC)
    )
    # Months ending by 1 August 2031 (two months before October) go; so do the empty ones the
    # migration made for the real current month and the three after it.
    assert sorted(name for name in report.dropped if "2031" in name) == [
        "event_logs_p2031_05",
        "event_logs_p2031_06",
        "event_logs_p2031_07",
        "orders_p2031_05",  # empty
        "orders_p2031_07",  # empty
    ]
    assert "orders_p2031_06" in partitions(sql, "orders")
    assert {"event_logs_p2031_10", "event_logs_p2032_01"} <= set(partitions(sql, "event_logs"))
    with postgres_store.unit_of_work() as uow:
        assert uow.event_logs.find(logs[0].id) is None
        assert uow.event_logs.get(logs[1].id) == logs[1]
        assert uow.orders.get(june_order.id) == june_order


def test_purge_event_logs_dry_run_then_real(postgres_store: PostgresStore, sql: sa.Engine) -> None:
    postgres_store.maintain_partitions(ahead_months=2, now=datetime(2031, 1, 1, tzinfo=UTC))
    january = [record(datetime(2031, 1, d, tzinfo=UTC)) for d in (2, 3, 4)]
    february = [record(datetime(2031, 2, d, tzinfo=UTC)) for d in (2, 3)]
    march = [record(datetime(2031, 3, 30, tzinfo=UTC))]
    strays = [record(datetime(2030, 6, 1, tzinfo=UTC)) for _ in range(2)]  # no partition: DEFAULT
    with postgres_store.unit_of_work() as uow:
        uow.event_logs.add_many([*january, *february, *march, *strays])
        uow.commit()
    with sql.connect() as conn:
        audit_before = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE id < :cut"),
            {"cut": uuid7_floor(datetime(2031, 3, 1, tzinfo=UTC))},
        ).scalar_one()
    assert audit_before == 7
    cutoff = datetime(2031, 3, 10, tzinfo=UTC)  # January and February are over; March runs on
    assert postgres_store.purge_event_logs(cutoff, dry_run=True) == 7
    assert set(partitions(sql, "event_logs")) >= {"event_logs_p2031_01", "event_logs_p2031_02"}
    with postgres_store.unit_of_work() as uow:
        assert uow.event_logs.count(action="test") == 8
    assert postgres_store.purge_event_logs(cutoff) == 7
    with postgres_store.unit_of_work() as uow:
        assert [e.id for e in uow.event_logs.where(action="test")] == [march[0].id]
    assert not {"event_logs_p2031_01", "event_logs_p2031_02", "event_logs_p2030_06"} & set(
        partitions(sql, "event_logs")
    )
    assert postgres_store.purge_event_logs(cutoff) == 0
    assert postgres_store.purge_event_logs(cutoff - timedelta(days=400), dry_run=True) == 0

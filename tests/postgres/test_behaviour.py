"""What the PostgreSQL store promises beyond the shared contract: database-side guards,
concurrency across processes, lost connections, error translation."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import PostgresStore
from fittwin_core.domain import (
    Actor,
    BrandUserStatus,
    ConfigurationError,
    Conflict,
    IdempotencyRecord,
    InsufficientInventory,
    NotFound,
    ReferralEvent,
    ReferralEventType,
    StoreUnavailable,
    TransientConflict,
    ValidationError,
)
from fittwin_core.domain.audit import audit_diff
from fittwin_core.domain.converter import unstructure
from fittwin_core.schema import TABLES
from fittwin_core.testing.contract.store import fresh_id, uniquify
from fittwin_core.testing.world import WORLD_TIME, World, seed_world
from tests.support.postgres import sql_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(postgres_store: PostgresStore) -> World:
    return seed_world(postgres_store)


@pytest.fixture
def sql(postgres_url: URL) -> Iterator[sa.Engine]:
    """Plain SQL from outside the library (a DBA's psql session)."""
    engine = sql_engine(postgres_url)
    yield engine
    engine.dispose()


def _sqlstate(exc: pytest.ExceptionInfo[sa.exc.DBAPIError]) -> str | None:
    return getattr(exc.value.orig, "sqlstate", None)


# ---------------------------------------------------------------------------- event_logs guard


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE event_logs SET action = 'forged'",
        "DELETE FROM event_logs",
        "TRUNCATE event_logs",
        "TRUNCATE event_logs_default",
    ],
)
def test_event_logs_refuse_changes_in_the_database(sql: sa.Engine, world: World, statement: str) -> None:
    with sql.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar_one()
    assert before > 0
    with sql.begin() as conn, pytest.raises(sa.exc.DBAPIError) as raised:
        conn.execute(sa.text(statement))
    assert _sqlstate(raised) == "23001"
    assert "append-only" in str(raised.value.orig)
    with sql.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar_one() == before


def test_monthly_event_log_partitions_refuse_truncate_too(sql: sa.Engine) -> None:
    with sql.connect() as conn:
        monthly = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'event_logs'::regclass AND c.relname <> 'event_logs_default'"
            )
        ).scalars()
        names = list(monthly)
    assert len(names) >= 4
    for name in names:
        with sql.begin() as conn, pytest.raises(sa.exc.DBAPIError) as raised:
            conn.execute(sa.text(f"TRUNCATE {name}"))
        assert _sqlstate(raised) == "23001"


def test_plain_sql_changes_are_audited_as_the_system(sql: sa.Engine, world: World) -> None:
    variant = world["product_variants"]
    with sql.begin() as conn:
        conn.execute(sa.text("UPDATE product_variants SET inventory = 3 WHERE id = :id"), {"id": variant.id})
        rows = conn.execute(
            sa.text(
                "SELECT actor_type::text, actor_id, action, entity_type, metadata, created_at = now() "
                "FROM event_logs WHERE entity_id = :id AND action = 'update'"
            ),
            {"id": variant.id},
        ).all()
        stamped = conn.execute(
            sa.text("SELECT updated_at = now() FROM product_variants WHERE id = :id"), {"id": variant.id}
        ).scalar_one()
    assert rows == [
        (
            "system",
            None,
            "update",
            "product_variants",
            {"op": "update", "old": {"inventory": 10}, "new": {"inventory": 3}},
            True,
        )
    ]
    assert stamped  # plain SQL did not set updated_at: the trigger stamped the time


# ---------------------------------------------------------------------------- audit rows


def test_audit_rows_are_exactly_audit_diff(postgres_store: PostgresStore, world: World) -> None:
    table = TABLES["brand_users"]
    actor = Actor.brand_user(world["brand_users"].id)
    member = uniquify(table, world["brand_users"])
    member = attrs.evolve(member, invite_token=fresh_id())
    accepted = attrs.evolve(
        member, status=BrandUserStatus.ACTIVE, invite_token=None, updated_at=WORLD_TIME + timedelta(hours=1)
    )
    with postgres_store.unit_of_work(actor) as uow:
        uow.brand_users.add(member)
        uow.brand_users.update(accepted)
        uow.brand_users.delete(member.id)
        uow.commit()
    with postgres_store.unit_of_work() as uow:
        logged = uow.event_logs.where(entity_id=member.id, order_by="id")
    secret = table.secret_columns
    assert [(e.action, e.entity_type, e.actor) for e in logged] == [
        ("insert", "brand_users", actor),
        ("update", "brand_users", actor),
        ("delete", "brand_users", actor),
    ]
    assert [e.metadata for e in logged] == [
        audit_diff("insert", None, unstructure(member), secret_columns=secret),
        audit_diff("update", unstructure(member), unstructure(accepted), secret_columns=secret),
        audit_diff("delete", unstructure(accepted), None, secret_columns=secret),
    ]
    assert logged[1].metadata == {
        "op": "update",
        "old": {"status": "invited", "invite_token": "<redacted>"},
        "new": {"status": "active", "invite_token": None},
    }
    assert all(e.id.version == 7 for e in logged)
    assert len({e.created_at for e in logged}) == 1  # the transaction's time


# ---------------------------------------------------------------------------- concurrency


def _buyer(url: str, variant_id: str, worker: int, attempts: int) -> dict[str, int]:
    from uuid import UUID

    from fittwin_adapters.postgres import PostgresStore
    from fittwin_core.domain import InsufficientInventory, TransientConflict

    store = PostgresStore(url, pool_size=1, max_overflow=0)
    outcome = {"sold": 0, "refused": 0, "transient": 0, "negative": 0}
    try:
        for attempt in range(attempts):
            with store.unit_of_work() as uow:
                try:
                    variant, _ = uow.product_variants.adjust_inventory(UUID(variant_id), -1)
                    uow.idempotency_keys.add(
                        IdempotencyRecord(
                            scope="race.sale",
                            key=f"{worker}-{attempt}",
                            request_hash="h",
                            result_id=variant.id,
                            created_at=datetime.now(UTC),
                        )
                    )
                    uow.commit()
                except InsufficientInventory:
                    outcome["refused"] += 1
                    continue
                except TransientConflict:
                    outcome["transient"] += 1
                    continue
            outcome["sold"] += 1
            outcome["negative"] += variant.inventory < 0
    finally:
        store.close()
    return outcome


def test_eight_processes_racing_for_fifty_units_sell_exactly_fifty(
    postgres_store: PostgresStore, postgres_url: URL, world: World
) -> None:
    variant = attrs.evolve(world["product_variants"], inventory=50)
    with postgres_store.unit_of_work() as uow:
        uow.product_variants.update(variant)
        uow.commit()
    url = postgres_url.render_as_string(hide_password=False)
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        outcomes = pool.starmap(_buyer, [(url, str(variant.id), worker, 50) for worker in range(8)])
    total = {key: sum(o[key] for o in outcomes) for key in outcomes[0]}
    assert total == {"sold": 50, "refused": 350, "transient": 0, "negative": 0}
    with postgres_store.unit_of_work() as uow:
        assert uow.product_variants.get(variant.id).inventory == 0
        assert uow.idempotency_keys.count(scope="race.sale") == 50
        updates = uow.event_logs.where(entity_id=variant.id, action="update")
    stock = [e.metadata["new"]["inventory"] for e in updates if "inventory" in e.metadata["new"]]
    assert min(stock) == 0 and len(stock) == 51  # the reset to 50, then fifty sales


def test_clamped_take_reports_what_it_took(postgres_store: PostgresStore, world: World) -> None:
    variant = world["product_variants"]
    with postgres_store.unit_of_work() as uow:
        updated, applied = uow.product_variants.adjust_inventory(variant.id, -25, clamp_at_zero=True)
        assert (updated.inventory, applied) == (0, -10)
        with pytest.raises(InsufficientInventory) as raised:
            uow.product_variants.adjust_inventory(variant.id, -1)
        assert (raised.value.requested, raised.value.available) == (1, 0)


def test_opposite_lock_orders_surface_as_a_transient_conflict(
    postgres_store: PostgresStore, world: World
) -> None:
    table = TABLES["brands"]
    second = uniquify(table, world["brands"])
    with postgres_store.unit_of_work() as uow:
        uow.brands.add(second)
        uow.commit()
    first_id, second_id = world["brands"].id, second.id
    both_locked_one = threading.Barrier(2)
    errors: list[BaseException] = []

    def lock(a: Any, b: Any) -> None:
        with postgres_store.unit_of_work() as uow:
            uow.brands.lock(a)
            both_locked_one.wait(5)
            try:
                uow.brands.lock(b)
            except BaseException as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=lock, args=(first_id, second_id)),
        threading.Thread(target=lock, args=(second_id, first_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1
    assert isinstance(errors[0], TransientConflict)
    assert "deadlock" in str(errors[0])


def test_statement_timeout_surfaces_as_a_transient_conflict(postgres_url: URL, world: World) -> None:
    store = PostgresStore(postgres_url, statement_timeout_ms=200)
    try:
        with store.unit_of_work() as holder:
            holder.brands.lock(world["brands"].id)
            with store.unit_of_work() as waiter, pytest.raises(TransientConflict):
                waiter.brands.lock(world["brands"].id)
    finally:
        store.close()


# ---------------------------------------------------------------------------- lost connections


def _terminate(sql: sa.Engine, pid: int) -> None:
    with sql.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def _backend_pid(uow: Any) -> int:
    return int(uow.connection().execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_killed_backend_leaves_nothing_and_the_store_goes_on(
    postgres_store: PostgresStore, sql: sa.Engine, world: World
) -> None:
    table = TABLES["brands"]
    lost, kept = uniquify(table, world["brands"]), uniquify(table, world["brands"])
    with postgres_store.unit_of_work() as uow:
        uow.brands.add(lost)
        _terminate(sql, _backend_pid(uow))
        with pytest.raises(StoreUnavailable):
            uow.brands.add(kept)
    with postgres_store.unit_of_work() as uow:
        assert uow.brands.find(lost.id) is None
        assert uow.event_logs.where(entity_id=lost.id) == []
        uow.brands.add(kept)
        uow.commit()
    with postgres_store.unit_of_work() as uow:
        assert uow.brands.get(kept.id) == kept


def test_retrying_after_a_lost_connection_places_exactly_one_order(
    postgres_store: PostgresStore, sql: sa.Engine, world: World
) -> None:
    order = uniquify(TABLES["orders"], world["orders"])
    key = ("orders.place", "retry-key")
    kills = iter([True, False, False])

    def place() -> Any:
        with postgres_store.unit_of_work(Actor.shopper(order.user_id)) as uow:
            existing = uow.idempotency_keys.find(key)
            if existing is not None:
                return uow.orders.get(existing.result_id)
            uow.idempotency_keys.add(
                IdempotencyRecord(
                    scope=key[0], key=key[1], request_hash="h", result_id=order.id, created_at=WORLD_TIME
                )
            )
            uow.orders.add(order)
            if next(kills):
                _terminate(sql, _backend_pid(uow))
            uow.commit()
            return order

    results = []
    for _attempt in range(3):
        try:
            results.append(place())
        except StoreUnavailable:
            results.append("unavailable")
    assert results == ["unavailable", order, order]
    with postgres_store.unit_of_work() as uow:
        assert uow.orders.count(user_id=order.user_id) == 2  # the world's order and this one
        assert uow.idempotency_keys.count(scope="orders.place", key="retry-key") == 1
        assert len(uow.event_logs.where(entity_id=order.id, action="insert")) == 1


# ---------------------------------------------------------------------------- errors


def test_after_a_refused_write_the_unit_of_work_asks_for_a_rollback(
    postgres_store: PostgresStore, world: World
) -> None:
    table = TABLES["brands"]
    earlier, fresh = uniquify(table, world["brands"]), uniquify(table, world["brands"])
    with postgres_store.unit_of_work() as uow:
        uow.brands.add(earlier)
        with pytest.raises(Conflict, match="brands_name_key"):
            uow.brands.add(attrs.evolve(fresh, name=world["brands"].name))
        with pytest.raises(Conflict, match="rollback"):
            uow.brands.find(fresh.id)
        with pytest.raises(Conflict, match="rollback"):  # never a silent loss of `earlier`
            uow.commit()
        uow.rollback()
        uow.brands.add(fresh)
        uow.commit()
    with postgres_store.unit_of_work() as uow:
        assert uow.brands.get(fresh.id) == fresh
        assert uow.brands.find(earlier.id) is None


def test_a_unit_of_work_goes_on_after_commit(postgres_store: PostgresStore, world: World) -> None:
    table = TABLES["brands"]
    first, second = uniquify(table, world["brands"]), uniquify(table, world["brands"])
    with postgres_store.unit_of_work() as uow:
        uow.brands.add(first)
        uow.commit()
        uow.brands.add(second)
    with postgres_store.unit_of_work() as uow:
        assert uow.brands.find(first.id) == first
        assert uow.brands.find(second.id) is None


def test_conflict_messages_name_the_index_not_the_values(postgres_store: PostgresStore, world: World) -> None:
    user = world["user_profiles"]
    twin = attrs.evolve(uniquify(TABLES["user_profiles"], user), email=user.email)
    with postgres_store.unit_of_work() as uow, pytest.raises(Conflict) as raised:
        uow.user_profiles.add(twin)
    assert "idx_user_profiles_email_lower" in str(raised.value)
    assert user.email not in str(raised.value)


def test_check_violations_become_validation_errors(postgres_store: PostgresStore, world: World) -> None:
    with attrs.validators.disabled():
        broken = attrs.evolve(world["product_variants"], inventory=-1)
    with postgres_store.unit_of_work() as uow, pytest.raises(ValidationError) as raised:
        uow.product_variants.update(broken)
    assert "ck_product_variants_inventory_nonnegative" in str(raised.value)


def test_deleting_a_referenced_order_conflicts_and_a_missing_reference_is_not_found(
    postgres_store: PostgresStore, world: World
) -> None:
    with postgres_store.unit_of_work() as uow:
        with pytest.raises(Conflict, match=r"still referenced \(fk_(order_items|referral_events)_order_id\)"):
            uow.orders.delete(world["orders"].id)
        uow.rollback()
        orphan = attrs.evolve(uniquify(TABLES["order_items"], world["order_items"]), order_id=fresh_id())
        with pytest.raises(NotFound) as raised:
            uow.order_items.add(orphan)
        assert raised.value.entity == "orders"


def test_bad_urls_and_unreachable_servers() -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore("mysql://root@localhost/db")
    with pytest.raises(ConfigurationError):
        PostgresStore("not a url")
    with pytest.raises(StoreUnavailable) as raised:
        PostgresStore("postgresql+psycopg://someone:s3cret@127.0.0.1:9/db")
    assert "s3cret" not in str(raised.value)


def test_an_unmigrated_database_asks_for_migrate(postgres_databases: Any) -> None:
    url = postgres_databases.new_database(migrated=False)
    try:
        store = PostgresStore(url)
        with store.unit_of_work() as uow, pytest.raises(ConfigurationError, match="migrate"):
            uow.brands.find(fresh_id())
        store.migrate()
        with store.unit_of_work() as uow:
            assert uow.brands.find(fresh_id()) is None
        store.close()
    finally:
        postgres_databases.drop(url)


# ---------------------------------------------------------------------------- bulk and raw rows


def test_bulk_referral_events_through_copy(postgres_store: PostgresStore, world: World) -> None:
    rid = world["referrals"].rid
    events = [
        ReferralEvent(
            id=fresh_id(),
            rid=rid,
            event_type=ReferralEventType.CLICK,
            ip_hash=f"{n:032x}",
            metadata={"ua": "Mozilla/5.0", "score": n / 7, "big": 1.5e20},
            created_at=WORLD_TIME,
        )
        for n in range(2000)
    ]
    with postgres_store.unit_of_work() as uow:
        uow.referral_events.add_many(events)
        uow.commit()
    with postgres_store.unit_of_work() as uow:
        stored = uow.referral_events.where(rid=rid, event_type=ReferralEventType.CLICK, order_by="ip_hash")
    assert [e.id for e in stored][-2000:] == [e.id for e in sorted(events, key=lambda e: e.ip_hash or "")]
    assert {e.id: e for e in stored}[events[5].id] == events[5]


def test_bulk_insert_with_a_duplicate_inserts_nothing(postgres_store: PostgresStore, world: World) -> None:
    rid = world["referrals"].rid
    first = ReferralEvent(id=fresh_id(), rid=rid, event_type=ReferralEventType.CLICK, created_at=WORLD_TIME)
    with postgres_store.unit_of_work() as uow:
        with pytest.raises(Conflict):
            uow.referral_events.add_many(
                [first, attrs.evolve(first, event_type=ReferralEventType.CONVERSION)]
            )
        uow.rollback()
        assert uow.referral_events.find(first.id) is None


def test_raw_rows_are_json(postgres_store: PostgresStore, world: World) -> None:
    for table in TABLES:
        rows = postgres_store.raw_rows(table)
        json.dumps(rows)
        assert rows, table
        if table in world.rows:
            assert unstructure(world[table]) in rows
    (key,) = postgres_store.raw_rows("data_keys")
    assert isinstance(key["wrapped_key"], str)


def test_the_driver_error_types_stay_inside(postgres_store: PostgresStore, world: World) -> None:
    with postgres_store.unit_of_work() as uow:
        try:
            uow.brands.add(world["brands"])
        except Conflict as exc:
            # No reference to the driver's error at all (its message quotes the values).
            assert exc.__cause__ is None and exc.__context__ is None
            assert exc.sqlstate == "23505"
            assert not isinstance(exc, psycopg.Error | sa.exc.SQLAlchemyError)


def test_a_catalogue_row_changed_is_read_as_changed_by_every_unit_of_work(
    postgres_store: PostgresStore, postgres_url: URL, world: World
) -> None:
    # Entities of products, size charts and fit maps are built once per row value: a change
    # (here through another store, as by another process) is seen by the next read all the same.
    product = world["products"]
    writer = PostgresStore(postgres_url)
    try:
        with postgres_store.unit_of_work() as uow:
            assert uow.products.get(product.id) == product
            assert uow.products.get(product.id) is uow.products.get(product.id)  # built once
        renamed = attrs.evolve(product, title="Renamed tee")
        with writer.unit_of_work() as uow:
            uow.products.update(renamed)
            uow.commit()
        with postgres_store.unit_of_work() as uow:
            assert uow.products.get(product.id) == renamed
    finally:
        writer.close()


def test_a_relaxed_transaction_commits_without_waiting_for_the_disk_and_the_next_waits_again(
    postgres_store: PostgresStore,
) -> None:
    def setting(uow: Any) -> str:
        return str(uow.execute(sa.text("SHOW synchronous_commit"), table="settings").scalar_one())

    with postgres_store.unit_of_work() as uow:
        assert setting(uow) == "on"
        uow.relax_durability()
        assert setting(uow) == "off"  # for this transaction only
        uow.commit()
        assert setting(uow) == "on"  # the next transaction of the same unit of work
    with postgres_store.unit_of_work() as uow:
        assert setting(uow) == "on"  # and the connection given back to the pool

"""FitTwin in a schema of its own: beside a host's tables, beside another FitTwin, refusing to
overwrite what is not its own, and taking later revisions along."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import PostgresStore, current_revision, downgrade, upgrade
from fittwin_adapters.postgres.migrate import MIGRATIONS_DIR, alembic_config, history
from fittwin_core.domain import ConfigurationError
from fittwin_core.schema import TABLES
from fittwin_core.testing.contract.store import uniquify
from fittwin_core.testing.world import seed_world
from tests.support.postgres import TestDatabases, sql_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_url(postgres_databases: TestDatabases) -> Iterator[URL]:
    """A database with nothing in it yet."""
    url = postgres_databases.new_database(migrated=False)
    try:
        yield url
    finally:
        postgres_databases.drop(url)


def _sql(url: URL, statement: str, **params: Any) -> list[Any]:
    """Plain SQL in a session of the database's default search path (``"$user", public``)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def _relations(url: URL, schema: str) -> set[str]:
    rows = _sql(
        url,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p')",
        s=schema,
    )
    return {name for (name,) in rows}


def _count(store: PostgresStore, table: str) -> int:
    with store.unit_of_work() as uow:
        return int(getattr(uow, table).count())


def test_fittwin_migrates_beside_a_host_products_table_and_both_work(empty_url: URL) -> None:
    _sql(empty_url, "CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL)")
    _sql(empty_url, "INSERT INTO products VALUES ('HOST-1', 'the host''s own product')")

    upgrade(empty_url)
    with PostgresStore(empty_url) as store:
        world = seed_world(store)
        _sql(empty_url, "INSERT INTO products VALUES ('HOST-2', 'added by the host later')")
        with store.unit_of_work() as uow:
            assert [p.id for p in uow.products.where()] == [world["products"].id]

    assert _sql(empty_url, "SELECT sku FROM products ORDER BY sku") == [("HOST-1",), ("HOST-2",)]
    assert _relations(empty_url, "public") == {"products"}
    assert {"products", "orders", "event_logs", "fittwin_alembic_version"} <= _relations(empty_url, "fittwin")
    assert current_revision(empty_url) is not None


def test_two_fittwin_schemas_in_one_database_are_independent(empty_url: URL) -> None:
    upgrade(empty_url, schema="shop_a")
    upgrade(empty_url, schema="shop_b")
    with PostgresStore(empty_url, schema="shop_a") as a, PostgresStore(empty_url, schema="shop_b") as b:
        world = seed_world(a)
        assert _count(a, "brands") == 1 and _count(a, "event_logs") > 0
        assert _count(b, "brands") == 0 and _count(b, "event_logs") == 0  # audit rows stay home

        seed_world(b)  # the very same ids and unique keys: nothing is shared
        renamed = attrs.evolve(world["brands"], name="Only in A")
        with a.unit_of_work() as uow:
            uow.brands.update(renamed)
            uow.commit()
        with b.unit_of_work() as uow:
            assert uow.brands.get(world["brands"].id).name == world["brands"].name
        with a.unit_of_work() as uow:  # citext, shared by both schemas, compares in both
            assert uow.user_profiles.where(email=world["user_profiles"].email.upper())

        downgrade(empty_url, "base", schema="shop_a")
        assert _relations(empty_url, "shop_a") == {"fittwin_alembic_version"}
        with b.unit_of_work() as uow:
            assert uow.user_profiles.where(email=world["user_profiles"].email.upper())
            assert uow.brands.count() == 1
    assert _sql(
        empty_url, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'citext'"
    ) == [("public",)]


def test_a_foreign_table_in_the_way_is_one_line_naming_it_and_nothing_is_created(empty_url: URL) -> None:
    _sql(empty_url, "CREATE TABLE products (sku text PRIMARY KEY)")
    with pytest.raises(ConfigurationError) as raised:
        upgrade(empty_url, schema="public")
    message = str(raised.value)
    assert '"products"' in message and "schema public" in message and "\n" not in message
    assert _relations(empty_url, "public") == {"products"}
    assert _sql(empty_url, "SELECT count(*) FROM pg_type WHERE typname = 'order_status'") == [(0,)]
    assert _sql(empty_url, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'fittwin%'") == [(0,)]
    assert _sql(empty_url, "SELECT count(*) FROM pg_extension WHERE extname = 'citext'") == [(0,)]


def test_a_foreign_type_in_the_way_is_named_too(empty_url: URL) -> None:
    _sql(empty_url, "CREATE SCHEMA shop")
    _sql(empty_url, "CREATE TYPE shop.order_status AS ENUM ('open', 'shipped')")
    with pytest.raises(ConfigurationError, match='"order_status"'):
        upgrade(empty_url, schema="shop")
    assert _relations(empty_url, "shop") == set()


def test_a_later_revision_with_unqualified_names_lands_in_the_configured_schema(
    empty_url: URL, tmp_path: Path
) -> None:
    (tmp_path / "r9001_gift_notes.py").write_text(
        textwrap.dedent(
            '''
            """Gift notes on orders (a revision as later ones are written: unqualified names)."""
            import sqlalchemy as sa
            from alembic import op

            revision = "9001_gift_notes"
            down_revision = "HEAD"
            branch_labels = None
            depends_on = None


            def upgrade() -> None:
                op.add_column("orders", sa.Column("gift_note", sa.Text(), nullable=True))
                op.create_table("gift_cards", sa.Column("id", sa.Integer(), primary_key=True))
                op.create_index("idx_orders_gift_note", "orders", ["gift_note"])


            def downgrade() -> None:
                op.drop_index("idx_orders_gift_note", table_name="orders")
                op.drop_table("gift_cards")
                op.drop_column("orders", "gift_note")
            '''
        ).replace("HEAD", history()[0][0])  # on top of the newest revision FitTwin ships
    )
    _sql(empty_url, "CREATE TABLE orders (id int PRIMARY KEY)")  # a host's table of the same name
    upgrade(empty_url)  # FitTwin in fittwin, at 0001
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            config = alembic_config(conn, schema="fittwin")
            config.set_main_option("path_separator", "os")
            config.set_main_option(
                "version_locations", os.pathsep.join([str(MIGRATIONS_DIR / "versions"), str(tmp_path)])
            )
            command.upgrade(config, "heads")
    finally:
        engine.dispose()

    def columns(schema: str) -> set[str]:
        rows = _sql(
            empty_url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = 'orders'",
            s=schema,
        )
        return {name for (name,) in rows}

    assert "gift_note" in columns("fittwin")
    assert columns("public") == {"id"}
    assert "gift_cards" in _relations(empty_url, "fittwin")
    assert "gift_cards" not in _relations(empty_url, "public")
    assert current_revision(empty_url) == "9001_gift_notes"


def test_triggers_and_functions_resolve_their_own_schema_whatever_the_session_path(
    empty_url: URL,
) -> None:
    upgrade(empty_url)
    # A decoy event_logs in public, first on a plain session's search path.
    _sql(empty_url, "CREATE TABLE public.event_logs (LIKE fittwin.event_logs)")
    with PostgresStore(empty_url) as store:
        world = seed_world(store)
        before = _count(store, "event_logs")
        _sql(
            empty_url,
            "UPDATE fittwin.product_variants SET inventory = 3 WHERE id = :id",
            id=world["product_variants"].id,
        )
        assert _count(store, "event_logs") == before + 1
    assert _sql(empty_url, "SELECT count(*) FROM public.event_logs") == [(0,)]
    (made,) = _sql(empty_url, "SELECT fittwin.fittwin_uuid7()")
    assert made[0].version == 7


def test_an_existing_deployment_in_public_is_used_on_purpose_and_never_forked(empty_url: URL) -> None:
    upgrade(empty_url, schema="public")  # as deployments made before schemas were configurable
    with PostgresStore(empty_url, schema="public") as legacy:
        seed_world(legacy)

    with pytest.raises(ConfigurationError, match=r"in schema public, not fittwin: pass schema='public'"):
        PostgresStore(empty_url)
    with pytest.raises(ConfigurationError, match="schema='public'"):
        upgrade(empty_url)
    assert _sql(empty_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'fittwin'") == [(0,)]

    upgrade(empty_url, schema="public")  # at head already: nothing to do
    with PostgresStore(empty_url, schema="public") as legacy:
        assert _count(legacy, "brands") == 1
    upgrade(empty_url, schema="fittwin")  # named on purpose: a second, empty FitTwin
    with PostgresStore(empty_url, schema="fittwin") as fresh:
        assert _count(fresh, "brands") == 0


def test_bulk_copy_and_partition_maintenance_stay_in_their_schema(empty_url: URL) -> None:
    upgrade(empty_url, schema="shop_a")
    upgrade(empty_url, schema="shop_b")
    with PostgresStore(empty_url, schema="shop_a") as a, PostgresStore(empty_url, schema="shop_b") as b:
        world = seed_world(b)
        events = [uniquify(TABLES["referral_events"], world["referral_events"]) for _ in range(3)]
        with b.unit_of_work() as uow:
            uow.referral_events.add_many(events)
            uow.commit()
        assert _count(b, "referral_events") == 4 and _count(a, "referral_events") == 0
        report = b.maintain_partitions(ahead_months=8)
        assert report.created
    assert set(report.created) <= _relations(empty_url, "shop_b")
    assert not set(report.created) & _relations(empty_url, "shop_a")


def test_the_store_runs_in_its_schema_however_the_database_search_path_is_set(empty_url: URL) -> None:
    upgrade(empty_url, schema="shop")
    _sql(empty_url, f'ALTER DATABASE "{empty_url.database}" SET search_path = nowhere')
    with PostgresStore(empty_url, schema="shop") as store:
        seed_world(store)
        with store.unit_of_work() as uow:
            path = uow.connection().execute(sa.text("SHOW search_path")).scalar_one()
        assert path == "shop, public"
    with sql_engine(empty_url, schema="shop").connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM brands")).scalar_one() == 1

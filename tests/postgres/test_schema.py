"""The migrated schema is the data model, by name; migrations have no drift and go both ways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from fittwin_adapters.postgres import VERSION_TABLE, current_revision, downgrade, upgrade
from fittwin_adapters.postgres.migrate import include_name
from fittwin_adapters.postgres.tables import ENUM_TYPES, TYPE_OVERRIDES, metadata
from fittwin_core.schema import TABLES
from tests.support.postgres import TestDatabases, sql_engine

pytestmark = pytest.mark.postgres

DATA_MODEL_INDEXES = {
    "idx_user_profiles_email_lower",
    "idx_user_profiles_username",
    "idx_user_profiles_default_pm",
    "idx_avatars_user_id_status",
    "idx_avatars_user_version_unique",
    "idx_brand_users_brand_role",
    "idx_brand_users_email_unique",
    "idx_product_variants_product_status",
    "idx_product_variants_inventory",
    "idx_orders_user_status",
    "idx_orders_rid",
    "idx_orders_payment_intent",
    "idx_order_items_order",
    "idx_order_items_variant",
    "idx_addresses_user_type",
    "idx_addresses_country_postal",
    "idx_payment_methods_user",
    "idx_payment_methods_psp_token",
    "idx_referrals_referrer",
    "idx_referrals_target",
    "idx_referral_events_rid_type",
    "idx_referral_events_order",
    "idx_event_logs_entity",
    "idx_event_logs_actor",
    "idx_event_logs_created_at",
    "idx_reward_ledger_rid_status",
    "idx_reward_ledger_order",
}
"""Every index the data model names, listed by hand so a rename cannot pass unnoticed."""

DATA_MODEL_ENUMS = {
    ("avatars", "status"): ["processing", "ready", "failed"],
    ("brands", "onboarding_status"): ["invited", "kyc_pending", "active", "suspended"],
    ("brand_users", "role"): ["owner", "manager", "analyst"],
    ("brand_users", "status"): ["invited", "active", "revoked"],
    ("products", "status"): ["draft", "active", "archived"],
    ("product_variants", "status"): ["active", "backorder", "out_of_stock"],
    ("size_charts", "unit_system"): ["metric", "imperial"],
    ("orders", "status"): [
        "created",
        "paid",
        "sent_to_brand",
        "fulfilled",
        "delivered",
        "return_requested",
        "closed",
    ],
    ("addresses", "type"): ["billing", "shipping"],
    ("referral_events", "event_type"): ["click", "conversion", "fraud_flag"],
    ("event_logs", "actor_type"): ["shopper", "brand_admin", "platform_admin", "system"],
    ("reward_ledger_entries", "status"): ["pending_hold", "payable", "paid", "cancelled"],
}

DATA_MODEL_TYPES = {
    ("user_profiles", "email"): "citext",
    ("brand_users", "email"): "citext",
    ("user_profiles", "username"): "character varying(32)",
    ("user_profiles", "body_metrics"): "jsonb",
    ("user_profiles", "region"): "text",
    ("referrals", "rid"): "character(22)",
    ("referral_events", "rid"): "character(22)",
    ("reward_ledger_entries", "rid"): "character(22)",
    ("orders", "rid"): "text",
    ("product_variants", "price_cents"): "bigint",
    ("product_variants", "currency"): "character(3)",
    ("order_items", "qty"): "smallint",
    ("order_items", "unit_price_cents"): "bigint",
    ("avatars", "confidence"): "smallint",
    ("avatars", "deleted_at"): "timestamp with time zone",
    ("addresses", "deleted_at"): "timestamp with time zone",
    ("payment_methods", "last4"): "character(4)",
    ("payment_methods", "expires_at"): "date",
    ("event_logs", "id"): "uuid",
    ("event_logs", "metadata"): "jsonb",
    ("data_keys", "wrapped_key"): "bytea",
}


@pytest.fixture
def engine(postgres_url: URL) -> Iterator[sa.Engine]:
    engine = sql_engine(postgres_url)
    yield engine
    engine.dispose()


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def _columns(engine: sa.Engine) -> dict[tuple[str, str], tuple[str, bool, int]]:
    rows = _rows(
        engine,
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attnum "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'fittwin' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
    )
    return {(t, c): (sql_type, not_null, position) for t, c, sql_type, not_null, position in rows}


def test_every_table_and_column_of_the_catalog_exists_in_entity_order(engine: sa.Engine) -> None:
    columns = _columns(engine)
    for table in TABLES.values():
        found = sorted((pos, col) for (t, col), (_, _, pos) in columns.items() if t == table.name)
        assert tuple(col for _, col in found) == table.columns, table.name


def test_columns_have_the_data_model_types(engine: sa.Engine) -> None:
    columns = _columns(engine)
    for (table, column), sql_type in DATA_MODEL_TYPES.items():
        assert columns[(table, column)][0] == sql_type, (table, column)
    for (table, column), override in TYPE_OVERRIDES.items():
        assert columns[(table, column)][0] == override.compile(dialect=engine.dialect).lower().replace(
            "varchar", "character varying"
        ).replace("char(", "character("), (table, column)


def test_bookkeeping_columns(engine: sa.Engine) -> None:
    columns = _columns(engine)
    for table in TABLES.values():
        assert columns[(table.name, "created_at")][0] == "timestamp with time zone"
        assert ((table.name, "updated_at") in columns) == (not table.append_only and table.has_updated_at)
    assert {"updated_at"} & {c for (t, c) in columns if t in ("event_logs", "referral_events")} == set()
    assert ("user_profiles", "region") in columns
    assert ("avatars", "deleted_at") in columns
    assert ("addresses", "deleted_at") in columns


def test_enum_types_carry_the_data_model_labels(engine: sa.Engine) -> None:
    columns = _columns(engine)
    for (table, column), labels in DATA_MODEL_ENUMS.items():
        type_name = columns[(table, column)][0]
        stored = _rows(
            engine,
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "WHERE t.typname = :name ORDER BY e.enumsortorder",
            name=type_name,
        )
        assert [label for (label,) in stored] == labels, (table, column)
    for enum_type in ENUM_TYPES.values():
        stored = _rows(engine, "SELECT 1 FROM pg_type WHERE typname = :n AND typtype = 'e'", n=enum_type.name)
        assert stored, enum_type.name


def test_every_named_index_of_the_data_model_exists(engine: sa.Engine) -> None:
    names = {
        name for (name,) in _rows(engine, "SELECT indexname FROM pg_indexes WHERE schemaname = 'fittwin'")
    }
    assert names >= DATA_MODEL_INDEXES
    catalog = {unique.name for table in TABLES.values() for unique in table.uniques}
    assert names >= catalog - {"brands_name_key", "product_variants_sku_key"}
    constraints = {name for (name,) in _rows(engine, "SELECT conname FROM pg_constraint WHERE contype = 'u'")}
    assert {"brands_name_key", "product_variants_sku_key"} <= constraints


def test_unique_indexes_match_the_catalog(engine: sa.Engine) -> None:
    defs = dict(_rows(engine, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'fittwin'"))
    for table in TABLES.values():
        for unique in table.uniques:
            if unique.name.endswith("_key"):
                continue
            if unique.by_trigger:  # a partitioned table: a plain index, uniqueness by a trigger
                assert defs[unique.name].startswith("CREATE INDEX"), unique.name
                continue
            assert defs[unique.name].startswith("CREATE UNIQUE INDEX"), unique.name
            for column in unique.columns:
                assert column in defs[unique.name], unique.name
    assert defs["idx_brand_users_email_unique"].endswith(
        "USING btree (brand_id, email) WHERE (status = 'active'::brand_user_status)"
    )
    assert "lower((username)::text)" in defs["idx_user_profiles_username"]


def test_foreign_keys_cascade_updates_and_restrict_deletes(engine: sa.Engine) -> None:
    rows = _rows(
        engine,
        "SELECT conname, confupdtype, confdeltype, conrelid::regclass::text, confrelid::regclass::text "
        "FROM pg_constraint WHERE contype = 'f' AND conparentid = 0",
    )
    found = {name: (upd, dele, table, ref) for name, upd, dele, table, ref in rows}
    expected = {
        f"fk_{table.name}_{fk.column}": (table.name, fk.table)
        for table in TABLES.values()
        for fk in table.foreign_keys
    }
    assert set(found) == set(expected)
    for name, (table, ref) in expected.items():
        assert found[name] == ("c", "r", table, ref), name


def test_emails_are_case_insensitive_text(engine: sa.Engine) -> None:
    assert _rows(engine, "SELECT 'A@B.CO'::citext = 'a@b.co'::citext") == [(True,)]


def test_orders_and_event_logs_are_partitioned_by_id_with_a_default(engine: sa.Engine) -> None:
    for table in ("orders", "event_logs"):
        (key,) = _rows(engine, "SELECT pg_get_partkeydef(CAST(:t AS regclass))", t=table)
        assert key == ("RANGE (id)",)
        (pk,) = _rows(
            engine,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'",
            t=table,
        )
        assert pk == ("PRIMARY KEY (id)",)
        assert _rows(engine, "SELECT to_regclass(:d) IS NOT NULL", d=f"{table}_default") == [(True,)]


def test_the_migrated_schema_has_no_drift(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": include_name, "compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []


def test_drift_is_noticed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX idx_orders_rid"))
        conn.execute(sa.text("ALTER TABLE brands ALTER COLUMN name TYPE varchar(10)"))
        context = MigrationContext.configure(conn, opts={"include_name": include_name, "compare_type": True})
        kinds = {
            diff[0] if isinstance(diff, tuple) else diff[0][0] for diff in compare_metadata(context, metadata)
        }
    assert {"add_index", "modify_type"} <= kinds


def test_downgrade_to_base_and_upgrade_again(postgres_databases: TestDatabases) -> None:
    url = postgres_databases.new_database(migrated=False)
    try:
        assert current_revision(url) is None
        upgrade(url)
        head = current_revision(url)
        assert head is not None
        downgrade(url, "base")
        assert current_revision(url) is None
        engine = sql_engine(url)
        with engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names(schema="fittwin"))
        engine.dispose()
        assert left == {VERSION_TABLE}
        upgrade(url)
        assert current_revision(url) == head
    finally:
        postgres_databases.drop(url)

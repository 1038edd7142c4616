"""The data model: tables, enum types, indexes, foreign keys, monthly partitions, triggers.

Revision ID: 0001_schema
Revises:
Create Date: 2026-11-25

Everything here is frozen as it was written (no import of the live metadata or catalog), so
later changes to the library come as new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_schema"
down_revision = None
branch_labels = None
depends_on = None

ENUMS: dict[str, tuple[str, ...]] = {
    "avatar_status": ("processing", "ready", "failed"),
    "brand_status": ("invited", "kyc_pending", "active", "suspended"),
    "brand_role": ("owner", "manager", "analyst"),
    "brand_user_status": ("invited", "active", "revoked"),
    "unit_system": ("metric", "imperial"),
    "product_status": ("draft", "active", "archived"),
    "variant_status": ("active", "backorder", "out_of_stock"),
    "address_type": ("billing", "shipping"),
    "order_status": (
        "created",
        "paid",
        "sent_to_brand",
        "fulfilled",
        "delivered",
        "return_requested",
        "closed",
    ),
    "close_reason": ("cancelled", "completed", "returned"),
    "referral_event_type": ("click", "conversion", "fraud_flag"),
    "reward_status": ("pending_hold", "payable", "paid", "cancelled"),
    "actor_type": ("shopper", "brand_admin", "platform_admin", "system"),
}

AUDITED: dict[str, tuple[str, ...]] = {
    "brands": ("primary_contact", "webhooks"),
    "brand_users": ("email", "invite_token"),
    "size_charts": (),
    "fit_maps": (),
    "products": (),
    "product_variants": (),
    "payment_methods": ("psp_token_id",),
    "orders": ("psp_token_id",),
    "reward_ledger_entries": (),
}
"""Privileged tables and their secret columns (redacted in audit diffs)."""

WITH_UPDATED_AT = (
    "user_profiles",
    "avatars",
    "brands",
    "brand_users",
    "size_charts",
    "fit_maps",
    "products",
    "product_variants",
    "addresses",
    "payment_methods",
    "orders",
    "reward_ledger_entries",
    "data_keys",
)

TABLES_CHILDREN_FIRST = (
    "idempotency_keys",
    "data_keys",
    "event_logs",
    "reward_ledger_entries",
    "referral_events",
    "order_items",
    "orders",
    "referrals",
    "user_profiles",
    "payment_methods",
    "addresses",
    "product_variants",
    "products",
    "fit_maps",
    "size_charts",
    "brand_users",
    "brands",
    "avatars",
)

FUNCTIONS = r"""
CREATE SEQUENCE fittwin_uuid7_seq;

-- A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 12 bits of sub-millisecond
-- precision (method 3), variant 10, and a 62-bit database-wide counter (method 1) so ids
-- made by one backend are strictly increasing and never collide.
CREATE FUNCTION fittwin_uuid7() RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    micros bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    counter bigint := nextval('fittwin_uuid7_seq') & 4611686018427387903;
BEGIN
    RETURN encode(
        int8send(((micros / 1000) << 16) | 28672 | (((micros % 1000) * 4096) / 1000))
        || int8send(x'8000000000000000'::bigint | counter),
        'hex')::uuid;
END $$;

-- updated_at follows the library's clock: the database stamps now() only when an UPDATE
-- left updated_at as it was and did not come from a FitTwin unit of work (which marks its
-- transactions with fittwin.library and always writes the entity's own updated_at).
CREATE FUNCTION fittwin_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
       AND coalesce(current_setting('fittwin.library', true), '') <> 'on' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION fittwin_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_ARGV[0], TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'old records go by dropping whole monthly partitions (purge_event_logs)';
END $$;

-- A row in its audit form: bookkeeping columns left out, secret values redacted.
CREATE FUNCTION fittwin_audit_visible(row_json jsonb, secret text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(key, CASE
               WHEN key = ANY (secret) AND value <> 'null'::jsonb THEN '"<redacted>"'::jsonb
               ELSE value END), '{}'::jsonb)
    FROM jsonb_each(row_json)
    WHERE key NOT IN ('created_at', 'updated_at')
$$;

-- Mirrors a change of a privileged table into event_logs, exactly as
-- fittwin_core.domain.audit.audit_diff describes it. TG_ARGV: table name, secret columns.
CREATE FUNCTION fittwin_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    secret text[] := coalesce(TG_ARGV[1:TG_NARGS - 1], '{}');
    old_row jsonb;
    new_row jsonb;
    changed text[];
    meta jsonb;
    row_id uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        new_row := to_jsonb(NEW);
        row_id := (new_row ->> 'id')::uuid;
        meta := jsonb_build_object('op', 'insert', 'new', fittwin_audit_visible(new_row, secret));
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD);
        new_row := to_jsonb(NEW);
        row_id := (new_row ->> 'id')::uuid;
        SELECT array_agg(key) INTO changed FROM jsonb_each(new_row)
        WHERE key NOT IN ('created_at', 'updated_at') AND (old_row -> key) IS DISTINCT FROM value;
        IF changed IS NULL THEN
            RETURN NULL;
        END IF;
        meta := jsonb_build_object(
            'op', 'update',
            'old', fittwin_audit_visible(
                (SELECT jsonb_object_agg(c, old_row -> c) FROM unnest(changed) AS c), secret),
            'new', fittwin_audit_visible(
                (SELECT jsonb_object_agg(c, new_row -> c) FROM unnest(changed) AS c), secret));
    ELSE
        old_row := to_jsonb(OLD);
        row_id := (old_row ->> 'id')::uuid;
        meta := jsonb_build_object('op', 'delete', 'old', fittwin_audit_visible(old_row, secret));
    END IF;
    INSERT INTO event_logs (id, actor_type, actor_id, action, entity_type, entity_id, metadata, created_at)
    VALUES (
        fittwin_uuid7(),
        coalesce(nullif(current_setting('fittwin.actor_type', true), ''), 'system')::actor_type,
        nullif(current_setting('fittwin.actor_id', true), '')::uuid,
        lower(TG_OP),
        TG_ARGV[0],
        row_id,
        meta,
        now());
    RETURN NULL;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION fittwin_audit();
DROP FUNCTION fittwin_audit_visible(jsonb, text[]);
DROP FUNCTION fittwin_append_only();
DROP FUNCTION fittwin_touch_updated_at();
DROP FUNCTION fittwin_uuid7();
DROP SEQUENCE fittwin_uuid7_seq;
"""


FUNCTION_SIGNATURES = (
    "fittwin_uuid7()",
    "fittwin_touch_updated_at()",
    "fittwin_append_only()",
    "fittwin_audit_visible(jsonb, text[])",
    "fittwin_audit()",
)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    for name, labels in ENUMS.items():
        # checkfirst=False: a type of that name that is not FitTwin's must stop the migration.
        postgresql.ENUM(*labels, name=name).create(op.get_bind(), checkfirst=False)
    op.execute(FUNCTIONS)
    # The functions resolve their tables, types and sequence in the schema they are created in
    # (the migration's search path puts FitTwin's schema first), never in another one,
    # whatever the search path of the session that fires them.
    home = op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one()
    for function in FUNCTION_SIGNATURES:
        op.execute(f"ALTER FUNCTION {function} SET search_path = {_sql_identifier(home)}, pg_temp")
    _create_tables()
    for table in ("orders", "event_logs"):
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    for table in WITH_UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER fittwin_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION fittwin_touch_updated_at()"
        )
    for table, secret in AUDITED.items():
        args = ", ".join(_sql_literal(arg) for arg in (table, *secret))
        op.execute(
            f"CREATE TRIGGER fittwin_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION fittwin_audit({args})"
        )
    op.execute(
        "CREATE TRIGGER fittwin_append_only BEFORE UPDATE OR DELETE ON event_logs "
        "FOR EACH ROW EXECUTE FUNCTION fittwin_append_only('event_logs')"
    )
    for relation in ("event_logs", "event_logs_default"):
        op.execute(
            f"CREATE TRIGGER fittwin_append_only_truncate BEFORE TRUNCATE ON {relation} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fittwin_append_only('event_logs')"
        )


def downgrade() -> None:
    # DROP TABLE of a partitioned table drops its partitions; the citext extension stays
    # (other schemas in the database may use it).
    op.execute("DROP TABLE " + ", ".join(TABLES_CHILDREN_FIRST) + " CASCADE")
    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")
    op.execute(DROP_FUNCTIONS)


def _create_tables() -> None:  # noqa: PLR0915 - one statement per table, index and key
    op.create_table(
        "addresses",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column(
            "type",
            postgresql.ENUM("billing", "shipping", name="address_type", create_type=False),
            nullable=False,
        ),
        sa.Column("line1", sa.Text(), nullable=False),
        sa.Column("line2", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("postal_code_bidx", sa.Text(), nullable=True),
        sa.Column("country_bidx", sa.Text(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_addresses_country_postal", "addresses", ["country_bidx", "postal_code_bidx"], unique=False
    )
    op.create_index("idx_addresses_user_type", "addresses", ["user_id", "type"], unique=False)
    op.create_table(
        "avatars",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM("processing", "ready", "failed", name="avatar_status", create_type=False),
            nullable=False,
        ),
        sa.Column("mesh_ref", sa.Text(), nullable=True),
        sa.Column("generated_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("confidence", sa.SmallInteger(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("confidence BETWEEN 0 AND 100", name="ck_avatars_confidence"),
        sa.CheckConstraint("version >= 1", name="ck_avatars_version_positive"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_avatars_user_id_status", "avatars", ["user_id", "status"], unique=False)
    op.create_index(
        "idx_avatars_user_version_unique",
        "avatars",
        ["user_id", "version"],
        unique=True,
        postgresql_where=None,
    )
    op.create_table(
        "brand_users",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("brand_id", sa.UUID(), nullable=False),
        sa.Column("email", postgresql.CITEXT(), nullable=False),
        sa.Column(
            "role",
            postgresql.ENUM("owner", "manager", "analyst", name="brand_role", create_type=False),
            nullable=False,
        ),
        sa.Column(
            "status",
            postgresql.ENUM("invited", "active", "revoked", name="brand_user_status", create_type=False),
            nullable=False,
        ),
        sa.Column("invite_token", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_brand_users_brand_role", "brand_users", ["brand_id", "role"], unique=False)
    op.create_index(
        "idx_brand_users_email_unique",
        "brand_users",
        ["brand_id", "email"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "brands",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "onboarding_status",
            postgresql.ENUM(
                "invited", "kyc_pending", "active", "suspended", name="brand_status", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("primary_contact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("webhooks", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="brands_name_key"),
    )
    op.create_table(
        "data_keys",
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped_key", postgresql.BYTEA(), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.create_table(
        "event_logs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "actor_type",
            postgresql.ENUM(
                "shopper", "brand_admin", "platform_admin", "system", name="actor_type", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.UUID(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        postgresql_partition_by="RANGE (id)",
    )
    op.create_index("idx_event_logs_actor", "event_logs", ["actor_type", "actor_id"], unique=False)
    op.create_index("idx_event_logs_created_at", "event_logs", ["created_at"], unique=False)
    op.create_index("idx_event_logs_entity", "event_logs", ["entity_type", "entity_id"], unique=False)
    op.create_table(
        "fit_maps",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("brand_id", sa.UUID(), nullable=False),
        sa.Column("garment_type", sa.Text(), nullable=False),
        sa.Column("rule_set", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("confidence_model", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("result_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    op.create_table(
        "order_items",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("variant_id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("size_label", sa.Text(), nullable=False),
        sa.Column("qty", sa.SmallInteger(), nullable=False),
        sa.Column("reserved_qty", sa.SmallInteger(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("fit_summary", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("qty > 0", name="ck_order_items_qty_positive"),
        sa.CheckConstraint("reserved_qty >= 0 AND reserved_qty <= qty", name="ck_order_items_reserved_qty"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_order_items_order", "order_items", ["order_id"], unique=False)
    op.create_index("idx_order_items_variant", "order_items", ["variant_id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "created",
                "paid",
                "sent_to_brand",
                "fulfilled",
                "delivered",
                "return_requested",
                "closed",
                name="order_status",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column("totals", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("shipping_address_id", sa.UUID(), nullable=False),
        sa.Column("billing_address_id", sa.UUID(), nullable=False),
        sa.Column("payment_intent_ref", sa.Text(), nullable=True),
        sa.Column("psp_token_id", sa.Text(), nullable=True),
        sa.Column("rid", sa.Text(), nullable=True),
        sa.Column("notifications", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("refunded_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("closed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "close_reason",
            postgresql.ENUM("cancelled", "completed", "returned", name="close_reason", create_type=False),
            nullable=True,
        ),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        postgresql_partition_by="RANGE (id)",
    )
    op.create_index("idx_orders_payment_intent", "orders", ["payment_intent_ref"], unique=False)
    op.create_index("idx_orders_rid", "orders", ["rid"], unique=False)
    op.create_index("idx_orders_user_status", "orders", ["user_id", "status"], unique=False)
    op.create_table(
        "payment_methods",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("psp_token_id", sa.Text(), nullable=False),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("last4", sa.CHAR(length=4), nullable=True),
        sa.Column("expires_at", sa.Date(), nullable=True),
        sa.Column("billing_address_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_payment_methods_psp_token",
        "payment_methods",
        ["psp_token_id"],
        unique=True,
        postgresql_where=None,
    )
    op.create_index("idx_payment_methods_user", "payment_methods", ["user_id"], unique=False)
    op.create_table(
        "product_variants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("size_label", sa.Text(), nullable=False),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("inventory", sa.Integer(), nullable=False),
        sa.Column("fit_metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "status",
            postgresql.ENUM("active", "backorder", "out_of_stock", name="variant_status", create_type=False),
            nullable=False,
        ),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("inventory >= 0", name="ck_product_variants_inventory_nonnegative"),
        sa.CheckConstraint("price_cents >= 0", name="ck_product_variants_price_nonnegative"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sku", name="product_variants_sku_key"),
    )
    op.create_index("idx_product_variants_inventory", "product_variants", ["inventory"], unique=False)
    op.create_index(
        "idx_product_variants_product_status", "product_variants", ["product_id", "status"], unique=False
    )
    op.create_table(
        "products",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("brand_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("assets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("size_chart_id", sa.UUID(), nullable=False),
        sa.Column("fit_map_id", sa.UUID(), nullable=True),
        sa.Column(
            "status",
            postgresql.ENUM("draft", "active", "archived", name="product_status", create_type=False),
            nullable=False,
        ),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "referral_events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("rid", sa.CHAR(length=22), nullable=False),
        sa.Column(
            "event_type",
            postgresql.ENUM(
                "click", "conversion", "fraud_flag", name="referral_event_type", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("device_fingerprint", sa.Text(), nullable=True),
        sa.Column("ip_hash", sa.Text(), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_referral_events_order", "referral_events", ["order_id"], unique=False)
    op.create_index("idx_referral_events_rid_type", "referral_events", ["rid", "event_type"], unique=False)
    op.create_table(
        "referrals",
        sa.Column("rid", sa.CHAR(length=22), nullable=False),
        sa.Column("referrer_user_id", sa.UUID(), nullable=False),
        sa.Column("target_product_id", sa.UUID(), nullable=True),
        sa.Column("share_url", sa.Text(), nullable=False),
        sa.Column("policy_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("expires_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("rid"),
    )
    op.create_index("idx_referrals_referrer", "referrals", ["referrer_user_id"], unique=False)
    op.create_index("idx_referrals_target", "referrals", ["target_product_id"], unique=False)
    op.create_table(
        "reward_ledger_entries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("rid", sa.CHAR(length=22), nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending_hold", "payable", "paid", "cancelled", name="reward_status", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("hold_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_reward_ledger_order", "reward_ledger_entries", ["order_id"], unique=False)
    op.create_index("idx_reward_ledger_rid_status", "reward_ledger_entries", ["rid", "status"], unique=False)
    op.create_table(
        "size_charts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("brand_id", sa.UUID(), nullable=False),
        sa.Column("garment_type", sa.Text(), nullable=False),
        sa.Column("measurement_rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("grading_rules", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "unit_system",
            postgresql.ENUM("metric", "imperial", name="unit_system", create_type=False),
            nullable=False,
        ),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "user_profiles",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", postgresql.CITEXT(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("username", sa.VARCHAR(length=32), nullable=False),
        sa.Column("body_metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("consents", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("email_verified_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("phone_verified_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("location", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("appearance", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("style_preferences", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("default_payment_method_id", sa.UUID(), nullable=True),
        sa.Column("billing_address_id", sa.UUID(), nullable=True),
        sa.Column("erased_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_user_profiles_default_pm", "user_profiles", ["default_payment_method_id"], unique=False
    )
    op.create_index(
        "idx_user_profiles_email_lower", "user_profiles", ["email"], unique=True, postgresql_where=None
    )
    op.create_index(
        "idx_user_profiles_username",
        "user_profiles",
        [sa.literal_column("lower(username)")],
        unique=True,
        postgresql_where=None,
    )
    op.create_foreign_key(
        "fk_addresses_user_id",
        "addresses",
        "user_profiles",
        ["user_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_avatars_user_id",
        "avatars",
        "user_profiles",
        ["user_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_brand_users_brand_id",
        "brand_users",
        "brands",
        ["brand_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_fit_maps_brand_id",
        "fit_maps",
        "brands",
        ["brand_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_order_items_order_id",
        "order_items",
        "orders",
        ["order_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_order_items_product_id",
        "order_items",
        "products",
        ["product_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_order_items_variant_id",
        "order_items",
        "product_variants",
        ["variant_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_orders_billing_address_id",
        "orders",
        "addresses",
        ["billing_address_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_orders_rid", "orders", "referrals", ["rid"], ["rid"], onupdate="CASCADE", ondelete="RESTRICT"
    )
    op.create_foreign_key(
        "fk_orders_shipping_address_id",
        "orders",
        "addresses",
        ["shipping_address_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_orders_user_id",
        "orders",
        "user_profiles",
        ["user_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_payment_methods_billing_address_id",
        "payment_methods",
        "addresses",
        ["billing_address_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_payment_methods_user_id",
        "payment_methods",
        "user_profiles",
        ["user_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_product_variants_product_id",
        "product_variants",
        "products",
        ["product_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_products_brand_id",
        "products",
        "brands",
        ["brand_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_products_fit_map_id",
        "products",
        "fit_maps",
        ["fit_map_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_products_size_chart_id",
        "products",
        "size_charts",
        ["size_chart_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_referral_events_order_id",
        "referral_events",
        "orders",
        ["order_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_referral_events_rid",
        "referral_events",
        "referrals",
        ["rid"],
        ["rid"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_referrals_referrer_user_id",
        "referrals",
        "user_profiles",
        ["referrer_user_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_referrals_target_product_id",
        "referrals",
        "products",
        ["target_product_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_reward_ledger_entries_order_id",
        "reward_ledger_entries",
        "orders",
        ["order_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_reward_ledger_entries_rid",
        "reward_ledger_entries",
        "referrals",
        ["rid"],
        ["rid"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_size_charts_brand_id",
        "size_charts",
        "brands",
        ["brand_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_user_profiles_billing_address_id",
        "user_profiles",
        "addresses",
        ["billing_address_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_user_profiles_default_payment_method_id",
        "user_profiles",
        "payment_methods",
        ["default_payment_method_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )

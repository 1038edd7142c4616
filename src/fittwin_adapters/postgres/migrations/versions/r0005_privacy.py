"""Privacy: audit of every table with personal data or keys, that the app role cannot rewrite.

Revision ID: 0005_privacy
Revises: 0003_brand_orders
Create Date: 2027-01-20

* ``order_items.updated_at`` and ``referrals.updated_at`` (the data model gives every table
  both stamps), filled from ``created_at``, kept by the ``fittwin_updated_at`` trigger.
* ``fittwin_audit()`` takes the table's key column as its second argument (``data_keys`` is
  keyed by ``owner_id``) and runs as its owner (``SECURITY DEFINER``, search path pinned), so
  an application role that may not write ``event_logs`` still leaves its audit rows. Audit
  triggers are (re)created on every table of :data:`AUDITED` with the redaction list of the
  personal-data declaration as it stood: ``user_profiles``, ``addresses``, ``avatars`` and
  ``data_keys`` are new; ``payment_methods`` now also redacts ``brand``, ``last4`` and
  ``expires_at``.
* ``fittwin_record_events(jsonb)``: how the library adds records of its own (``user.export``,
  ``retention.purge``...) without an INSERT privilege on ``event_logs``; it refuses rows that
  pose as row changes (``insert``/``update``/``delete``).

Frozen as written (no import of the live declaration); table names are unqualified.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_privacy"
down_revision = "0004_outbox"
branch_labels = None
depends_on = None

AUDITED: dict[str, tuple[str, ...]] = {
    "user_profiles": (
        "id",
        "appearance",
        "body_metrics",
        "consents",
        "email",
        "location",
        "name",
        "password_hash",
        "phone",
        "style_preferences",
        "username",
    ),
    "avatars": ("id", "mesh_ref", "sources"),
    "brands": ("id", "primary_contact", "webhooks"),
    "brand_users": ("id", "email", "invite_token"),
    "size_charts": ("id",),
    "fit_maps": ("id",),
    "products": ("id",),
    "product_variants": ("id",),
    "addresses": (
        "id",
        "city",
        "country",
        "country_bidx",
        "line1",
        "line2",
        "metadata",
        "postal_code",
        "postal_code_bidx",
        "state",
    ),
    "payment_methods": ("id", "brand", "expires_at", "last4", "psp_token_id"),
    "orders": ("id", "psp_token_id"),
    "reward_ledger_entries": ("id",),
    "fit_map_proposals": ("id",),
    "data_keys": ("owner_id", "wrapped_key"),
}
"""Audited tables: key column, then the columns redacted in audit diffs."""

PREVIOUS: dict[str, tuple[str, ...]] = {
    "brands": ("primary_contact", "webhooks"),
    "brand_users": ("email", "invite_token"),
    "size_charts": (),
    "fit_maps": (),
    "products": (),
    "product_variants": (),
    "payment_methods": ("psp_token_id",),
    "orders": ("psp_token_id",),
    "reward_ledger_entries": (),
    "fit_map_proposals": (),
}
"""The audit triggers as revisions 0001 and 0002 left them (restored by the downgrade)."""

STAMPED = ("order_items", "referrals")

AUDIT = r"""
CREATE OR REPLACE FUNCTION fittwin_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key_column text := TG_ARGV[1];
    secret text[] := coalesce(TG_ARGV[2:TG_NARGS - 1], '{}');
    old_row jsonb;
    new_row jsonb;
    changed text[];
    meta jsonb;
    row_id uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        new_row := to_jsonb(NEW);
        row_id := (new_row ->> key_column)::uuid;
        meta := jsonb_build_object('op', 'insert', 'new', fittwin_audit_visible(new_row, secret));
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD);
        new_row := to_jsonb(NEW);
        row_id := (new_row ->> key_column)::uuid;
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
        row_id := (old_row ->> key_column)::uuid;
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

-- Records the library adds itself. Runs as the owner, so the application role needs no
-- INSERT on event_logs (and so cannot insert rows of its choosing with plain SQL); rows that
-- pose as row changes are refused.
CREATE FUNCTION fittwin_record_events(rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(rows) AS r
               WHERE r ->> 'action' IN ('insert', 'update', 'delete')) THEN
        RAISE EXCEPTION 'event_logs: row-change records are written by the audit triggers only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO event_logs (id, actor_type, actor_id, action, entity_type, entity_id, metadata, created_at)
    SELECT id, actor_type, actor_id, action, entity_type, entity_id, metadata, created_at
    FROM jsonb_populate_recordset(NULL::event_logs, rows);
END $$;
"""

ORIGINAL_AUDIT = r"""
CREATE OR REPLACE FUNCTION fittwin_audit() RETURNS trigger LANGUAGE plpgsql AS $$
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


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _audit_triggers(audited: dict[str, tuple[str, ...]]) -> None:
    for table, args in audited.items():
        op.execute(f"DROP TRIGGER IF EXISTS fittwin_audit ON {table}")
        arguments = ", ".join(_literal(arg) for arg in (table, *args))
        op.execute(
            f"CREATE TRIGGER fittwin_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION fittwin_audit({arguments})"
        )


def upgrade() -> None:
    for table in STAMPED:
        op.add_column(
            table,
            sa.Column(
                "updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
            ),
        )
        op.execute(f"UPDATE {table} SET updated_at = created_at")  # noqa: S608 - names from this file
        op.execute(
            f"CREATE TRIGGER fittwin_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION fittwin_touch_updated_at()"
        )
    op.execute(AUDIT)
    home = _identifier(op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one())
    for function in ("fittwin_audit()", "fittwin_record_events(jsonb)"):
        op.execute(f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = {home}, pg_temp")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    _audit_triggers(AUDITED)


def downgrade() -> None:
    for table in set(AUDITED) - set(PREVIOUS):
        op.execute(f"DROP TRIGGER fittwin_audit ON {table}")
    op.execute("DROP FUNCTION fittwin_record_events(jsonb)")
    op.execute(ORIGINAL_AUDIT)
    op.execute("ALTER FUNCTION fittwin_audit() SECURITY INVOKER")
    op.execute("GRANT EXECUTE ON FUNCTION fittwin_audit() TO PUBLIC")
    _audit_triggers(PREVIOUS)
    for table in STAMPED:
        op.execute(f"DROP TRIGGER fittwin_updated_at ON {table}")
        op.drop_column(table, "updated_at")

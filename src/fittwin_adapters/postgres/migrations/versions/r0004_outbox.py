"""The outbox, and one order per payment intent.

Revision ID: 0004_outbox
Revises: 0003_brand_orders
Create Date: 2027-02-01

Additive:

* ``outbox`` (an addition to the data model): the effects a state change records in its own
  transaction (refunds, payment cancellations, brand webhooks, shopper notifications), with
  their delivery record; ``outbox_status`` its enum; ``idx_outbox_idempotency_unique`` unique;
  ``idx_outbox_due`` what the dispatcher claims next.
* ``orders.payment_intent_ref`` unique. ``orders`` is partitioned by RANGE on ``id`` and a
  unique index of a partitioned table must contain the partition key, which would make
  ``(payment_intent_ref, id)`` unique and enforce nothing. So ``idx_orders_payment_intent``
  stays the data model's plain index for lookups, and a trigger enforces uniqueness across
  every partition: it serialises writers of one intent id with a transaction-scoped advisory
  lock, then looks for another order holding the id (PL/pgSQL statements take a fresh snapshot
  under READ COMMITTED, the store's isolation, so a committed holder is seen), and raises
  ``unique_violation`` naming the index. Existing duplicates (from the sequential fake ids)
  make the upgrade fail loudly rather than be hidden.

Frozen as written (no import of the live metadata); unqualified names (the schema is the
connection's ``search_path``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_outbox"
down_revision = "0003_brand_orders"
branch_labels = None
depends_on = None

STATUS = ("pending", "delivered", "dead")
KINDS = ("refund", "cancel_payment", "brand_webhook", "notify_shopper")

UNIQUE_INTENT = """
CREATE FUNCTION fittwin_unique_payment_intent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payment_intent_ref IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('orders.payment_intent_ref:' || NEW.payment_intent_ref, 0)
    );
    IF EXISTS (
        SELECT 1 FROM orders WHERE payment_intent_ref = NEW.payment_intent_ref AND id <> NEW.id
    ) THEN
        RAISE unique_violation USING
            MESSAGE = 'duplicate key value violates unique constraint "idx_orders_payment_intent"',
            CONSTRAINT = 'idx_orders_payment_intent',
            TABLE = 'orders';
    END IF;
    RETURN NEW;
END;
$$;
"""


def upgrade() -> None:
    dupes = op.get_bind().execute(
        sa.text(
            "SELECT payment_intent_ref FROM orders WHERE payment_intent_ref IS NOT NULL "
            "GROUP BY payment_intent_ref HAVING count(*) > 1 LIMIT 1"
        )
    )
    if dupes.first() is not None:
        raise RuntimeError(
            "orders share a payment_intent_ref (sequential fake payment ids?): fix them before upgrading"
        )
    op.execute(UNIQUE_INTENT)
    op.execute(
        "CREATE TRIGGER fittwin_unique_payment_intent BEFORE INSERT OR UPDATE OF payment_intent_ref "
        "ON orders FOR EACH ROW EXECUTE FUNCTION fittwin_unique_payment_intent()"
    )
    postgresql.ENUM(*STATUS, name="outbox_status").create(op.get_bind())
    postgresql.ENUM(*KINDS, name="effect_kind").create(op.get_bind())
    op.create_table(
        "outbox",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", postgresql.ENUM(*KINDS, name="effect_kind", create_type=False), nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column(
            "status", postgresql.ENUM(*STATUS, name="outbox_status", create_type=False), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.UUID(), nullable=True),
        sa.Column("lease_until", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("history", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_outbox_idempotency_unique", "outbox", ["idempotency_key"], unique=True)
    op.create_index("idx_outbox_due", "outbox", ["status", "available_at"], unique=False)
    op.execute(
        "CREATE TRIGGER fittwin_updated_at BEFORE UPDATE ON outbox "
        "FOR EACH ROW EXECUTE FUNCTION fittwin_touch_updated_at()"
    )


def downgrade() -> None:
    op.execute("DROP TABLE outbox")
    op.execute("DROP TYPE effect_kind")
    op.execute("DROP TYPE outbox_status")
    op.execute("DROP TRIGGER fittwin_unique_payment_intent ON orders")
    op.execute("DROP FUNCTION fittwin_unique_payment_intent()")

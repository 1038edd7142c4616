"""Object deletions through the outbox.

Revision ID: 0006_object_effects
Revises: 0005_privacy
Create Date: 2027-02-01

Additive: ``effect_kind`` gains ``delete_object``, the effect that deletes an object (an
avatar's mesh) once the change that orphaned it committed. The downgrade drops pending and
delivered ``delete_object`` rows and puts the enum back as 0004 made it.

Frozen as written; unqualified names (the schema is the connection's ``search_path``).
"""

from __future__ import annotations

from alembic import op

revision = "0006_object_effects"
down_revision = "0005_privacy"
branch_labels = None
depends_on = None

KINDS_BEFORE = ("refund", "cancel_payment", "brand_webhook", "notify_shopper")


def upgrade() -> None:
    op.execute("ALTER TYPE effect_kind ADD VALUE IF NOT EXISTS 'delete_object'")


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind = 'delete_object'")
    op.execute("ALTER TYPE effect_kind RENAME TO effect_kind_0006")
    labels = ", ".join(f"'{kind}'" for kind in KINDS_BEFORE)
    op.execute(f"CREATE TYPE effect_kind AS ENUM ({labels})")
    op.execute("ALTER TABLE outbox ALTER COLUMN kind TYPE effect_kind USING kind::text::effect_kind")
    op.execute("DROP TYPE effect_kind_0006")

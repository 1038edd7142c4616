"""Fit outcomes: return reasons on order lines, and learned fit-map proposals.

Revision ID: 0002_fit_outcomes
Revises: 0001_schema
Create Date: 2026-12-01

Additive only: ``order_items.return_reason`` (JSONB, NULL for lines not returned or returned
before reasons were recorded) and the ``fit_map_proposals`` table with its ``proposal_status``
enum, audited like ``fit_maps``. Table names are unqualified: the schema is the connection's
``search_path``. Frozen as written (no import of the live metadata).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_fit_outcomes"
down_revision = "0001_schema"
branch_labels = None
depends_on = None

STATUS = ("proposed", "accepted", "rejected")


def upgrade() -> None:
    op.add_column(
        "order_items", sa.Column("return_reason", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    postgresql.ENUM(*STATUS, name="proposal_status").create(op.get_bind())
    op.create_table(
        "fit_map_proposals",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("fit_map_id", sa.UUID(), nullable=False),
        sa.Column("brand_id", sa.UUID(), nullable=False),
        sa.Column("garment_type", sa.Text(), nullable=False),
        sa.Column(
            "status", postgresql.ENUM(*STATUS, name="proposal_status", create_type=False), nullable=False
        ),
        sa.Column("rule_set", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("decided_by", sa.UUID(), nullable=True),
        sa.Column("decided_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_fit_map_proposals_fit_map_status", "fit_map_proposals", ["fit_map_id", "status"], unique=False
    )
    for column, parent in (("fit_map_id", "fit_maps"), ("brand_id", "brands")):
        op.create_foreign_key(
            f"fk_fit_map_proposals_{column}",
            "fit_map_proposals",
            parent,
            [column],
            ["id"],
            onupdate="CASCADE",
            ondelete="RESTRICT",
        )
    op.execute(
        "CREATE TRIGGER fittwin_updated_at BEFORE UPDATE ON fit_map_proposals "
        "FOR EACH ROW EXECUTE FUNCTION fittwin_touch_updated_at()"
    )
    op.execute(
        "CREATE TRIGGER fittwin_audit AFTER INSERT OR UPDATE OR DELETE ON fit_map_proposals "
        "FOR EACH ROW EXECUTE FUNCTION fittwin_audit('fit_map_proposals')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE fit_map_proposals")
    op.execute("DROP TYPE proposal_status")
    op.drop_column("order_items", "return_reason")

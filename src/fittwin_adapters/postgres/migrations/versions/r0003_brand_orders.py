"""Orders by brand: ``order_items.brand_id`` and its index.

Revision ID: 0003_brand_orders
Revises: 0002_fit_outcomes
Create Date: 2027-01-15

Additive: each line records the brand of its product (filled from ``products`` for the lines
already there), so ``ft.orders.for_brand`` reads one page of a brand's orders by walking
``idx_order_items_brand_order`` (``brand_id``, ``order_id``) instead of joining every line of the
brand. The column references ``brands`` like every brand id. Frozen as written (no import of the
live metadata); table names are unqualified (the schema is the connection's ``search_path``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_brand_orders"
down_revision = "0002_fit_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_items", sa.Column("brand_id", sa.UUID(), nullable=True))
    op.execute(
        "UPDATE order_items SET brand_id = products.brand_id FROM products "
        "WHERE products.id = order_items.product_id"
    )
    op.alter_column("order_items", "brand_id", nullable=False)
    op.create_index("idx_order_items_brand_order", "order_items", ["brand_id", "order_id"], unique=False)
    op.create_foreign_key(
        "fk_order_items_brand_id",
        "order_items",
        "brands",
        ["brand_id"],
        ["id"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint("fk_order_items_brand_id", "order_items", type_="foreignkey")
    op.drop_index("idx_order_items_brand_order", table_name="order_items")
    op.drop_column("order_items", "brand_id")

"""the delivery service an order was placed with

Revision ID: commerce_0502
Revises: commerce_0501
Create Date: 2026-11-29 07:50:00

Adds `orders.shipping_service` (a shipping zone's service code such as standard or express; NULL for orders
placed before, or by channels that do not say).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'commerce_0502'
down_revision: str | Sequence[str] | None = 'commerce_0501'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('shipping_service', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('shipping_service')

"""a refund can be owed: cancelling a paid order that a person must refund by hand (issue 23)

Telegram Payments and offline payments cannot be refunded through an API: cancelling such an order records the
refund as owed (with the order flagged for a person) instead of done.

Revision ID: commerce_2303_s3co
Revises: commerce_2302_s2co
Create Date: 2026-12-07 09:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'commerce_2303_s3co'
down_revision: str | Sequence[str] | None = 'commerce_2302_s2co'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payment_refunds') as batch:
        batch.add_column(sa.Column('status', sa.String(length=20), nullable=False, server_default='done'))


def downgrade() -> None:
    with op.batch_alter_table('payment_refunds') as batch:
        batch.drop_column('status')

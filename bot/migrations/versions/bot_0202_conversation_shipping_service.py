"""the delivery service a shopper chose at checkout

Revision ID: bot_0202
Revises: bot_0201
Create Date: 2026-11-29 07:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'bot_0202'
down_revision: str | Sequence[str] | None = 'bot_0201'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bot_conversations') as batch:
        batch.add_column(sa.Column('shipping_service', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bot_conversations') as batch:
        batch.drop_column('shipping_service')

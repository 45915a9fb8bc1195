"""outbox order key: one conversation's messages are delivered in order while others go concurrently

Revision ID: kit_0002_s2ch
Revises: kit_0001
Create Date: 2026-12-07 06:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'kit_0002_s2ch'
down_revision: str | Sequence[str] | None = 'kit_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_key', sa.String(length=240), nullable=True))
        batch_op.create_index('ix_outbox_order', ['order_key', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_order')
        batch_op.drop_column('order_key')

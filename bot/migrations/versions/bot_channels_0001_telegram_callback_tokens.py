"""telegram callback tokens

Revision ID: bot_channels_0001
Revises: 
Create Date: 2026-11-28 21:05:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_channels_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('bot_channels',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_telegram_callback_tokens',
    sa.Column('token', sa.String(length=24), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_bot_telegram_callback_tokens'))
    )


def downgrade() -> None:
    op.drop_table('bot_telegram_callback_tokens')

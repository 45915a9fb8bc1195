"""channel receipts (WhatsApp statuses) and contacts (the 24-hour window)

Revision ID: bot_channels_0002
Revises: bot_channels_0001
Create Date: 2026-12-07 03:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_channels_0002'
down_revision: str | Sequence[str] | None = 'bot_channels_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_channel_receipts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_channel_receipts')),
    sa.UniqueConstraint('channel', 'external_id', name=op.f('uq_bot_channel_receipts_channel_external_id'))
    )
    op.create_index(op.f('ix_bot_channel_receipts_message_id'), 'bot_channel_receipts', ['message_id'], unique=False)
    op.create_table('bot_channel_contacts',
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('last_inbound_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'sender_id', name=op.f('pk_bot_channel_contacts'))
    )


def downgrade() -> None:
    op.drop_table('bot_channel_contacts')
    op.drop_index(op.f('ix_bot_channel_receipts_message_id'), table_name='bot_channel_receipts')
    op.drop_table('bot_channel_receipts')

"""channel media: files shoppers send (WhatsApp media, WeChat pictures), fetched and kept for the agent console

Revision ID: bot_channels_0005_s2ch
Revises: bot_channels_0004_s2ch
Create Date: 2026-12-07 06:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_channels_0005_s2ch'
down_revision: str | Sequence[str] | None = 'bot_channels_0004_s2ch'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_channel_media',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('media_key', sa.String(length=200), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('mime_type', sa.String(length=128), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('declared_sha256', sa.String(length=128), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stored_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_channel_media')),
    sa.UniqueConstraint('channel', 'media_key', name=op.f('uq_bot_channel_media_channel_media_key'))
    )


def downgrade() -> None:
    op.drop_table('bot_channel_media')

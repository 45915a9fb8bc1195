"""whatsapp templates registered by the merchant (name, language, parameter count)

Revision ID: bot_channels_0006_s2ch
Revises: bot_channels_0005_s2ch
Create Date: 2026-12-07 07:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_channels_0006_s2ch'
down_revision: str | Sequence[str] | None = 'bot_channels_0005_s2ch'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_whatsapp_templates',
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('parameter_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_bot_whatsapp_templates'))
    )


def downgrade() -> None:
    op.drop_table('bot_whatsapp_templates')

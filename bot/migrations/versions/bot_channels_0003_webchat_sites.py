"""web chat sites: allowed storefront origins and the identity verification secret

Revision ID: bot_channels_0003
Revises: bot_channels_0002
Create Date: 2026-12-07 03:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_channels_0003'
down_revision: str | Sequence[str] | None = 'bot_channels_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bot_webchat_sites',
    sa.Column('shop', sa.String(length=64), nullable=False),
    sa.Column('allowed_origins', sa.JSON(), nullable=False),
    sa.Column('identity_secret', sa.String(length=128), nullable=True),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('shop', name=op.f('pk_bot_webchat_sites'))
    )


def downgrade() -> None:
    op.drop_table('bot_webchat_sites')

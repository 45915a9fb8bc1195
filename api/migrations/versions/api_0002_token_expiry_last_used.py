"""api tokens: expires_at and last_used_at

Revision ID: api_0002
Revises: api_0001
Create Date: 2026-12-06 20:50:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'api_0002'
down_revision: str | Sequence[str] | None = 'api_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', kit.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')

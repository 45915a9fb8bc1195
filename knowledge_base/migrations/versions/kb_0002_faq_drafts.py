"""faq drafts

Revision ID: kb_0002
Revises: kb_0001
Create Date: 2026-12-07 02:51:23.038885
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'kb_0002'
down_revision: str | Sequence[str] | None = 'kb_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kb_drafts',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('review_requested_by', sa.String(length=120), nullable=True),
    sa.Column('review_requested_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['kb_entries.id'], name=op.f('fk_kb_drafts_entry_id_kb_entries')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_kb_drafts'))
    )


def downgrade() -> None:
    op.drop_table('kb_drafts')

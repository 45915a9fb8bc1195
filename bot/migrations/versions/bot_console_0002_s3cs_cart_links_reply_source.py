"""agent console: cart links sent from the reply box; handoff_replies.source widened to 32 characters

Revision ID: bot_console_0002_s3cs
Revises: bot_console_0001
Create Date: 2026-12-07 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_console_0002_s3cs'
down_revision: str | Sequence[str] | None = 'bot_console_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # String(12) held "draft_edited" with no room: a longer source failed on PostgreSQL only (SQLite ignores lengths).
    with op.batch_alter_table('handoff_replies') as batch:
        batch.alter_column('source', existing_type=sa.String(length=12), type_=sa.String(length=32),
                           existing_nullable=False)
    op.create_table('handoff_cart_links',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['handoff_agents.id'], name=op.f('fk_handoff_cart_links_agent_id_handoff_agents'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['bot_conversations.id'],
                            name=op.f('fk_handoff_cart_links_conversation_id_bot_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_cart_links'))
    )
    op.create_index(op.f('ix_handoff_cart_links_conversation_id'), 'handoff_cart_links', ['conversation_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_handoff_cart_links_conversation_id'), table_name='handoff_cart_links')
    op.drop_table('handoff_cart_links')
    with op.batch_alter_table('handoff_replies') as batch:
        batch.alter_column('source', existing_type=sa.String(length=32), type_=sa.String(length=12),
                           existing_nullable=False)

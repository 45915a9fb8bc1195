"""agent console: read markers per agent, the inbox's event log, the held draft's rich content

Revision ID: bot_console_0001
Revises:
Create Date: 2026-12-07 03:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'bot_console_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('bot_console',)
depends_on: str | Sequence[str] | None = 'bot_0101'


def upgrade() -> None:
    op.create_table('handoff_reads',
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('last_read_message_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['handoff_agents.id'], name=op.f('fk_handoff_reads_agent_id_handoff_agents'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['bot_conversations.id'],
                            name=op.f('fk_handoff_reads_conversation_id_bot_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'conversation_id', name=op.f('pk_handoff_reads'))
    )
    op.create_table('handoff_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('target_agent_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=40), nullable=True),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['handoff_agents.id'], name=op.f('fk_handoff_events_agent_id_handoff_agents'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['bot_conversations.id'],
                            name=op.f('fk_handoff_events_conversation_id_bot_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_agent_id'], ['handoff_agents.id'],
                            name=op.f('fk_handoff_events_target_agent_id_handoff_agents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_events'))
    )
    op.create_index('ix_handoff_events_conversation_id_id', 'handoff_events', ['conversation_id', 'id'], unique=False)
    with op.batch_alter_table('handoff_threads') as batch:
        batch.add_column(sa.Column('draft_content', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handoff_threads') as batch:
        batch.drop_column('draft_content')
    op.drop_index('ix_handoff_events_conversation_id_id', table_name='handoff_events')
    op.drop_table('handoff_events')
    op.drop_table('handoff_reads')

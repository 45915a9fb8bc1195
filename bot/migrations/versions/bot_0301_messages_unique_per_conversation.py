"""a repeated message id is a repeat only within its conversation (unique per conversation, not per channel)

Revision ID: bot_0301
Revises: bot_0202
Create Date: 2026-12-06 20:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'bot_0301'
down_revision: str | Sequence[str] | None = 'bot_0202'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bot_messages') as batch:
        batch.drop_constraint('uq_bot_messages_channel_external_id', type_='unique')
        batch.create_unique_constraint('uq_bot_messages_conversation_id_external_id',
                                       ['conversation_id', 'external_id'])


def downgrade() -> None:
    # Fails if two conversations stored the same message id meanwhile (the old rule cannot hold them).
    with op.batch_alter_table('bot_messages') as batch:
        batch.drop_constraint('uq_bot_messages_conversation_id_external_id', type_='unique')
        batch.create_unique_constraint('uq_bot_messages_channel_external_id', ['channel', 'external_id'])

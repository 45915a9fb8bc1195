"""payload tokens: one neutral table for every channel (was bot_telegram_callback_tokens, also used by WhatsApp)

Revision ID: bot_channels_0004_s2ch
Revises: bot_channels_0003
Create Date: 2026-12-07 06:30:00

The table is renamed, so every existing token (Telegram's and WhatsApp's: a token is a hash of its payload and
cannot tell which channel showed it) keeps resolving.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'bot_channels_0004_s2ch'
down_revision: str | Sequence[str] | None = 'bot_channels_0004_s2wi'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == 'postgresql':  # SQLite's primary key has no name of its own
        op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}')


def upgrade() -> None:
    _rename('bot_telegram_callback_tokens', 'bot_channel_payload_tokens')


def downgrade() -> None:
    _rename('bot_channel_payload_tokens', 'bot_telegram_callback_tokens')

"""web chat identity secrets encrypted at rest (AES-256-GCM with security.data_encryption_key)

Existing plain secrets are sealed with the key of the settings this migration runs under (SHOPTALK_ environment, the
same as the server's); a secret already sealed is left alone. Downgrade opens them again.

Revision ID: bot_channels_0004_s2wi
Revises: bot_channels_0003
Create Date: 2026-12-07 06:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'bot_channels_0004_s2wi'
down_revision: str | Sequence[str] | None = 'bot_channels_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SITES = sa.table('bot_webchat_sites', sa.column('shop', sa.String), sa.column('identity_secret', sa.String))


def _box():
    from bot.channels.webchat_sites import SecretBox
    from kit.settings import get_settings

    return SecretBox.of(get_settings())


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(SITES.c.shop, SITES.c.identity_secret)
                              .where(SITES.c.identity_secret.is_not(None))).all()
    plain = [(shop, secret) for shop, secret in rows if not secret.startswith('v1:')]
    if not plain:
        return
    box = _box()
    for shop, secret in plain:
        connection.execute(sa.update(SITES).where(SITES.c.shop == shop)
                           .values(identity_secret=box.seal(secret, shop=shop)))


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(SITES.c.shop, SITES.c.identity_secret)
                              .where(SITES.c.identity_secret.is_not(None))).all()
    sealed = [(shop, secret) for shop, secret in rows if secret.startswith('v1:')]
    if not sealed:
        return
    box = _box()
    for shop, secret in sealed:
        connection.execute(sa.update(SITES).where(SITES.c.shop == shop)
                           .values(identity_secret=box.open(secret, shop=shop)))

"""categories.updated_at: a rename reaches search's live index

Search keeps its index warm by a catalog signature (products' latest updated_at); a renamed category changed no
product row, so its products kept their old category words. The category's own updated_at now moves on a rename
and is part of the signature and of each product's index version.

Revision ID: commerce_2304_s4fx
Revises: commerce_2303_s3co
Create Date: 2026-12-07 13:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'commerce_2304_s4fx'
down_revision: str | Sequence[str] | None = 'commerce_2303_s3co'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both backends (SQLite adds and drops a column without constraints natively): a batch copy
# would drop `categories`, which products reference, and SQLite's foreign keys refuse that.
def upgrade() -> None:
    op.add_column('categories', sa.Column('updated_at', kit.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('categories', 'updated_at')

"""payments out of the locked transaction, refunds by the return policy, order expiry per merchant (issue 23)

A payment row is created before the provider is called (status creating, with its idempotency key and method
types) and completed afterwards; a refund records its lines, whether units went back to stock and who overrode
the return policy and why; return policies name non-returnable categories; the merchant's payment settings
(order expiry) live in the database.

Revision ID: commerce_2302_s2co
Revises: commerce_2301
Create Date: 2026-12-07 06:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'commerce_2302_s2co'
down_revision: str | Sequence[str] | None = 'commerce_2301'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('idempotency_key', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('method_types', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('payment_refunds') as batch:
        batch.add_column(sa.Column('lines', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('restocked', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('override_reason', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('actor', sa.String(length=300), nullable=True))
    with op.batch_alter_table('return_policies') as batch:
        batch.add_column(sa.Column('non_returnable_categories', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table(
        'payment_settings',
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('payment_settings')
    with op.batch_alter_table('return_policies') as batch:
        batch.drop_column('non_returnable_categories')
    with op.batch_alter_table('payment_refunds') as batch:
        batch.drop_column('actor')
        batch.drop_column('override_reason')
        batch.drop_column('restocked')
        batch.drop_column('lines')
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('method_types')
        batch.drop_column('idempotency_key')

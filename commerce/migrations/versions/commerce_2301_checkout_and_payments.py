"""checkout and payments (issue 23)

Orders keep insurance, fees and what is due on delivery apart from the charged total, the exchange rates used,
the delivery address, an expiry and an attention flag; payment methods per country/channel, payments, provider
events (seen once) and refunds.

Revision ID: commerce_2301
Revises: commerce_0601
Create Date: 2026-12-07 02:51:29.705632
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'commerce_2301'
down_revision: str | Sequence[str] | None = 'commerce_0601'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    money = kit.db.money_column_type
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('insurance', money(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('fees', money(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('due_on_delivery', money(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('incoterm', sa.String(length=3), nullable=True))
        batch.add_column(sa.Column('exchange_rates', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('recipient', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('phone', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('address', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('summary_digest', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('expires_at', kit.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('amount_paid', money(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('amount_refunded', money(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('attention', sa.String(length=300), nullable=True))
        batch.create_index('ix_orders_expires_at', ['expires_at'])
    op.create_table(
        'payment_methods',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('method_types', sa.JSON(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('instructions', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('country', 'channel', 'provider'),
    )
    op.create_table(
        'payments',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('order_id', sa.Integer(), sa.ForeignKey('orders.id', ondelete='CASCADE'), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('charge_id', sa.String(length=200), nullable=True),
        sa.Column('amount', money(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('url', sa.Text(), nullable=True),
        sa.Column('amount_refunded', money(), nullable=False),
        sa.Column('created_at', kit.db.UTCDateTime(), nullable=False),
        sa.Column('updated_at', kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'reference'),
    )
    op.create_index('ix_payments_order_id', 'payments', ['order_id'])
    op.create_table(
        'payment_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=80), nullable=False),
        sa.Column('order_id', sa.Integer(), sa.ForeignKey('orders.id', ondelete='SET NULL'), nullable=True),
        sa.Column('outcome', sa.String(length=40), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('received_at', kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'event_id'),
    )
    op.create_table(
        'payment_refunds',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('payment_id', sa.Integer(), sa.ForeignKey('payments.id', ondelete='CASCADE'), nullable=False),
        sa.Column('idempotency_key', sa.String(length=120), nullable=False),
        sa.Column('amount', money(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('provider_ref', sa.String(length=200), nullable=True),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('created_at', kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('payment_id', 'idempotency_key'),
    )
    op.create_index('ix_payment_refunds_payment_id', 'payment_refunds', ['payment_id'])
    op.create_table(
        'delivery_addresses',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('owner', sa.String(length=240), nullable=False),
        sa.Column('shopper_id', sa.Integer(), sa.ForeignKey('shoppers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('created_at', kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_delivery_addresses_owner', 'delivery_addresses', ['owner'])
    op.create_index('ix_delivery_addresses_shopper_id', 'delivery_addresses', ['shopper_id'])


def downgrade() -> None:
    op.drop_table('delivery_addresses')
    op.drop_index('ix_payment_refunds_payment_id', table_name='payment_refunds')
    op.drop_table('payment_refunds')
    op.drop_table('payment_events')
    op.drop_index('ix_payments_order_id', table_name='payments')
    op.drop_table('payments')
    op.drop_table('payment_methods')
    with op.batch_alter_table('orders') as batch:
        batch.drop_index('ix_orders_expires_at')
        for column in ('attention', 'amount_refunded', 'amount_paid', 'expires_at', 'summary_digest', 'address',
                       'phone', 'recipient', 'exchange_rates', 'incoterm', 'due_on_delivery', 'fees', 'insurance'):
            batch.drop_column(column)

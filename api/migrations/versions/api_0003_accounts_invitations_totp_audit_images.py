"""accounts invitations totp audit images

Revision ID: api_0003
Revises: api_0002
Create Date: 2026-12-07 02:51:13.313821
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kit.db

revision: str = 'api_0003'
down_revision: str | Sequence[str] | None = 'api_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_invitations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by', sa.Integer(), nullable=False),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_invitations_token_hash'))
    )
    op.create_table('api_account_totp',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('confirmed_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_api_account_totp'))
    )
    op.create_table('api_audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('area', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_audit_events'))
    )
    op.create_index('ix_api_audit_events_area_at', 'api_audit_events', ['area', 'at'], unique=False)
    op.create_index(op.f('ix_api_audit_events_at'), 'api_audit_events', ['at'], unique=False)
    op.create_table('api_uploaded_images',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_uploaded_images'))
    )


def downgrade() -> None:
    op.drop_table('api_uploaded_images')
    op.drop_index(op.f('ix_api_audit_events_at'), table_name='api_audit_events')
    op.drop_index('ix_api_audit_events_area_at', table_name='api_audit_events')
    op.drop_table('api_audit_events')
    op.drop_table('api_account_totp')
    op.drop_table('api_invitations')

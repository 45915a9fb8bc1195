"""unguessable public order references

Revision ID: commerce_0601
Revises: commerce_0502
Create Date: 2026-12-06 20:40:00

Adds `orders.public_ref` (ST-XXXXX-XXXXX: 10 random Crockford base32 characters, unique, never NULL) and gives
every existing order one. The generator is copied here (not imported) so this revision keeps working as the code
moves on.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'commerce_0601'
down_revision: str | Sequence[str] | None = 'commerce_0502'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _new_ref(taken: set[str]) -> str:
    while True:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        ref = f"ST-{body[:5]}-{body[5:]}"
        if any(c.isdigit() for c in body) and ref not in taken:
            taken.add(ref)
            return ref


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('public_ref', sa.String(length=16), nullable=True))
    orders = sa.table('orders', sa.column('id', sa.Integer()), sa.column('public_ref', sa.String()))
    connection = op.get_bind()
    ids = connection.execute(sa.select(orders.c.id).where(orders.c.public_ref.is_(None))).scalars().all()
    taken: set[str] = set()
    set_ref = orders.update().where(orders.c.id == sa.bindparam('order_id')).values(public_ref=sa.bindparam('ref'))
    for start in range(0, len(ids), 1000):
        connection.execute(set_ref, [{'order_id': i, 'ref': _new_ref(taken)} for i in ids[start:start + 1000]])
    with op.batch_alter_table('orders') as batch:
        batch.alter_column('public_ref', existing_type=sa.String(length=16), nullable=False)
        batch.create_unique_constraint(batch.f('uq_orders_public_ref'), ['public_ref'])


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_constraint(batch.f('uq_orders_public_ref'), type_='unique')
        batch.drop_column('public_ref')

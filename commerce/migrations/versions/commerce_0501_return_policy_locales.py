"""return policy conditions and notes per locale

Revision ID: commerce_0501
Revises: commerce_0401
Create Date: 2026-11-29 04:00:00

Adds `return_policies.translations` (JSON, {locale: {"conditions": [...], "notes": ""}}; English stays in
`conditions` and `notes` as the fallback). A shop that loaded the shipped policies unchanged gets their Chinese
texts; a policy whose English conditions or notes were edited is left without a translation (it would not match).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = 'commerce_0501'
down_revision: str | Sequence[str] | None = 'commerce_0401'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HANDLE_EN = "Handle the goods only as you would in a shop; loss of value from other use may be deducted."
_HANDLE_ZH = "请仅以在实体店中查看商品的方式检查商品；因超出此范围的使用导致的商品贬值，可能从退款中扣除。"
_REFUND_EN = "We refund within 14 days, including the standard outbound delivery charge."
_REFUND_ZH = "我们将在 14 天内退款，退款包括原订单的标准配送运费。"
# Frozen copy of data/returns.yaml as shipped with this revision: (scope, English conditions, English notes,
# zh translation).
_SHIPPED: list[tuple[str, list[str], str, dict[str, Any]]] = [
    ("EU", ["Withdraw within 14 days of receiving the goods, without giving a reason.",
            "Send the goods back within 14 days of telling us you withdraw.", _HANDLE_EN, _REFUND_EN],
     "Express delivery is refunded only up to the standard delivery price (art. 13(2)); the shop refunds that "
     "amount.",
     {"conditions": ["自收到商品之日起 14 天内，您可以撤回本次购买合同，无需说明任何理由。",
                     "请在通知我们撤回之日起 14 天内将商品寄回。", _HANDLE_ZH, _REFUND_ZH],
      "notes": "如您选择了快递配送，运费仅按标准配送的价格退还（第 13 条第 2 款）；本店退还该金额。"}),
    ("GB", ["Cancel within 14 days of receiving the goods, without giving a reason.",
            "Send the goods back within 14 days of telling us you cancel.", _HANDLE_EN, _REFUND_EN], "",
     {"conditions": ["自收到商品之日起 14 天内，您可以取消订单，无需说明任何理由。",
                     "请在通知我们取消之日起 14 天内将商品寄回。", _HANDLE_ZH, _REFUND_ZH],
      "notes": ""}),
    ("*", ["Return unused goods in their original packaging within 30 days of delivery.",
           "Return shipping is paid by the shopper unless the item is faulty or wrong.",
           "Duties and taxes paid to the carrier on delivery are not refunded by us; customs may refund them on "
           "re-export."], "",
     {"conditions": ["请在商品送达后 30 天内，将未使用的商品连同原包装退回。",
                     "退货运费由顾客承担，商品有缺陷或发错货的除外。",
                     "收货时向承运商缴纳的关税和税费不由我们退还；商品复运出口时，海关可能予以退还。"],
      "notes": ""}),
]


def upgrade() -> None:
    with op.batch_alter_table('return_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('translations', sa.JSON(), server_default='{}', nullable=False))
    policies = sa.table('return_policies', sa.column('id', sa.Integer()), sa.column('scope', sa.String()),
                        sa.column('conditions', sa.JSON()), sa.column('notes', sa.Text()),
                        sa.column('translations', sa.JSON()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(policies.c.id, policies.c.scope, policies.c.conditions,
                                        policies.c.notes)).all()
    for row in rows:
        for scope, english, notes, chinese in _SHIPPED:
            if row.scope == scope and list(row.conditions or []) == english and (row.notes or "") == notes:
                connection.execute(policies.update().where(policies.c.id == row.id)
                                   .values(translations={"zh": chinese}))


def downgrade() -> None:
    with op.batch_alter_table('return_policies', schema=None) as batch_op:
        batch_op.drop_column('translations')

"""Refund errors travel as a catalog key and values (the amount as money), and each reader gets them in their
language: the REST API and the agent console by Accept-Language (the console's own language comes from it too), the
back office the same way; the machine-readable code stays."""
from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from bot import i18n
from commerce.payments import service as payments
from commerce.payments.errors import RefundNotPossible
from commerce.payments.schemas import RefundLineIn
from kit.db import Database
from kit.errors import Message, Money
from kit.settings import Settings
from tests.api.test_backoffice import make_account, signed_in
from tests.commerce.checkout.test_backoffice_orders import delivered_days_ago
from tests.commerce.checkout.test_refunds import BANK, de_policy, paid_order
from tests.http import app_client

NEW_KEYS = ("error.refund_at_most", "error.refund_no_payment", "error.refund_other_provider",
            "error.refund_unknown_line", "error.refund_quantity", "error.refund_outside_policy",
            "error.refund_rule_window", "error.refund_rule_non_returnable", "error.refund_rule_both",
            "error.refund_override_give_reason", "error.refund_override_ask", "error.refund_unknown",
            "error.refund_sent_reference", "error.refund_override_not_allowed")


@pytest.fixture
async def client(shop: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    async with app_client(create_app(settings, database=shop)) as http:
        yield http


def test_every_refund_error_is_written_in_every_language() -> None:
    for key in NEW_KEYS:
        english = i18n.template("en", key)
        for language in ("zh", "es", "ja"):
            assert i18n.has_text(language, key), (language, key)
            assert i18n.template(language, key) != english, (language, key)  # translated, not copied


async def test_the_service_says_too_much_as_a_key_and_money(shop: Database) -> None:
    order = await paid_order(shop, lines=[("TEE-1", 1)], currency="USD", delivered=False)
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundNotPossible) as too_much:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="m1",
                                  amount=order.total + 1)
    error = too_much.value
    assert error.code == "refund_not_possible"
    assert error.message == Message("error.refund_at_most", {"amount": Money(order.total, "USD")})
    assert i18n.render("en", error.message) == f"At most ${order.total:,.2f} can be refunded."
    assert i18n.render("zh", error.message) == f"最多可退款 US${order.total:,.2f}。"
    assert error.detail == i18n.render("en", error.message)  # logs and the CLI read English


async def test_the_api_answers_in_the_readers_language_with_a_stable_code(client: httpx.AsyncClient,
                                                                          shop: Database) -> None:
    order = await paid_order(shop, lines=[("TEE-1", 1)], currency="USD", delivered=False)
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    body = {"amount": str(order.total + 1), "idempotency_key": "api-1"}
    answers = {}
    for language in ("en-GB,en;q=0.8", "zh-CN,zh;q=0.9", "de-DE,ja;q=0.5", ""):
        answer = await client.post(f"/api/v1/orders/{order.id}/refunds", json=body,
                                   headers={"Authorization": f"Bearer {token}", "Accept-Language": language})
        assert answer.status_code == 409
        problem = answer.json()
        assert (problem["code"], problem["refundable"], problem["currency"]) == \
            ("refund_not_possible", f"{order.total:.2f}", "USD")
        answers[language] = problem["detail"]
    assert answers["en-GB,en;q=0.8"] == answers[""] == f"At most ${order.total:,.2f} can be refunded."
    assert answers["zh-CN,zh;q=0.9"] == f"最多可退款 US${order.total:,.2f}。"
    assert answers["de-DE,ja;q=0.5"] == f"返金できるのは最大 ${order.total:,.2f} です。"  # German: no catalog


async def test_the_console_and_the_back_office_say_the_policy_in_the_readers_language(
        client: httpx.AsyncClient, shop: Database) -> None:
    await de_policy(shop)
    order = await paid_order(shop, lines=[("TEE-1", 1), ("TEA-1", 1)])
    tea = next(line for line in order.lines if line.sku == "TEA-1")
    await make_account(shop, "sue@shop.test", "supervisor")
    signed = await client.post("/api/v1/agent/session",
                               json={"email": "sue@shop.test", "password": "correct horse battery"})
    headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
    body = {"lines": [{"line_id": tea.id, "quantity": 1}], "idempotency_key": "c-1"}
    for language, expected in (
            ("zh-CN", f"订单 {order.number}：此退款属于不可退货的类别（tea），超出目的地的退货政策。"
                      "请填写原因以越权退款。"),
            ("en", f"Order {order.number}: the refund is a non-returnable category (tea) of the destination's "
                   "return policy. Give a reason to override it.")):
        # The console page and its API calls carry the browser's Accept-Language: the page's words and the
        # server's reasons come out in one language.
        page = await client.get("/agent", headers={"Accept-Language": language})
        assert f'lang="{language[:2]}"' in page.text
        refused = await client.post(f"/api/v1/agent/orders/{order.id}/refunds", json=body,
                                    headers={**headers, "Accept-Language": language})
        assert refused.status_code == 409
        assert refused.json()["code"] == "refund_outside_policy"
        assert refused.json()["detail"] == expected
    # The back office form, three weeks after delivery, as staff (who cannot override): window and category.
    await make_account(shop, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    await delivered_days_ago(shop, order.id, 21)
    form = {"csrf_token": csrf, "idempotency_key": "b-1", f"qty_{tea.id}": "1"}
    zh = await client.post(f"/backoffice/orders/{order.id}/refund", data=form, headers={"Accept-Language": "zh"})
    assert zh.status_code == 409
    assert "此退款超出 14 天的退货期限且属于不可退货的类别（tea），超出目的地的退货政策。" \
        "主管或店主可以越权退款。" in zh.text
    en = await client.post(f"/backoffice/orders/{order.id}/refund", data=form, headers={"Accept-Language": "en-US"})
    assert "outside the return window of 14 days and a non-returnable category (tea)" in en.text
    assert "A supervisor or the owner can override it." in en.text
    async with shop.sessions() as session:
        assert (await payments.payment_state(session, order_id=order.id))[0].amount_refunded == Decimal(0)


async def test_refunding_more_of_a_line_than_was_bought_says_so_in_chinese(shop: Database) -> None:
    order = await paid_order(shop, lines=[("TEE-1", 1)])
    tee = order.lines[0]
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundNotPossible) as more:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="q1",
                                  lines=[RefundLineIn(line_id=tee.id, quantity=2)])
    assert more.value.code == "refund_quantity"
    assert more.value.message is not None
    assert i18n.render("zh", more.value.message) == "TEE-1 仅剩 1 件可退款。"
    assert i18n.render("en", more.value.message) == "Only 1 of TEE-1 can still be refunded."

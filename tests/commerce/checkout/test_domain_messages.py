"""Order and payment errors a shopper or an agent reads travel as a catalog key and values, as the refund errors do
(the status in the reader's words); every key is written in every language; the English detail stays for logs."""
from __future__ import annotations

import pytest

from bot import i18n
from commerce.orders import service as orders
from commerce.orders.errors import IllegalTransition
from commerce.payments import service as payments
from commerce.payments.errors import PaymentNotPossible
from commerce.payments.providers import TelegramProvider
from kit.db import Database
from kit.errors import InvalidInput, Message
from tests.commerce.checkout.test_payments import place
from tests.commerce.checkout.test_refunds import BANK

NEW_KEYS = ("error.order_not_payable", "error.cancel_not_allowed", "error.cancel_not_allowed_return",
            "error.tracking_required", "error.offline_reference")


def test_every_order_and_payment_error_is_written_in_every_language() -> None:
    for key in NEW_KEYS:
        english = i18n.template("en", key)
        for language in ("zh", "es", "ja"):
            assert i18n.has_text(language, key), (language, key)
            assert i18n.template(language, key) != english, (language, key)


async def test_paying_a_cancelled_order_says_so_in_the_readers_language(shop: Database) -> None:
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:msg-1")
    async with shop.unit_of_work() as session:
        await orders.transition_order(session, order_id=order.id, to_status="cancelled")
    async with shop.unit_of_work() as session:
        with pytest.raises(PaymentNotPossible) as refused:
            await payments.start_payment(session, order_id=order.id, provider=TelegramProvider())
    error = refused.value
    assert error.code == "payment_not_possible"
    assert error.message == Message("error.order_not_payable",
                                    {"number": order.number, "status": Message("console.order_status_cancelled")})
    assert i18n.render("en", error.message) == f"Order {order.number} is cancelled."
    assert "已取消" in i18n.render("zh", error.message)
    assert error.detail == i18n.render("en", error.message)


async def test_shipping_without_tracking_and_cancelling_a_shipped_order_say_so_in_the_readers_language(
        shop: Database) -> None:
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:msg-2")
    async with shop.unit_of_work() as session:
        await orders.transition_order(session, order_id=order.id, to_status="paid")
    async with shop.unit_of_work() as session:
        with pytest.raises(InvalidInput) as untracked:
            await orders.transition_order(session, order_id=order.id, to_status="fulfilled")
    assert untracked.value.code == "tracking_required"
    assert untracked.value.message == Message("error.tracking_required")
    assert i18n.render("en", untracked.value.message) == untracked.value.detail
    async with shop.unit_of_work() as session:
        await orders.transition_order(session, order_id=order.id, to_status="fulfilled", carrier="DHL",
                                      tracking_number="JD0001")
        await orders.transition_order(session, order_id=order.id, to_status="delivered")
    async with shop.unit_of_work() as session:
        with pytest.raises(IllegalTransition) as refused:
            await payments.cancel_order(session, order_id=order.id, providers=lambda name: BANK)
    assert refused.value.message == Message("error.cancel_not_allowed_return",
                                            {"number": order.number,
                                             "status": Message("console.order_status_delivered")})
    assert refused.value.detail == i18n.render("en", refused.value.message)
    assert i18n.render("es", refused.value.message) != refused.value.detail


async def test_an_offline_payment_without_its_reference_says_so_in_the_readers_language(shop: Database) -> None:
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:msg-3")
    async with shop.unit_of_work() as session:
        with pytest.raises(InvalidInput) as missing:
            await payments.mark_offline_received(session, order_id=order.id, provider=BANK, reference=" ",
                                                 actor="agent:1")
    assert missing.value.message == Message("error.offline_reference")
    assert "银行" in i18n.render("zh", missing.value.message)

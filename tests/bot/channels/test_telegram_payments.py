"""Telegram Payments through aiogram against the Bot API double: the invoice in the order's currency and minor
unit, pre_checkout_query answered only after stock and price are checked again, successful_payment pays once."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiogram.types import Update

from api.workers.channels import TELEGRAM_TOPIC, channel_handlers
from bot.channels.telegram import TelegramChannel
from bot.messages import OutboundMessage
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.orders import service as orders
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.providers import TelegramProvider
from kit.clock import clock
from kit.db import Database
from kit.outbox import OutboxWorker, enqueue
from tests.bot.channels.telegram_double import TelegramDouble
from tests.commerce.checkout.conftest import NOW, make_checkout_shop

CHAT = 5151


@pytest.fixture(autouse=True)
def on_the_rates_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


async def place(db: Database, external_id: str) -> Order:
    lines = [CartLineIn(sku="TEA-1", quantity=2)]
    async with db.sessions() as session:
        summary = await checkout.summarize(session, lines=lines, country="JP", currency="JPY")
    async with db.unit_of_work() as session:
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=lines, country="JP",
                                              currency="JPY", channel="telegram", external_id=external_id,
                                              expires_in_minutes=30)
    return order


async def send_invoice(db: Database, channel: TelegramChannel, double: TelegramDouble, order: Order) -> dict[str, Any]:
    """What the chat's "Pay in Telegram" does: the payment opened, its invoice queued and sent by the worker."""
    async with db.unit_of_work() as session:
        payment = await payments.start_payment(session, order_id=order.id, provider=TelegramProvider())
        charge = payments.charge_of(order)
        reply = OutboundMessage(channel="telegram", recipient_id=str(CHAT), message_id=order.id,
                                text=f"Here is the invoice for order #{order.number}.",
                                custom={"invoice": {"payload": payment.reference, "currency": charge.currency,
                                                    "amount_minor": charge.amount_minor,
                                                    "title": f"Order #{order.number}",
                                                    "description": f"Order reference {order.public_ref}"}})
        await enqueue(session, topic=TELEGRAM_TOPIC, payload=reply.model_dump(mode="json"),
                      idempotency_key=f"msg:{order.id}")
    assert await OutboxWorker(db.sessions, channel_handlers(telegram=channel, hub=None)).run_once() == 1
    return double.invoices[-1]


async def feed(channel: TelegramChannel, update: dict[str, Any]) -> None:
    await channel.feed(Update.model_validate(update, context={"bot": channel.bot}))


async def reload(db: Database, order_id: int) -> Order:
    async with db.sessions() as session:
        return await orders.get_order(session, order_id=order_id)


async def test_invoice_precheck_and_payment_once(db: Database, channel: TelegramChannel,
                                                 telegram_double: TelegramDouble) -> None:
    await make_checkout_shop(db)
    order = await place(db, "tg:1")
    invoice = await send_invoice(db, channel, telegram_double, order)
    assert (invoice["currency"], invoice["total_amount"]) == ("JPY", int(order.total))  # yen: no minor unit
    await feed(channel, telegram_double.pre_checkout_update(CHAT, invoice, total_amount=invoice["total_amount"] - 1))
    assert telegram_double.pre_checkout_answers[-1]["ok"] is False  # the price differs: not charged
    assert telegram_double.pre_checkout_answers[-1]["error_message"]
    await feed(channel, telegram_double.pre_checkout_update(CHAT, invoice))
    assert telegram_double.pre_checkout_answers[-1]["ok"] is True
    paid = telegram_double.successful_payment_update(CHAT, invoice, charge_id="tgch_1")
    await feed(channel, paid)
    await feed(channel, {**paid, "update_id": paid["update_id"] + 1000})  # delivered again under a new update id
    after = await reload(db, order.id)
    assert after.status == "paid"
    assert [h.to_status for h in after.history] == ["pending_payment", "paid"]
    await feed(channel, telegram_double.pre_checkout_update(CHAT, invoice))  # paying a paid order again
    assert telegram_double.pre_checkout_answers[-1]["ok"] is False


async def test_precheck_refuses_an_order_whose_stock_was_released(db: Database, channel: TelegramChannel,
                                                                  telegram_double: TelegramDouble,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await make_checkout_shop(db)
    order = await place(db, "tg:2")
    invoice = await send_invoice(db, channel, telegram_double, order)
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=31))
    async with db.unit_of_work() as session:
        assert await payments.expire_orders(session) == 1
    await feed(channel, telegram_double.pre_checkout_update(CHAT, invoice, language="zh-hans"))
    answer = telegram_double.pre_checkout_answers[-1]
    assert answer["ok"] is False
    assert "订单" in answer["error_message"]  # in the shopper's language
    assert (await reload(db, order.id)).status == "expired"

"""A shopper buys through Telegram: a real aiogram Dispatcher polls the Bot API double on 127.0.0.1."""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram.client.telegram import TelegramAPIServer
from fastapi import FastAPI

from api.app import create_app
from commerce.orders import service as orders
from kit.db import Database
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.served_shop import prepare_demo_database, shop_settings
from tests.bot.channels.telegram_double import SentMessage, TelegramDouble

pytestmark = pytest.mark.slow


@dataclass
class Shop:
    app: FastAPI
    database: Database
    telegram: TelegramDouble


@pytest.fixture
async def telegram_double() -> AsyncIterator[TelegramDouble]:
    double = await TelegramDouble(token=BOT_TOKEN).start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
async def shop(tmp_path: Path, telegram_double: TelegramDouble) -> AsyncIterator[Shop]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await prepare_demo_database(url)
    database = Database(url)
    # A bot token and no webhook secret: the demo's polling mode.
    app = create_app(shop_settings(url, security={"telegram_bot_token": BOT_TOKEN}), database=database)
    app.state.telegram_api_server = TelegramAPIServer.from_base(telegram_double.base_url)
    try:
        async with app.router.lifespan_context(app):
            yield Shop(app, database, telegram_double)
    finally:
        await database.dispose()


class Shopper:
    def __init__(self, telegram: TelegramDouble, chat_id: int, language: str) -> None:
        self.telegram = telegram
        self.chat_id = chat_id
        self.language = language

    @property
    def seen(self) -> int:
        return len(self.telegram.to(self.chat_id))

    async def says(self, text: str, *, expect: str) -> SentMessage:
        before = self.seen
        await self.telegram.user_sends(self.chat_id, text, language=self.language)
        return await self.telegram.wait_for_text(self.chat_id, expect, after=before, timeout=60)

    async def presses(self, button: str, *, on: SentMessage, expect: str) -> SentMessage:
        before = self.seen
        answered = len(self.telegram.answered_callbacks)
        await self.telegram.user_presses(self.chat_id, on, on.button(button)["callback_data"],
                                         language=self.language)
        reply = await self.telegram.wait_for_text(self.chat_id, expect, after=before, timeout=60)
        assert len(self.telegram.answered_callbacks) > answered  # the button's spinner stops
        return reply


async def _order(database: Database, number: str) -> tuple[str, str | None]:
    async with database.unit_of_work() as session:
        order = await orders.get_order_by_number(session, number=number)
        return order.status, order.email


async def _orders(database: Database) -> int:
    async with database.sessions() as session:
        return len(await orders.list_orders(session))


def _placed_number(message: SentMessage) -> str:
    match = re.search(r"#([A-Za-z0-9-]+)", message.text)
    assert match is not None
    return match.group(1)


async def test_purchase_and_order_status_in_english(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    anna = Shopper(shop.telegram, 70_001, "en")
    menu = await anna.says("/start", expect="What are you looking for")
    assert menu.button("Track an order")["callback_data"] == "menu:order"
    await anna.says("I am looking for an electric kettle", expect="Here is what I found")
    card = await shop.telegram.wait_for_button(anna.chat_id, "Add to cart")
    assert "Kettle" in card.text
    assert "€" in card.text
    added = await anna.presses("Add to cart", on=card, expect="Added 1")
    orders_before = await _orders(shop.database)
    await anna.presses("Checkout", on=added, expect="Which country")
    await anna.says("Germany", expect="e-mail")
    await anna.says("anna@example.com", expect="recipient's full name")
    await anna.says("Anna Schmidt", expect="street address")
    await anna.says("Unter den Linden 1", expect="city")
    await anna.says("Berlin", expect="postcode")
    await anna.says("101", expect="phone number")
    refused = await anna.says("030 1234567", expect="The postcode isn't valid for Germany. Expected:")
    assert "10115" not in refused.text or "Expected" in refused.text
    summary = await anna.says("10115", expect="Please check your order")
    assert "nothing to pay on delivery" in summary.text
    assert summary.button("Place order")["callback_data"].startswith("checkout:place:")
    assert len(summary.button("Place order")["callback_data"].encode()) <= 64
    assert summary.button("Change cart")["callback_data"] == "cart:view"
    assert await _orders(shop.database) == orders_before  # nothing ordered before the shopper confirms
    placed = await anna.says("yes", expect="is placed")
    number = _placed_number(placed)
    assert await _order(shop.database, number) == ("pending_payment", "anna@example.com")

    which = await anna.says("/orders", expect="Which order")
    status = await anna.presses(f"#{number}", on=which, expect=f"Order #{number}")
    assert "awaiting payment" in status.text
    empty = await anna.says("/cart", expect="cart is empty")
    assert empty.parse_mode == "HTML"
    assert BOT_TOKEN not in caplog.text  # aiogram logged its polling, never the token


async def test_purchase_and_order_status_in_chinese(shop: Shop) -> None:
    li = Shopper(shop.telegram, 70_002, "zh-hans")
    await li.says("/start", expect="您好")
    await li.says("有电水壶吗", expect="为您找到")
    card = await shop.telegram.wait_for_button(li.chat_id, "加入购物车")
    added = await li.presses("加入购物车", on=card, expect="加入购物车")
    await li.presses("去结算", on=added, expect="哪个国家")
    await li.says("德国", expect="邮箱")
    await li.says("li.wei@example.com", expect="收件人")
    await li.says("李伟", expect="街道地址")
    await li.says("Unter den Linden 1", expect="城市")
    await li.says("Berlin", expect="邮政编码")
    await li.says("10115", expect="电话号码")
    summary = await li.says("030 1234567", expect="下单前请核对您的订单")
    assert "现在支付：€" in summary.text
    placed = await li.says("确认", expect="已提交")
    number = _placed_number(placed)
    assert (await _order(shop.database, number))[0] == "pending_payment"
    which = await li.says("/orders", expect="哪个订单")
    status = await li.presses(f"#{number}", on=which, expect=f"订单 #{number}")
    assert "待付款" in status.text


async def test_stickers_injection_and_replays_over_polling(shop: Shop) -> None:
    sam = Shopper(shop.telegram, 70_003, "en")
    before = sam.seen
    await shop.telegram.user_sends_sticker(sam.chat_id)
    await shop.telegram.wait_for_text(sam.chat_id, "only read text", after=before)
    injected = await sam.says("<script>alert(1)</script> kettle & <b>tea</b>", expect="")
    assert injected.parse_mode == "HTML"
    replayed = shop.telegram.message_update(sam.chat_id, text="/cart")
    await shop.telegram.push_update(replayed)
    await shop.telegram.wait_for_text(sam.chat_id, "cart is empty", after=sam.seen)
    count = sam.seen
    await shop.telegram.push_update(replayed)  # Telegram re-delivering the same update_id
    await sam.says("/help", expect="")
    assert sam.seen == count + 1  # the help reply only; the replay got no second answer

"""Product cards as Telegram photos: sendPhoto with the card's image, caption and buttons; text when refused."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile
from aiohttp import web

from api.workers.channels import TELEGRAM_TOPIC, channel_handlers
from bot.channels.telegram import CAPTION_LIMIT, TelegramChannel, render
from bot.messages import Button, OutboundMessage, ProductCard
from kit.db import Database
from kit.outbox import DELIVERED, OutboxEvent, OutboxWorker, enqueue
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.telegram_double import TelegramDouble, utf16_len
from tests.http import start_aiohttp

CHAT = 5151
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 64


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """A little image host on 127.0.0.1: a PNG, an HTML page and a 404."""
    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/kettle.png", png)
    app.router.add_get("/page.html", page)
    runner, port = await start_aiohttp(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _card(title: str, image_url: str | None, *, subtitle: str | None = None) -> ProductCard:
    return ProductCard(sku="KET-1", product_id=1, title=title, subtitle=subtitle, price_text="€49.90",
                       image_url=image_url, buttons=[Button(title="Add to cart", payload="cart:add:KET-1"),
                                                     Button(title="Details", payload="product:details:1")])


async def _deliver(db: Database, channel: TelegramChannel, *cards: ProductCard, key: str = "msg:1") -> OutboxEvent:
    reply = OutboundMessage(channel="telegram", recipient_id=str(CHAT), text="Here is what I found:",
                            cards=list(cards))
    async with db.unit_of_work() as session:
        event = await enqueue(session, topic=TELEGRAM_TOPIC, payload=reply.model_dump(mode="json"),
                              idempotency_key=key)
    assert await OutboxWorker(db.sessions, channel_handlers(telegram=channel, hub=None)).run_once() == 1
    async with db.unit_of_work() as session:
        stored: OutboxEvent | None = await session.get(OutboxEvent, event.id)
        assert stored is not None
        return stored


async def test_card_with_an_image_is_a_photo_with_caption_and_buttons(
        db: Database, channel: TelegramChannel, telegram_double: TelegramDouble, images: str) -> None:
    event = await _deliver(db, channel, _card("Kettle <b>Pro</b> & co", f"{images}/kettle.png"),
                           _card("No picture", None))
    assert event.status == DELIVERED
    intro, photo, plain = telegram_double.to(CHAT)
    assert intro.photo is None
    assert photo.photo_source == f"{images}/kettle.png"
    assert telegram_double.fetched_photos == {f"{images}/kettle.png": len(PNG)}
    assert photo.text == "Kettle <b>Pro</b> & co\n€49.90"  # escaped: shown literally, title bold
    assert photo.raw.startswith("<b>Kettle &lt;b&gt;Pro&lt;/b&gt; &amp; co</b>")
    assert photo.parse_mode == "HTML"
    assert [b["callback_data"] for b in photo.buttons] == ["cart:add:KET-1", "product:details:1"]
    assert plain.photo is None
    assert plain.text == "No picture\n€49.90"
    assert plain.button("Add to cart")["callback_data"] == "cart:add:KET-1"


@pytest.mark.parametrize(("path", "refusal"), [
    ("https://images.shoptalk.example/kettle.jpg", "failed to get HTTP URL content"),
    ("{images}/missing.png", "failed to get HTTP URL content"),
    ("{images}/page.html", "wrong type of the web page content"),
])
async def test_refused_photo_falls_back_to_text(db: Database, channel: TelegramChannel,
                                                telegram_double: TelegramDouble, images: str, path: str,
                                                refusal: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.channels.telegram")
    url = path.format(images=images)
    event = await _deliver(db, channel, _card("Kettle", url))
    assert event.status == DELIVERED
    _, card = telegram_double.to(CHAT)
    assert card.photo is None
    assert card.text == "Kettle\n€49.90"
    assert [b["callback_data"] for b in card.buttons] == ["cart:add:KET-1", "product:details:1"]
    assert refusal in caplog.text
    assert telegram_double.calls.count("sendphoto") == 1
    await _deliver(db, channel, _card("Kettle", url), key="msg:2")  # a refused URL is not tried again for a while
    assert telegram_double.calls.count("sendphoto") == 1


def test_a_relative_or_odd_image_url_is_not_sent_as_a_photo() -> None:
    for url in ("/static/kettle.png", "ftp://x.test/k.png", "javascript:alert(1)", "https://x.test/a b.png"):
        reply = OutboundMessage(channel="telegram", recipient_id="1", text="x", cards=[_card("K", url)])
        assert render(reply)[1].photo_url is None


async def test_long_texts_are_cut_to_the_caption_limit(db: Database, channel: TelegramChannel,
                                                       telegram_double: TelegramDouble, images: str) -> None:
    title, subtitle = "电热水壶" * 400, "🫖 " * 600  # far over 1024 UTF-16 units, emoji count twice
    event = await _deliver(db, channel, _card(title, f"{images}/kettle.png", subtitle=subtitle))
    assert event.status == DELIVERED
    _, photo = telegram_double.to(CHAT)
    assert photo.photo is not None
    assert CAPTION_LIMIT - 10 <= utf16_len(photo.text) <= CAPTION_LIMIT
    assert photo.text.startswith("电热水壶电热水壶")
    assert photo.text.endswith("…\n€49.90")


async def test_double_speaks_sendphoto_like_telegram_to_aiogram(telegram_double: TelegramDouble,
                                                                images: str) -> None:
    bot = Bot(token=BOT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram_double.base_url)))
    try:
        uploaded = await bot.send_photo(chat_id=CHAT, photo=BufferedInputFile(PNG, "kettle.png"), caption="up")
        assert uploaded.photo is not None
        assert uploaded.caption == "up"
        again = await bot.send_photo(chat_id=CHAT, photo=uploaded.photo[-1].file_id)
        assert again.photo is not None
        by_url = await bot.send_photo(chat_id=CHAT, photo=f"{images}/kettle.png", caption="<i>x</i>",
                                      parse_mode="HTML")
        assert by_url.caption == "x"
        with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
            await bot.send_photo(chat_id=CHAT, photo="not-a-file-id")
        with pytest.raises(TelegramBadRequest, match="caption is too long"):
            await bot.send_photo(chat_id=CHAT, photo=uploaded.photo[-1].file_id, caption="x" * (CAPTION_LIMIT + 1))
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_photo(chat_id=CHAT, photo=uploaded.photo[-1].file_id, caption="<b>open",
                                 parse_mode="HTML")
        with pytest.raises(TelegramBadRequest, match="no text in the message to edit"):
            await bot.edit_message_text(chat_id=CHAT, message_id=uploaded.message_id, text="edited")
    finally:
        await bot.session.close()
    assert [m.photo_source for m in telegram_double.to(CHAT)] == [
        "<file>", uploaded.photo[-1].file_id, f"{images}/kettle.png"]

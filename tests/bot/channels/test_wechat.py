"""WeChat Official Account: signatures and safe mode (with WeChat's published test vectors), passive replies and
the customer-service API, against the loopback WeChat double."""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from bot import BotDeps
from bot.channels import wechat
from bot.channels.wechat import MessageCrypto, MessageInvalid, WeChatChannel
from bot.conversations.models import ConversationMessage
from bot.messages import Button, OutboundMessage
from kit.db import Database
from kit.outbox import DeliveryError, OutboxEvent
from kit.settings import Settings, WeChatSettings
from nlu.service import ParseResult
from tests.api.fuzzing import FallbackParser, use_cheap_bot
from tests.bot.channels.wechat_double import WeChatDouble
from tests.http import app_client

# WXBizMsgCrypt's published sample (developer.work.weixin.qq.com/document/path/90968; the same scheme as the
# Official Account's safe mode, with the receiver's id in the AppID's place).
VECTOR_TOKEN = "QDG6eK"
VECTOR_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
VECTOR_RECEIVER = "wx5823bf96d3bd56c7"
VECTOR_MESSAGE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
    "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t"
    "9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAV"
    "e0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
VECTOR_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="

APP_ID = "wx2c2769f8efd9abc2"
APP_SECRET = "wechat-app-secret-0123456789"
TOKEN = "wechat-token-0123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # the Official Account sample's key
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


def test_published_vectors_signature_and_decryption() -> None:
    crypto = MessageCrypto(VECTOR_KEY, VECTOR_RECEIVER)
    assert wechat.sha1_signature(VECTOR_TOKEN, "1409659813", "1372623149", VECTOR_MESSAGE) == \
        "477715d11cdb4164915debcba66cb864d751f3e6"
    fields = wechat.parse_xml(crypto.decrypt(VECTOR_MESSAGE))
    assert fields["Content"] == "hello"
    assert fields["MsgId"] == "4561255354251345929"
    assert wechat.sha1_signature(VECTOR_TOKEN, "1409659589", "263014780", VECTOR_ECHO) == \
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    assert crypto.decrypt(VECTOR_ECHO) == "1616140317555161061"
    with pytest.raises(MessageInvalid):
        MessageCrypto(VECTOR_KEY, "wx0000000000000000").decrypt(VECTOR_MESSAGE)  # addressed to another account
    with pytest.raises(wechat.SignatureInvalid):
        wechat.check_signature(VECTOR_TOKEN, {"timestamp": "1409659813", "nonce": "1372623149",
                                              "msg_signature": "0" * 40}, VECTOR_MESSAGE, key="msg_signature")


def test_encryption_round_trip_keeps_chinese_and_bytes_length() -> None:
    crypto = MessageCrypto(AES_KEY, APP_ID)
    text = "<xml><Content><![CDATA[测试一下中文的情况，消息长度是按字节来算的]]></Content></xml>"
    ciphertext = crypto.encrypt(text)
    assert crypto.decrypt(ciphertext) == text
    assert crypto.encrypt(text) != ciphertext  # 16 random bytes lead every message


def test_xml_with_entities_or_a_dtd_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><xml><Content>&b;</Content></xml>'
    with pytest.raises(MessageInvalid):
        wechat.parse_xml(bomb)
    with pytest.raises(MessageInvalid):
        wechat.parse_xml("<xml><Content>unclosed</xml>")


def test_buttons_become_menu_links_and_long_texts_split_by_bytes() -> None:
    message = OutboundMessage(channel="wechat", recipient_id=OPENID, text="为您找到" + "电水壶。" * 400,
                              buttons=[Button(title="加入购物车", payload="cart:add:KET-1"),
                                       Button(title="付款", url="https://pay.example/c/1")])
    texts = wechat.texts_of(message)
    assert len(texts) > 1
    assert all(len(t.encode("utf-8")) <= 2048 for t in texts)
    assert "".join(texts).count("电水壶") == 400
    assert ('<a href="weixin://bizmsgmenu?msgmenucontent=%E5%8A%A0%E5%85%A5%E8%B4%AD%E7%89%A9%E8%BD%A6'
            '&msgmenuid=cart%3Aadd%3AKET-1">加入购物车</a>') in texts[-1]
    assert "付款: https://pay.example/c/1" in texts[-1]


@pytest.fixture
async def platform() -> AsyncIterator[WeChatDouble]:
    double = await WeChatDouble(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, encoding_aes_key=AES_KEY).start()
    try:
        yield double
    finally:
        await double.stop()


def wechat_settings(platform: WeChatDouble, **overrides: Any) -> WeChatSettings:
    return WeChatSettings(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, encoding_aes_key=AES_KEY,
                          api_base=platform.base_url, **overrides)


async def _client(db: Database, platform: WeChatDouble, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        wechat=wechat_settings(platform, **overrides))
    app = create_app(settings, database=db)
    async with app_client(app) as http:
        use_cheap_bot(app)
        http.app = app  # type: ignore[attr-defined]
        yield http


@pytest.fixture
async def client(db: Database, platform: WeChatDouble) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(db, platform):
        yield http


async def send(client: httpx.AsyncClient, platform: WeChatDouble, xml: str, *, encrypted: bool = False,
               tamper: dict[str, str] | None = None) -> httpx.Response:
    params, body = platform.message_request(xml, encrypted=encrypted)
    params.update(tamper or {})
    return await client.post("/webhooks/wechat", params=params, content=body,
                             headers={"content-type": "text/xml"})


async def inbound_rows(db: Database) -> list[ConversationMessage]:
    async with db.sessions() as session:
        return list((await session.scalars(select(ConversationMessage).where(
            ConversationMessage.channel == "wechat", ConversationMessage.direction == "in")
            .order_by(ConversationMessage.id))).all())


async def test_url_verification(client: httpx.AsyncClient) -> None:
    timestamp, nonce = "1409304348", "xxxxxx"
    signature = wechat.sha1_signature(TOKEN, timestamp, nonce)
    params = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": "4536780213465"}
    answer = await client.get("/webhooks/wechat", params=params)
    assert answer.status_code == 200
    assert answer.text == "4536780213465"
    assert (await client.get("/webhooks/wechat", params={**params, "signature": "0" * 40})).status_code == 403
    missing = await client.get("/webhooks/wechat", params={k: v for k, v in params.items() if k != "signature"})
    assert missing.status_code == 401


@pytest.mark.parametrize("encrypted", [False, True])
async def test_a_message_gets_a_passive_reply_in_chinese(client: httpx.AsyncClient, db: Database,
                                                         platform: WeChatDouble, encrypted: bool) -> None:
    response = await send(client, platform, platform.message_xml(OPENID, Content="/cart"), encrypted=encrypted)
    # A passive reply (not "success") is itself the proof it came within wechat.passive_reply_seconds: no clock here.
    assert response.status_code == 200, response.text
    reply = platform.read_reply(response.text)
    assert reply["ToUserName"] == OPENID
    assert reply["FromUserName"] == platform.account
    assert reply["MsgType"] == "text"
    assert "购物车" in reply["Content"]  # Chinese by default
    [row] = await inbound_rows(db)
    assert row.text == "/cart"


@pytest.mark.parametrize("tamper", [{"msg_signature": "0" * 40}, {"signature": "0" * 40}])
async def test_a_forged_message_is_refused_and_nothing_stored(client: httpx.AsyncClient, db: Database,
                                                              platform: WeChatDouble, tamper: dict[str, str]) -> None:
    encrypted = "msg_signature" in tamper
    response = await send(client, platform, platform.message_xml(OPENID, Content="hi"), encrypted=encrypted,
                          tamper=tamper)
    assert response.status_code == 403
    assert response.json()["code"] == "wechat_signature_invalid"
    assert await inbound_rows(db) == []


async def test_bad_xml_is_a_clean_400(client: httpx.AsyncClient, db: Database, platform: WeChatDouble) -> None:
    for body in ("<xml><Content>", "<!DOCTYPE x [<!ENTITY a 'b'>]><xml><Content>&a;</Content></xml>", "[1, 2]"):
        params, _ = platform.message_request("<xml/>")
        response = await client.post("/webhooks/wechat", params=params, content=body.encode())
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_update"
    assert await inbound_rows(db) == []


async def test_a_retried_message_is_answered_once(client: httpx.AsyncClient, db: Database,
                                                  platform: WeChatDouble) -> None:
    xml = platform.message_xml(OPENID, Content="/cart", msg_id=6054768590064713999)
    first = platform.read_reply((await send(client, platform, xml)).text)
    assert first["Content"]
    again = platform.read_reply((await send(client, platform, xml)).text)  # WeChat's retry of the same MsgId
    assert again["Content"] == first["Content"]  # the same answer again (the first may never have arrived)
    assert len(await inbound_rows(db)) == 1


@pytest.mark.parametrize("encrypted", [False, True])
async def test_a_lost_passive_reply_is_given_again_to_wechats_retry(client: httpx.AsyncClient, db: Database,
                                                                    platform: WeChatDouble, encrypted: bool) -> None:
    xml = platform.message_xml(OPENID, Content="/cart")
    answer, tries = await platform.deliver(client, xml, encrypted=encrypted, lose=2)  # two answers lost on the way
    assert tries == 3
    reply = platform.read_reply(answer)  # checked as WeChat checks it: signature and AppID in safe mode
    assert "购物车" in reply["Content"]
    assert len(await inbound_rows(db)) == 1  # answered once: the retries did not run the bot again
    await asyncio.sleep(0.3)
    assert platform.to(OPENID) == []  # and nothing doubled by the customer-service API


async def test_a_retry_of_an_answer_sent_later_by_the_customer_service_api_gets_success(
        db: Database, platform: WeChatDouble) -> None:
    async for client in _client(db, platform, passive_reply_seconds=0.2):
        app = client.app  # type: ignore[attr-defined]
        parser = HeldParser()  # the answer is still being made while WeChat retries
        app.state.channels.runtime._deps = BotDeps(settings=app.state.settings, nlu=parser)
        xml = platform.message_xml(OPENID, Content="随便说点什么")
        assert (await send(client, platform, xml, encrypted=True)).text == "success"
        assert (await send(client, platform, xml, encrypted=True)).text == "success"  # WeChat's retry
        parser.gate.set()
        sent = await platform.wait_for_sent(OPENID, 1)
        await asyncio.sleep(0.8)
        assert platform.to(OPENID) == sent  # the answer went once, by the customer-service API
        assert len(await inbound_rows(db)) == 1


async def test_a_sticker_like_message_gets_a_polite_reply_and_keeps_the_raw_event(
        client: httpx.AsyncClient, db: Database, platform: WeChatDouble) -> None:
    xml = platform.message_xml(OPENID, "image", PicUrl="http://mmbiz.qpic.cn/x.jpg", MediaId="media-123")
    reply = platform.read_reply((await send(client, platform, xml)).text)
    assert "文字" in reply["Content"]
    [row] = await inbound_rows(db)
    assert row.kind == "unsupported"
    assert row.content is not None
    assert row.content["metadata"]["media"]["MediaId"] == "media-123"


async def test_a_menu_link_press_comes_back_as_its_payload(client: httpx.AsyncClient, db: Database,
                                                          platform: WeChatDouble) -> None:
    xml = platform.message_xml(OPENID, Content="查看购物车", bizmsgmenuid="cart:view")
    response = await send(client, platform, xml)
    assert response.status_code == 200
    [row] = await inbound_rows(db)
    assert row.kind == "callback"
    assert row.payload == "cart:view"


async def test_an_answer_later_than_the_window_goes_by_the_customer_service_api(db: Database,
                                                                               platform: WeChatDouble) -> None:
    parser = HeldParser()
    async for client in _client(db, platform, passive_reply_seconds=0.2):
        app = client.app  # type: ignore[attr-defined]
        app.state.channels.runtime._deps = BotDeps(settings=app.state.settings, nlu=parser)
        response = await send(client, platform, platform.message_xml(OPENID, Content="随便说点什么"), encrypted=True)
        assert parser.entered.is_set()
        assert not parser.gate.is_set()  # answered while the bot was still thinking: it did not wait for the answer
        assert response.text == "success"  # WeChat shows nothing and does not retry
        parser.gate.set()
        sent = await platform.wait_for_sent(OPENID, 1)
        assert sent[0]
        assert platform.token_requests == 1


class HeldParser(FallbackParser):
    """Parses only when the test opens its gate (never, here): an answer still being made when the app stops."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate, self.cancelled = asyncio.Event(), asyncio.Event(), False

    async def parse(self, text: str) -> ParseResult:
        self.entered.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().parse(text)


async def test_an_answer_still_being_made_is_stopped_when_the_app_shuts_down(db: Database,
                                                                            platform: WeChatDouble) -> None:
    parser = HeldParser()
    async for client in _client(db, platform, passive_reply_seconds=0.2, late_answer_grace_seconds=0):
        app = client.app  # type: ignore[attr-defined]
        app.state.channels.runtime._deps = BotDeps(settings=app.state.settings, nlu=parser)
        response = await send(client, platform, platform.message_xml(OPENID, Content="随便说点什么"), encrypted=True)
        assert response.text == "success"  # the answer comes later...
        await parser.entered.wait()
        late = [t for t in asyncio.all_tasks() if t.get_name() == "wechat-late-answer"]
        assert len(late) == 1
        assert not late[0].done()
    # ...but the app stopped first (no grace): its lifespan cancelled the answer and waited for it to end.
    assert late[0].done()
    assert parser.cancelled
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "wechat-late-answer"]
    assert [text for to, text in platform.sent if to == OPENID] == []


async def finish_once(stopping: asyncio.Event, parser: HeldParser) -> None:
    """Let the held answer finish as soon as the app begins to stop."""
    await stopping.wait()
    parser.gate.set()


async def test_an_answer_that_finishes_while_the_app_stops_is_stored_and_queued(db: Database,
                                                                               platform: WeChatDouble) -> None:
    parser = HeldParser()
    async for client in _client(db, platform, passive_reply_seconds=0.2, late_answer_grace_seconds=60):
        app = client.app  # type: ignore[attr-defined]
        app.state.channels.runtime._deps = BotDeps(settings=app.state.settings, nlu=parser)
        assert (await send(client, platform, platform.message_xml(OPENID, Content="随便说点什么"),
                           encrypted=True)).text == "success"
        await parser.entered.wait()
        finisher = asyncio.create_task(finish_once(app.state.channels.delivery.stop, parser))
    await finisher
    assert parser.cancelled is False
    assert len(await inbound_rows(db)) == 1  # the shopper's message is stored
    async with db.sessions() as session:  # and the answer waits in the outbox for the next start
        queued = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.wechat"))).all()
    assert [e.payload["recipient_id"] for e in queued] == [OPENID]


async def test_access_token_is_cached_and_refreshed(db: Database, platform: WeChatDouble) -> None:
    channel = WeChatChannel(settings=wechat_settings(platform), database=db)
    try:
        await channel.send_text(OPENID, "一")
        await channel.send_text(OPENID, "二")
        assert platform.token_requests == 1
        platform.expire_tokens()
        await channel.send_text(OPENID, "三")  # 42001 -> a fresh token, the message goes
        assert platform.token_requests == 2
        assert platform.to(OPENID) == ["一", "二", "三"]
        platform.fail_next(-1)
        with pytest.raises(DeliveryError) as busy:
            await channel.send_text(OPENID, "四")
        assert not busy.value.permanent
        platform.window_closed.add(OPENID)
        with pytest.raises(DeliveryError) as closed:
            await channel.send_text(OPENID, "五")
        assert closed.value.permanent
        assert "48 hours" in str(closed.value)
        assert APP_SECRET not in str(closed.value)
        message = OutboundMessage(channel="wechat", recipient_id="o-other", text="好" * 1500, message_id=3,
                                  custom={wechat.SENT_PARTS_KEY: 1})
        event = OutboxEvent(topic="send.wechat", payload=message.model_dump(mode="json"), idempotency_key="msg:3")
        await channel.send(event, progress={})
        assert platform.to("o-other") == wechat.texts_of(message)[1:]  # the passive reply carried the first
    finally:
        await channel.close()


async def test_the_menu_is_published_and_its_clicks_are_payloads(client: httpx.AsyncClient, db: Database,
                                                                 platform: WeChatDouble) -> None:
    channel = WeChatChannel(settings=wechat_settings(platform), database=db)
    try:
        await channel.publish_menu()
    finally:
        await channel.close()
    assert platform.menu == [{"type": "click", "name": "搜索商品", "key": "menu:search"},
                             {"type": "click", "name": "查询订单", "key": "menu:order"},
                             {"type": "click", "name": "查看购物车", "key": "cart:view"}]
    click = platform.message_xml(OPENID, "event", Event="CLICK", EventKey="cart:view")
    reply = platform.read_reply((await send(client, platform, click, encrypted=True)).text)
    assert "购物车" in reply["Content"]
    [row] = await inbound_rows(db)
    assert row.kind == "callback"
    assert row.payload == "cart:view"


REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.skipif(
    REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL"))])
async def test_passive_answers_wait_for_the_first_delivery_and_are_shared_through_redis(shared: bool) -> None:
    first = wechat.PassiveReplies(redis_url=REDIS_URL if shared else None, ttl_seconds=2)
    other = wechat.PassiveReplies(redis_url=REDIS_URL, ttl_seconds=2) if shared else first  # another process
    key = f"gh_x:{OPENID}:{time.time_ns()}"
    try:
        assert await first.begin(key)
        assert not await other.begin(key)  # the retry
        assert await other.answer_of(key, timeout=0.1) == wechat.PENDING  # still being made
        waiting = asyncio.create_task(other.answer_of(key, timeout=3))
        await asyncio.sleep(0.1)
        await first.finish(key, "<xml>the answer</xml>")
        assert await waiting == "<xml>the answer</xml>"
        await first.forget(key)
        assert await other.answer_of(key, timeout=0) is None
        assert await other.begin(key)  # forgotten: handled afresh
    finally:
        await first.close()
        if other is not first:
            await other.close()


async def test_a_shoppers_picture_reaches_the_agent_as_an_image(client: httpx.AsyncClient, db: Database,
                                                               platform: WeChatDouble) -> None:
    from bot.channels.models import ChannelMedia
    from tests.bot.handoff.conftest import PASSWORD, make_agent

    await make_agent(db, "li@shop.test")
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
    media_id = platform.add_media(jpeg)
    xml = platform.message_xml(OPENID, "image", PicUrl="http://mmbiz.qpic.cn/mmbiz_jpg/x/0", MediaId=media_id)
    reply = platform.read_reply((await send(client, platform, xml, encrypted=True)).text)
    assert reply["Content"]  # the polite answer: the bot reads text; the picture goes to the agent
    deadline = time.monotonic() + 10
    while True:
        async with db.sessions() as session:
            row = await session.scalar(select(ChannelMedia))
        if (row is not None and row.status != "pending") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert row is not None
    assert (row.status, row.mime_type, row.size) == ("stored", "image/jpeg", len(jpeg))
    [message] = await inbound_rows(db)
    path = f"/api/v1/agent/conversations/{message.conversation_id}/messages/{message.id}/media"
    assert (await client.get(path)).status_code == 401
    await client.post("/api/v1/agent/session", json={"email": "li@shop.test", "password": PASSWORD})
    shown = await client.get(path)
    assert (shown.status_code, shown.headers["content-type"], shown.content) == (200, "image/jpeg", jpeg)
    view = (await client.get(f"/api/v1/agent/conversations/{message.conversation_id}")).json()
    assert [m["media"]["url"] for m in view["messages"] if m.get("media")] == [path]


async def test_cards_become_uploaded_images_or_articles_by_the_channel_contract(db: Database,
                                                                               platform: WeChatDouble) -> None:
    from bot.messages import ProductCard
    from tests.bot.channels.graph_double import sample_png

    platform.pictures["kettle.png"] = sample_png()
    card = ProductCard(sku="KET-1", product_id=7, title="电水壶 1.7L", subtitle="不锈钢", price_text="¥199.00",
                       image_url=f"{platform.base_url}/shop-pictures/kettle.png",
                       buttons=[Button(title="加入购物车", payload="cart:add:KET-1")])
    message = OutboundMessage(channel="wechat", recipient_id=OPENID, text="为您找到:", cards=[card])
    pictures = WeChatChannel(settings=wechat_settings(platform), database=db)
    try:
        for n in range(2):
            event = OutboxEvent(topic="send.wechat", payload=message.model_dump(mode="json"),
                                idempotency_key=f"msg:{n}")
            await pictures.send(event, progress={})
    finally:
        await pictures.close()
    assert len(platform.uploads) == 1  # uploaded once: the media_id is cached
    assert [body["image"]["media_id"] for _, body in platform.rich] == platform.uploads * 2
    texts = platform.to(OPENID)
    assert texts[0] == "为您找到:"
    assert "电水壶 1.7L" in texts[1]  # the caption follows the picture
    assert "¥199.00" in texts[1]
    assert "weixin://bizmsgmenu" in texts[2]  # then the card's button as a menu link

    platform.rich.clear()
    articles = WeChatChannel(settings=wechat_settings(platform, product_url="https://shop.example/p/{product_id}"),
                             database=db)
    try:
        await articles.send(OutboxEvent(topic="send.wechat", payload=message.model_dump(mode="json"),
                                        idempotency_key="msg:9"), progress={})
    finally:
        await articles.close()
    [(to, news)] = platform.rich
    assert news["msgtype"] == "news"
    [article] = news["news"]["articles"]
    assert article == {"title": "电水壶 1.7L", "description": "不锈钢\n¥199.00", "url": "https://shop.example/p/7",
                       "picurl": f"{platform.base_url}/shop-pictures/kettle.png"}


async def test_an_article_can_be_the_passive_reply(db: Database, platform: WeChatDouble) -> None:
    from bot.messages import ProductCard

    card = ProductCard(sku="KET-1", product_id=7, title="电水壶", price_text="¥199.00")
    reply = OutboundMessage(channel="wechat", recipient_id=OPENID, text="", cards=[card])
    settings = wechat_settings(platform, product_url="https://shop.example/p/{product_id}")
    wires = wechat.wire_of(reply, settings)
    assert [w.kind for w in wires] == ["text", "news"] or [w.kind for w in wires] == ["news"]
    news = next(w for w in wires if w.kind == "news")
    xml = wechat.passive_xml(news, to=OPENID, sender="gh_x")
    assert xml is not None
    fields = platform.read_reply(xml)
    assert fields["MsgType"] == "news"
    assert fields["ArticleCount"] == "1"
    assert "<Url><![CDATA[https://shop.example/p/7]]></Url>" in xml
    assert wechat.passive_xml(wechat.Wire("image", url="https://x/y.png"), to=OPENID, sender="gh_x") is None

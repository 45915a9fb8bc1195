"""A WhatsApp conversation in the agent console (real Chromium, served demo shop, Graph API double): it appears in
the inbox like any other, the agent answers it on WhatsApp, the shopper's app's statuses reach the console's
data, and the 24-hour window is there for the console to show."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from api.app import create_app
from bot import BotDeps
from bot.channels.models import ChannelContact
from kit.db import Database
from kit.settings import Settings, WeChatSettings, WhatsAppSettings
from tests.bot.channels.graph_double import ACCESS_TOKEN, APP_SECRET, GraphDouble, sample_png
from tests.bot.channels.served_shop import ServedShop, prepare_demo_database
from tests.bot.channels.wechat_double import WeChatDouble
from tests.bot.conftest import TinyParser
from tests.conftest import run_in_thread
from tests.e2e.test_agent_console import browser, open_conversation, prepare_agents, shot, sign_in  # noqa: F401
from tests.http import served_in_thread

pytestmark = pytest.mark.slow

SHOPPER = "4915198765432"


@pytest.fixture(scope="module")
def parser() -> TinyParser:
    return TinyParser()


@pytest.fixture
async def platform() -> AsyncIterator[WeChatDouble]:
    double = await WeChatDouble(app_id="wx2c2769f8efd9abc2", app_secret="wechat-e2e-secret", token="wechat-e2e-token",
                                encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
def shop(tmp_path: Path, graph: GraphDouble, platform: WeChatDouble, parser: TinyParser) -> Iterator[ServedShop]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    run_in_thread(prepare_demo_database(url))
    whatsapp = WhatsAppSettings(phone_number_id=graph.phone_number_id, access_token=ACCESS_TOKEN,
                                app_secret=APP_SECRET, verify_token="verify-e2e", api_base=graph.base_url,
                                templates={"order_update": "en_US"})
    wechat = WeChatSettings(app_id=platform.app_id, app_secret=platform.app_secret, token=platform.token,
                            encoding_aes_key=platform.encoding_aes_key, api_base=platform.base_url, publish_menu=False)
    settings = Settings(environment="test", database={"url": url}, whatsapp=whatsapp, wechat=wechat,
                        security={"secret_key": "test-secret-key-0123456789"})
    app = create_app(settings)
    with served_in_thread(app, name="whatsapp-console-shop", start_timeout=120) as base_url:
        app.state.channels.runtime._deps = BotDeps(settings=settings, nlu=parser)
        yield ServedShop(base_url=base_url, database_url=url, settings=settings)


async def webhook(shop: ServedShop, graph: GraphDouble, hook: dict[str, Any]) -> None:
    raw = json.dumps(hook).encode()
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as http:
        answer = await http.post("/webhooks/whatsapp", content=raw, headers={
            "content-type": "application/json", "X-Hub-Signature-256": graph.sign(raw)})
    assert answer.status_code == 200, answer.text


async def age_window(database_url: str, *, hours: int) -> None:
    """Move the shopper's last WhatsApp message `hours` into the past (the window opens from it)."""
    database = Database(database_url)
    try:
        async with database.unit_of_work() as session:
            await session.execute(update(ChannelContact).values(
                last_inbound_at=datetime.now(UTC) - timedelta(hours=hours)))
    finally:
        await database.dispose()


async def console_json(page: Any, path: str) -> Any:
    return await page.evaluate("async (path) => (await fetch(path, {credentials: 'same-origin'})).json()", path)


async def test_a_whatsapp_conversation_in_the_agent_console(browser: Any, shop: ServedShop,  # noqa: F811
                                                          graph: GraphDouble) -> None:
    await prepare_agents(shop)
    await webhook(shop, graph, graph.text(SHOPPER, "I need to talk to a human"))
    await graph.wait_for_sent(SHOPPER, 1, timeout=60)
    photo = sample_png()
    await webhook(shop, graph, graph.media_message(SHOPPER, "image", photo, "image/png", caption="this one is broken"))

    agent = await sign_in(browser, shop, "ana@shop.test")
    await open_conversation(agent, "unassigned", "this one is broken")  # the last message shows
    await agent.locator("#messages li.in", has_text="this one is broken").wait_for(timeout=10_000)
    # The shopper's photo: fetched from Graph in the background, shown as a thumbnail that opens the full image.
    thumbnail = agent.locator("#messages li.in a.shopper-file.image img")
    # While the file is fetched the console shows "Fetching…" and looks again by itself: no reload by hand.
    await thumbnail.wait_for(timeout=30_000)
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#messages a.shopper-file.image img');"
        " return i && i.complete && i.naturalWidth === 96; }", timeout=10_000)
    href = await agent.locator("#messages a.shopper-file.image").get_attribute("href")
    assert await agent.locator("#messages a.shopper-file.image").get_attribute("target") == "_blank"
    async with agent.context.expect_page() as opened:
        await thumbnail.click()
    full = await opened.value
    await full.wait_for_load_state()
    assert full.url.endswith(href)
    assert await full.evaluate("() => document.contentType") == "image/png"
    await full.close()
    stranger = await browser.new_context()  # no agent session: nothing
    response = await (await stranger.new_page()).goto(shop.base_url + href)
    assert response.status == 401
    await stranger.close()
    await agent.click("#take")
    await agent.fill("#reply-text", "Hello from Ana on WhatsApp.")
    await agent.click("#reply-send")
    deadline = time.monotonic() + 60  # a deadline for a failing run, not a speed check
    while not any(s.text == "Hello from Ana on WhatsApp." for s in graph.to(SHOPPER)):
        assert time.monotonic() < deadline, [s.text for s in graph.to(SHOPPER)]
        await asyncio.sleep(0.1)
    answered = graph.to(SHOPPER)
    await agent.locator("#messages li.author-agent .delivery.delivered").first.wait_for(timeout=10_000)
    await shot(agent, "whatsapp-conversation")
    await agent.set_viewport_size({"width": 390, "height": 844})
    await shot(agent, "whatsapp-conversation-390")

    reply = next(s for s in answered if s.text == "Hello from Ana on WhatsApp.")
    await webhook(shop, graph, graph.status(reply, "read"))
    conversation_id = await agent.evaluate(
        "async () => (await (await fetch('/api/v1/agent/inbox?view=mine')).json())[0].conversation_id")
    view = await console_json(agent, f"/api/v1/agent/conversations/{conversation_id}")
    assert view["channel"] == "whatsapp"
    mine = [m for m in view["messages"] if m["text"] == "Hello from Ana on WhatsApp."]
    assert mine[0]["delivery_status"] == "read"
    window = await console_json(agent, f"/api/v1/agent/conversations/{conversation_id}/whatsapp-window")
    assert window["open"] is True
    assert window["templates"] == ["order_update"]
    assert not await agent.locator("#wa-window").is_visible()  # open: nothing to say

    # A day later the window has closed: the console says so and offers the registered template.
    await age_window(shop.database_url, hours=25)
    await agent.set_viewport_size({"width": 1280, "height": 900})
    await agent.click("#views button[data-view='mine']")
    await agent.locator("#inbox li").first.click()
    banner = agent.locator("#wa-window")
    await banner.wait_for(state="visible", timeout=10_000)
    assert "24-hour reply window is closed" in await banner.inner_text()
    assert await agent.locator("#wa-template option").all_inner_texts() == ["order_update"]
    await shot(agent, "whatsapp-window-closed")
    sent_before = len(graph.to(SHOPPER))
    await agent.click("#wa-template-send")
    deadline = time.monotonic() + 60  # a deadline for a failing run, not a speed check
    while not any(s.kind == "template" for s in graph.to(SHOPPER)[sent_before:]):
        assert time.monotonic() < deadline, [s.kind for s in graph.to(SHOPPER)]
        await asyncio.sleep(0.1)


async def test_a_wechat_conversation_in_the_agent_console(browser: Any, shop: ServedShop,  # noqa: F811
                                                        platform: WeChatDouble) -> None:
    await prepare_agents(shop)
    openid = "oyORnuP8q7ou2gfYjqLzSIWZf0e2e"
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as http:
        photo = sample_png()
        media_id = platform.add_media(photo, "image/png")
        await platform.deliver(http, platform.message_xml(openid, "image", PicUrl="http://mmbiz.qpic.cn/x/0",
                                                          MediaId=media_id), encrypted=True)
        answer, _ = await platform.deliver(http, platform.message_xml(openid, Content="I need to talk to a human"),
                                           encrypted=True)
        assert answer  # the passive reply (or "success")

    agent = await sign_in(browser, shop, "ana@shop.test")
    await open_conversation(agent, "unassigned", "I need to talk to a human")  # the last message shows
    await agent.locator("#messages li.in", has_text="I need to talk to a human").wait_for(timeout=10_000)
    thumbnail = agent.locator("#messages li.in a.shopper-file.image img")
    # While the file is fetched the console shows "Fetching…" and looks again by itself: no reload by hand.
    await thumbnail.wait_for(timeout=30_000)
    await agent.wait_for_function(
        "() => { const i = document.querySelector('#messages a.shopper-file.image img');"
        " return i && i.complete && i.naturalWidth === 96; }", timeout=10_000)
    await agent.click("#take")
    await agent.fill("#reply-text", "您好，我是 Ana。")
    await agent.click("#reply-send")
    deadline = time.monotonic() + 60  # a deadline for a failing run, not a speed check
    while "您好，我是 Ana。" not in platform.to(openid):  # by the customer-service API (after the bot's own)
        assert time.monotonic() < deadline, platform.to(openid)
        await asyncio.sleep(0.1)
    await agent.locator("#messages li.author-agent .delivery.delivered").first.wait_for(timeout=10_000)
    await shot(agent, "wechat-conversation")
    await agent.set_viewport_size({"width": 390, "height": 844})
    await shot(agent, "wechat-conversation-390")

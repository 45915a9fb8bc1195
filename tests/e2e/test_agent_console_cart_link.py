"""The agent console in real Chromium, issue 27's last gaps: a cart link built in the reply box (variants and
quantities into a draft priced in the shopper's currency, sent; the web chat shopper sees the lines and "Open my
cart", which fills exactly that cart once and starts the chat's checkout); the header at 390 px in Chinese and
English (nothing cut off or scrolled away); the script's event lines in the page's language.
Screenshots go to test-artifacts/agent-console-*.png."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import handoff
from bot.conversations.models import Conversation
from kit.db import Database
from tests.bot.channels.served_shop import ServedShop
from tests.bot.channels.telegram_double import TelegramDouble
from tests.bot.handoff.conftest import PASSWORD
from tests.e2e import test_agent_console as console_e2e
from tests.e2e.test_agent_console_phone import DESKTOP, PHONE, shot, until

browser, shop, telegram_double, parser = (console_e2e.browser, console_e2e.shop, console_e2e.telegram_double,
                                          console_e2e.parser)

pytestmark = pytest.mark.slow

HEADER_FITS = """() => {
  const header = document.querySelector('header');
  const width = window.innerWidth;
  const out = [...header.children].filter((node) => node.offsetParent !== null).map((node) => {
    const box = node.getBoundingClientRect();
    return { id: node.id || node.className, left: box.left, right: box.right,
             clipped: node.scrollWidth > node.clientWidth + 1 };
  }).filter((box) => box.left < 0 || box.right > width + 0.5 || box.clipped);
  return { scroll: header.scrollWidth, client: header.clientWidth, out, width,
           page: document.documentElement.scrollWidth };
}"""


async def prepare(shop: ServedShop) -> None:
    database = Database(shop.database_url)
    try:
        async with database.unit_of_work() as session:
            await handoff.agents.create_agent(session, email="ana@shop.test", name="Ana Lopez", role="agent",
                                              password=PASSWORD)
            await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(auto_assign=False))
    finally:
        await database.dispose()


async def console(browser: Any, shop: ServedShop, viewport: dict[str, int], locale: str) -> Any:
    context = await browser.new_context(viewport=viewport, locale=locale, timezone_id="Europe/London")
    page = await context.new_page()
    await page.goto(f"{shop.base_url}/agent")
    await page.fill("#login-email", "ana@shop.test")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#console:not([hidden])")
    await page.wait_for_selector("#live[data-state='live']", timeout=10_000)
    return page


async def web_chat_shopper_asks_for_a_person(browser: Any, shop: ServedShop, text: str) -> Any:
    shopper = await (await browser.new_context(viewport=PHONE)).new_page()
    await shopper.goto(shop.base_url + "/")
    await shopper.wait_for_selector("#status[data-state='online']", timeout=30_000)
    await shopper.fill("#text", text)
    await shopper.click("#send")
    await shopper.locator("#log li.msg.theirs").first.wait_for(timeout=30_000)
    return shopper


async def take(agent: Any, contains: str) -> None:
    item = agent.locator("#inbox li", has_text=contains).first
    await item.wait_for(timeout=15_000)
    await item.click()
    await agent.wait_for_selector("#conversation:not([hidden])")
    await agent.click("#take")
    await agent.wait_for_selector("#reply-form:not([hidden])")


async def cart_of(shop: ServedShop) -> list[tuple[str, int]]:
    database = Database(shop.database_url)
    try:
        async with database.sessions() as session:
            rows = (await session.scalars(select(Conversation).where(Conversation.channel == "webchat"))).all()
            return [(str(line["sku"]), int(line["quantity"])) for row in rows for line in (row.cart or [])]
    finally:
        await database.dispose()


async def test_the_header_fits_a_390_px_phone_in_chinese_and_english(browser: Any, shop: ServedShop) -> None:
    await prepare(shop)
    await web_chat_shopper_asks_for_a_person(browser, shop, "I want to talk to a real person")
    languages = (("zh-CN", "退出登录", "接手了会话"), ("en-GB", "Sign out", "took the conversation"))
    for locale, sign_out, taken in languages:
        agent = await console(browser, shop, PHONE, locale)
        assert (await agent.inner_text("#sign-out")).strip() == sign_out
        fits = await agent.evaluate(HEADER_FITS)
        assert fits["scroll"] <= fits["client"], fits
        assert fits["out"] == [], fits
        assert fits["page"] <= fits["width"], fits
        box = await agent.locator("#sign-out").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
        await shot(agent, f"phone-header-{locale[:2]}")
        if locale == "zh-CN":
            # The script's own lines in Chinese too: who did what, and the conversation's state.
            await take(agent, "talk to a real person")
            await agent.locator("#messages li.event", has_text=taken).wait_for(timeout=10_000)
            events = " ".join(await agent.locator("#messages li.event").all_inner_texts())
            assert "took the conversation" not in events
            assert "Handed to a person" not in events
            assert "由 Ana Lopez 处理" in await agent.inner_text("#conversation-state")
            assert "顾客" in await agent.inner_text("#conversation-title")  # no "Webchat shopper ..." either
            await shot(agent, "phone-zh-conversation")
            await agent.click("#hand-back")
            await agent.wait_for_selector("#take:not([hidden])")
        await agent.context.close()


async def test_a_cart_link_from_the_reply_box_fills_the_web_chat_shoppers_cart_once(browser: Any,
                                                                                   shop: ServedShop) -> None:
    await prepare(shop)
    shopper = await web_chat_shopper_asks_for_a_person(browser, shop, "Can a person put my order together?")
    agent = await console(browser, shop, DESKTOP, "en-GB")
    await take(agent, "put my order together")

    await agent.fill("#catalog-search", "earbuds")
    card = agent.locator("#catalog-results .card").first
    await card.wait_for(timeout=15_000)
    sku = await card.get_attribute("data-sku")
    assert sku
    await card.locator(".cart-qty").fill("2")
    await card.locator(".add-to-cart-link").click()
    line = agent.locator("#cart-draft-lines li", has=agent.locator(".title"))
    await line.first.wait_for(timeout=10_000)
    assert await agent.input_value("#cart-draft-lines li .cart-qty") == "2"
    total = await agent.inner_text("#cart-draft-total")
    assert total.startswith("Total: ")
    line_total = await agent.inner_text("#cart-draft-lines li .amount")
    assert line_total in total  # one line: the total is that line
    await shot(agent, "desktop-cart-draft")
    await agent.click("#cart-link-send")

    # The shopper sees the lines, the total and the button, in the web chat.
    message = shopper.locator("#log li.msg.theirs", has_text="2 ×")
    await message.wait_for(timeout=20_000)
    assert line_total in await message.inner_text()
    button = message.locator("button", has_text="Open my cart")
    await button.wait_for(timeout=5_000)
    # The agent's timeline shows it as the shopper saw it: the text and the button.
    sent = agent.locator("#messages li.author-agent", has_text="2 ×")
    await sent.wait_for(timeout=10_000)
    assert "Open my cart" in await sent.locator(".chips").inner_text()

    before = await shopper.locator("#log li.msg.theirs").count()
    await button.click()
    await shopper.locator("#log li.msg.theirs", has_text="Which country").wait_for(timeout=30_000)
    assert await cart_of(shop) == [(sku, 2)]
    await shopper.screenshot(path=str(console_e2e.ARTIFACTS / "agent-console-webchat-cart-link.png"))
    # The agent still has the conversation and sees the cart in the shopper panel.
    assert await agent.locator("#resolve").is_visible()
    await until(agent, f"() => document.getElementById('cart').textContent.includes('{sku} x 2')", timeout=15)

    # Pressed again: nothing is added twice, and the shopper is told why.
    shown = await shopper.locator("#log li.msg.theirs").count()
    assert shown > before
    await button.click()
    await shopper.locator("#log li.msg.theirs", has_text="already opened").wait_for(timeout=30_000)
    assert await cart_of(shop) == [(sku, 2)]
    await shot(agent, "desktop-cart-link-sent")


async def test_a_cart_link_on_telegram_through_the_bot_api_double(shop: ServedShop,
                                                                  telegram_double: TelegramDouble) -> None:
    """The same link on Telegram: an inline button whose callback data fits 64 bytes; pressed twice, once filled."""
    await prepare(shop)
    chat = 100002
    await telegram_double.user_sends(chat, "I need to talk to a human, please")
    await telegram_double.wait_for_sent(chat, 1, timeout=60)
    async with httpx.AsyncClient(base_url=shop.base_url) as http:
        signed = await http.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
        deadline = time.monotonic() + 60  # a deadline for a failing run, not a speed check
        while not (items := (await http.get("/api/v1/agent/inbox?view=unassigned")).json()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        conversation_id = items[0]["conversation_id"]
        assert (await http.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=headers)).is_success
        cards = (await http.get("/api/v1/agent/catalog", params={"q": "earbuds",
                                                                  "conversation_id": conversation_id})).json()
        sku = cards[0]["sku"]
        before = len(telegram_double.to(chat))
        sent = await http.post(f"/api/v1/agent/conversations/{conversation_id}/cart-link", headers=headers,
                               json={"lines": [{"sku": sku, "quantity": 1}]})
        assert sent.status_code == 201, sent.text
    message = await telegram_double.wait_for_button(chat, "Open my cart", after=before, timeout=20)
    assert "1 ×" in message.text
    data = str(message.buttons[0]["callback_data"])
    assert len(data.encode()) <= 64
    before = len(telegram_double.to(chat))
    await telegram_double.user_presses(chat, message, data)
    await telegram_double.wait_for_text(chat, "Which country", after=before, timeout=30)
    before = len(telegram_double.to(chat))
    await telegram_double.user_presses(chat, message, data)
    await telegram_double.wait_for_text(chat, "already opened", after=before, timeout=30)
    database = Database(shop.database_url)
    try:
        async with database.sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            assert [(line["sku"], line["quantity"]) for line in conversation.cart] == [(sku, 1)]
    finally:
        await database.dispose()

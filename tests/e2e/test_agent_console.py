"""The agent console in real Chromium against the served demo shop: a shopper asks for a person, an agent
answers from /agent, the bot stays silent until the agent hands back; the same over Telegram (Bot API
double), a reply to a shopper who blocked the bot, and two agents racing for one conversation."""
from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.client.telegram import TelegramAPIServer

from api.app import create_app
from bot import BotDeps, handoff
from kit.db import Database
from kit.settings import Settings
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.served_shop import ServedShop, prepare_demo_database
from tests.bot.channels.telegram_double import TelegramDouble
from tests.bot.conftest import TinyParser
from tests.bot.handoff.conftest import PASSWORD
from tests.conftest import run_in_thread
from tests.http import served_in_thread

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SHOPTALK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
TELEGRAM_CHAT = 5151


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def telegram_double() -> AsyncIterator[TelegramDouble]:
    double = await TelegramDouble(token=BOT_TOKEN).start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture(scope="module")
def parser() -> TinyParser:
    return TinyParser()


@pytest.fixture
def shop(tmp_path: Path, telegram_double: TelegramDouble, parser: TinyParser) -> Iterator[ServedShop]:
    """The demo shop served by uvicorn; the engine uses the small trained parser of the engine tests, so the
    test does not depend on whichever NLU artifact sits in ./var/models."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    run_in_thread(prepare_demo_database(url))
    settings = Settings(environment="test", database={"url": url},
                        security={"secret_key": "test-secret-key-0123456789", "telegram_bot_token": BOT_TOKEN})
    app = create_app(settings)
    app.state.telegram_api_server = TelegramAPIServer.from_base(telegram_double.base_url)
    with served_in_thread(app, name="agent-console-shop", start_timeout=120, ws="websockets") as base_url:
        app.state.channels.runtime._deps = BotDeps(settings=settings, nlu=parser)
        yield ServedShop(base_url=base_url, database_url=url, settings=settings)


async def prepare_agents(shop: ServedShop) -> None:
    database = Database(shop.database_url)
    try:
        async with database.unit_of_work() as session:
            for email in ("ana@shop.test", "bo@shop.test"):
                await handoff.agents.create_agent(session, email=email, name=email.split("@")[0].title(), role="agent",
                                                  password=PASSWORD)
            # Agents take conversations themselves here (round-robin is covered by the service tests).
            await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(auto_assign=False))
    finally:
        await database.dispose()


async def sign_in(browser: Any, shop: ServedShop, email: str) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{shop.base_url}/agent")
    await page.fill("#login-email", email)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#console:not([hidden])")
    await page.wait_for_selector("#live[data-state='live']", timeout=10_000)
    return page


async def open_conversation(page: Any, view: str, contains: str) -> None:
    await page.click(f"#views button[data-view='{view}']")
    item = page.locator("#inbox li", has_text=contains).first
    await item.wait_for(timeout=10_000)
    await item.click()
    await page.wait_for_selector("#conversation:not([hidden])")


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"agent-console-{name}.png"), full_page=True)


async def theirs(page: Any) -> list[str]:
    texts: list[str] = await page.locator("#log li.msg.theirs").all_inner_texts()
    return texts


async def test_web_chat_shopper_gets_a_person_and_the_bot_stays_silent(browser: Any, shop: ServedShop) -> None:
    await prepare_agents(shop)
    shopper = await (await browser.new_context()).new_page()
    await shopper.goto(shop.base_url + "/")
    await shopper.wait_for_selector("#status[data-state='online']", timeout=30_000)
    await shopper.fill("#text", "I want to talk to a real person")
    await shopper.click("#send")
    await shopper.locator("#log li.msg.theirs").first.wait_for(timeout=30_000)

    agent = await sign_in(browser, shop, "ana@shop.test")
    started = time.monotonic()
    await open_conversation(agent, "unassigned", "talk to a real person")
    await agent.click("#take")
    await agent.wait_for_selector("#reply-form:not([hidden])")
    await agent.fill("#reply-text", "Hi, this is Ana from the shop. How can I help?")
    await agent.click("#reply-send")
    await shopper.locator("#log li.msg.theirs", has_text="this is Ana").wait_for(timeout=10_000)

    before = len(await theirs(shopper))
    await shopper.fill("#text", "hello, do you sell kettles?")
    await shopper.click("#send")
    await agent.locator("#messages li.in", has_text="do you sell kettles").wait_for(timeout=5_000)
    assert time.monotonic() - started < 60
    await asyncio.sleep(2.5)  # the bot would have answered by now if it were still talking
    assert len(await theirs(shopper)) == before
    await shot(agent, "conversation")

    await agent.click("#hand-back")
    await agent.wait_for_selector("#take:not([hidden])")
    await shopper.fill("#text", "hello")
    await shopper.click("#send")
    await shopper.locator("#log li.msg.theirs").nth(before).wait_for(timeout=30_000)
    assert len(await theirs(shopper)) > before


async def test_telegram_shopper_and_a_reply_that_cannot_be_delivered(browser: Any, shop: ServedShop,
                                                                    telegram_double: TelegramDouble) -> None:
    await prepare_agents(shop)
    await telegram_double.user_sends(TELEGRAM_CHAT, "I need to talk to a human")
    await telegram_double.wait_for_sent(TELEGRAM_CHAT, 1, timeout=60)
    agent = await sign_in(browser, shop, "bo@shop.test")
    await open_conversation(agent, "unassigned", "talk to a human")
    await agent.click("#take")
    await agent.fill("#reply-text", "Hello from Bo, I'm here to help.")
    await agent.click("#reply-send")
    await telegram_double.wait_for_text(TELEGRAM_CHAT, "Hello from Bo", timeout=15)
    await agent.locator("#messages li.author-agent .delivery.delivered").first.wait_for(timeout=10_000)

    sent = len(telegram_double.to(TELEGRAM_CHAT))
    await telegram_double.user_sends(TELEGRAM_CHAT, "thanks, what about my order?")
    await agent.locator("#messages li.in", has_text="what about my order").wait_for(timeout=5_000)
    await asyncio.sleep(2.0)
    assert len(telegram_double.to(TELEGRAM_CHAT)) == sent  # the bot stayed silent

    telegram_double.blocked_chats.add(TELEGRAM_CHAT)
    await agent.fill("#reply-text", "Are you still there?")
    await agent.click("#reply-send")
    failed = agent.locator("#messages li.author-agent .delivery.failed")
    await failed.wait_for(timeout=15_000)
    assert "blocked" in (await failed.inner_text())
    await shot(agent, "telegram-blocked")


async def test_two_agents_racing_for_one_conversation(browser: Any, shop: ServedShop) -> None:
    await prepare_agents(shop)
    shopper = await (await browser.new_context()).new_page()
    await shopper.goto(shop.base_url + "/")
    await shopper.wait_for_selector("#status[data-state='online']", timeout=30_000)
    await shopper.fill("#text", "Please let me speak to a person")
    await shopper.click("#send")
    ana, bo = await sign_in(browser, shop, "ana@shop.test"), await sign_in(browser, shop, "bo@shop.test")
    for page in (ana, bo):
        await open_conversation(page, "unassigned", "speak to a person")
    await asyncio.gather(ana.click("#take"), bo.click("#take"))
    await asyncio.sleep(1.0)
    owners = [await page.locator("#reply-form").is_visible() for page in (ana, bo)]
    assert sorted(owners) == [False, True]
    loser = bo if owners[0] else ana
    await loser.wait_for_selector("#flash:not([hidden])")
    assert "already took" in await loser.inner_text("#flash")
    await shot(loser, "race-lost")


async def test_supervisor_switches_off_handing_off_on_request_and_back(browser: Any, shop: ServedShop) -> None:
    await prepare_agents(shop)
    database = Database(shop.database_url)
    try:
        async with database.unit_of_work() as session:
            await handoff.agents.create_agent(session, email="sue@shop.test", name="Sue", role="supervisor",
                                              password=PASSWORD)
    finally:
        await database.dispose()
    sue = await sign_in(browser, shop, "sue@shop.test")
    await sue.click("#open-settings")
    await sue.wait_for_selector("#settings[data-loaded='true']:not([hidden])")
    assert await sue.is_checked("#rule-on-request")
    await sue.uncheck("#rule-on-request")
    await sue.click("#rules-save")
    await sue.locator("#rules-error", has_text="Saved.").wait_for(timeout=10_000)
    await shot(sue, "rules-editor")

    shopper = await (await browser.new_context()).new_page()
    await shopper.goto(shop.base_url + "/")
    await shopper.wait_for_selector("#status[data-state='online']", timeout=30_000)
    await shopper.fill("#text", "I want to talk to a real person")
    await shopper.click("#send")
    await shopper.locator("#log li.msg.theirs", has_text="can't put you through to a person").wait_for(timeout=30_000)
    assert await shopper.locator("#log li.msg.theirs", has_text="member of our team").count() == 0
    await sue.click("#settings-close")
    await sue.click("#views button[data-view='unassigned']")
    await asyncio.sleep(1.0)
    assert await sue.locator("#inbox li", has_text="talk to a real person").count() == 0

    await sue.click("#open-settings")
    await sue.wait_for_selector("#settings[data-loaded='true']:not([hidden])")
    assert not await sue.is_checked("#rule-on-request")  # as saved
    await sue.check("#rule-on-request")
    await sue.click("#rules-save")
    await sue.locator("#rules-error", has_text="Saved.").wait_for(timeout=10_000)
    await shopper.fill("#text", "I want to talk to a real person")
    await shopper.click("#send")
    await shopper.locator("#log li.msg.theirs", has_text="passing you to a member of our team").wait_for(
        timeout=30_000)
    await sue.click("#settings-close")
    await open_conversation(sue, "unassigned", "talk to a real person")

    # Canned responses: the supervisor adds, edits and deletes; a plain agent only reads them.
    await sue.click("#open-settings")
    await sue.wait_for_selector("#settings[data-loaded='true']:not([hidden])")
    await sue.fill("#canned-shortcut", "thanks")
    await sue.fill("#canned-body", "Thanks {name}, happy to help.")
    await sue.click("#canned-add")
    added = sue.locator("#canned-list li", has_text="/thanks")
    await added.wait_for(timeout=10_000)
    await added.locator(".canned-edit").click()
    await sue.fill("#canned-list .canned-edit-body", "Thanks {name}, {agent_name} is glad to help.")
    await sue.click("#canned-list .canned-save")
    await sue.locator("#canned-list li", has_text="is glad to help").wait_for(timeout=10_000)

    ana = await sign_in(browser, shop, "ana@shop.test")
    await ana.click("#open-settings")
    await ana.wait_for_selector("#settings[data-loaded='true']:not([hidden])")
    assert "Read only" in await ana.inner_text("#settings-mode")
    assert await ana.is_disabled("#rule-on-request")
    assert not await ana.is_visible("#rules-save")
    assert not await ana.is_visible("#canned-form")
    await ana.locator("#canned-list li", has_text="is glad to help").wait_for(timeout=10_000)
    assert await ana.locator("#canned-list .canned-delete").count() == 0
    await shot(ana, "rules-read-only")

    await sue.locator("#canned-list li", has_text="/thanks").locator(".canned-delete").click()
    await sue.locator("#canned-list li", has_text="/thanks").wait_for(state="detached", timeout=10_000)

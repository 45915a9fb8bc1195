"""The web chat in real Chromium: shopping with product cards, history across reloads, reconnects without
lost or doubled messages, English and Chinese, and text that is never taken for markup."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.bot.channels.served_shop import ServedShop, served_shop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedShop]:
    with served_shop(tmp_path_factory.mktemp("webchat")) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser, shop: ServedShop) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(shop.base_url + "/")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
    try:
        yield page
    finally:
        await context.close()


async def say(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


def replies(page: Page) -> Locator:
    return page.locator("#log .msg.theirs .bubble")


async def test_shopping_with_cards_and_history_across_reloads(page: Page) -> None:
    await say(page, "I am looking for an electric kettle")
    card = page.locator("#log .card").first
    await expect(card).to_be_visible(timeout=60_000)
    await expect(card.locator(".card-price")).to_contain_text("€")
    await card.get_by_role("button", name="Add to cart").click()
    await expect(page.locator("#log .msg.theirs .bubble", has_text="Added 1")).to_have_count(1, timeout=30_000)
    before = await page.locator("#log .msg").all_inner_texts()
    session_id = await page.evaluate("() => window.shoptalkChat.sessionId")

    await page.reload()
    await expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
    await expect(page.locator("#log .msg")).to_have_count(len(before), timeout=30_000)
    assert await page.locator("#log .msg").all_inner_texts() == before
    assert await page.evaluate("() => window.shoptalkChat.sessionId") == session_id
    # The restored cart button still works after the reload.
    await page.locator("#log .msg.theirs .buttons button", has_text="Checkout").last.click()
    await expect(page.locator("#log .msg.theirs .bubble", has_text="Which country")).to_have_count(
        1, timeout=30_000)


async def test_the_server_gives_the_session_and_a_known_id_is_not_enough(page: Page, browser: Browser,
                                                                          shop: ServedShop) -> None:
    await say(page, "/cart")
    await expect(page.locator("#log .msg.theirs .bubble", has_text="cart is empty")).to_have_count(1, timeout=30_000)
    session_id = await page.evaluate("() => window.shoptalkChat.sessionId")
    token = await page.evaluate("() => JSON.parse(localStorage.getItem('shoptalk.webchat.session-token'))")
    assert re.fullmatch(r"[0-9a-f]{32}", session_id)
    assert token.startswith(session_id + ".")  # the id and the server's signature
    # Another browser that learned the id (an old widget's self-chosen id, or a forged signature) gets its own.
    context = await browser.new_context()
    await context.add_init_script(f"""
        localStorage.setItem('shoptalk.webchat.session', JSON.stringify('{session_id}'));
        localStorage.setItem('shoptalk.webchat.session-token', JSON.stringify('{session_id}.{"A" * 43}'));""")
    intruder = await context.new_page()
    try:
        await intruder.goto(shop.base_url + "/")
        await expect(intruder.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
        await intruder.wait_for_function(
            f"() => window.shoptalkChat.sessionId && window.shoptalkChat.sessionId !== '{session_id}'",
            timeout=30_000)
        await intruder.wait_for_timeout(500)
        await expect(intruder.locator("#log .msg")).to_have_count(0)
    finally:
        await context.close()


async def test_reconnect_resends_without_losing_or_doubling(page: Page) -> None:
    # Send, then drop the socket at once: the message is resent on reconnect and the server dedupes it.
    await page.evaluate("""() => {
        document.getElementById('text').value = '/help';
        document.getElementById('composer').requestSubmit();
        window.shoptalkChat.reconnect();
    }""")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
    help_replies = page.locator("#log .msg.theirs .bubble", has_text="I can")
    await expect(help_replies).to_have_count(1, timeout=30_000)
    await page.wait_for_function("() => window.shoptalkChat.pendingCount() === 0", timeout=30_000)
    await expect(page.locator("#log .msg.mine .bubble", has_text="/help")).to_have_count(1)

    # Offline for a while: messages typed meanwhile are delivered once the connection is back.
    await page.evaluate("() => window.shoptalkChat.reconnect()")
    await say(page, "/cart")
    await expect(page.locator("#log .msg.theirs .bubble", has_text="cart is empty")).to_have_count(
        1, timeout=30_000)
    await page.evaluate("() => window.shoptalkChat.reconnect()")
    await expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
    await page.wait_for_timeout(500)
    await expect(page.locator("#log .msg.theirs .bubble", has_text="cart is empty")).to_have_count(1)
    await expect(help_replies).to_have_count(1)


async def test_shopping_in_chinese(page: Page) -> None:
    await page.select_option("#locale", "zh")
    await expect(page.locator("#send")).to_have_text("发送")
    await say(page, "有电水壶吗")
    await expect(page.locator("#log .msg.theirs .bubble", has_text="为您找到")).to_have_count(1, timeout=60_000)
    card = page.locator("#log .card").first
    await card.get_by_role("button", name="加入购物车").click()
    await expect(page.locator("#log .msg.theirs .bubble", has_text="加入购物车")).to_have_count(1, timeout=30_000)


async def test_markup_in_messages_is_shown_as_text(page: Page) -> None:
    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> **bold** kettle'
    await say(page, attack)
    await expect(page.locator("#log .msg.mine .bubble").last).to_have_text(attack)
    await expect(page.locator("#log .msg.theirs").last).to_be_visible(timeout=60_000)
    await page.wait_for_timeout(300)
    assert await page.evaluate("() => window.__pwned === undefined")
    assert await page.locator("#log img[src='x'], #log script").count() == 0


async def test_the_sound_is_optional_off_by_default_and_remembered(page: Page) -> None:
    """A tone for a shop message only when the shopper turned sound on, and only while they are not looking."""
    sound = page.locator("#sound")
    await expect(sound).to_have_attribute("aria-pressed", "false")
    await page.evaluate("() => Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
    await say(page, "hello")
    await expect(replies(page)).not_to_have_count(0, timeout=60_000)
    assert await page.evaluate("() => window.shoptalkChat.tonesPlayed()") == 0  # off: no tone, however hidden

    await sound.click()
    await expect(sound).to_have_attribute("aria-pressed", "true")
    await page.reload()
    await expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=30_000)
    await expect(page.locator("#sound")).to_have_attribute("aria-pressed", "true")  # the choice is remembered
    count = await replies(page).count()
    await say(page, "thanks")  # the tab is visible and the chat open: the shopper sees it, no tone
    await expect(replies(page)).not_to_have_count(count, timeout=60_000)
    assert await page.evaluate("() => window.shoptalkChat.tonesPlayed()") == 0

    await page.evaluate("() => Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
    count = await replies(page).count()
    await say(page, "do you sell tea?")
    await expect(replies(page)).not_to_have_count(count, timeout=60_000)
    assert await page.evaluate("() => window.shoptalkChat.tonesPlayed()") >= 1

"""The merchant FAQ page in real Chromium against a served app: create, publish, try a question (with its
score), markup shown as text and never run, history and restore."""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.auth import create_token
from api.migrations import upgrade
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings
from knowledge_base import repository
from knowledge_base.models import FaqEntry
from tests.conftest import run_in_thread
from tests.http import served_in_thread

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SHOPTALK_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
MARKUP = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'


@dataclass
class Served:
    base_url: str
    database_url: str
    token: str


async def _prepare(url: str) -> str:
    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            return await create_token(session, name="merchant", role="merchant")
    finally:
        await database.dispose()


async def _store_markup_bypassing_validation(url: str, entry_id: int) -> None:
    """A row written around the service (an old import, a hand edit in SQL): the page must still show text."""
    database = Database(url)
    try:
        async with database.unit_of_work() as session:
            entry = await session.get(FaqEntry, entry_id)
            assert entry is not None
            entry.answer = MARKUP
            entry.version += 1
            await repository.record_change(session, entry_id, utcnow())
    finally:
        await database.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'faq.db'}"
    token = run_in_thread(_prepare(url))
    app = create_app(Settings(environment="test", database={"url": url},
                              security={"secret_key": "test-secret-key-0123456789"}))
    with served_in_thread(app, name="faq-page", start_timeout=300) as base_url:
        yield Served(base_url=base_url, database_url=url, token=token)


@pytest.fixture
async def page(served: Served) -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            tab = await browser.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("dialog", lambda dialog: errors.append("dialog: " + dialog.message))
            tab.errors = errors  # type: ignore[attr-defined]  # read by the tests
            yield tab
        finally:
            await browser.close()


async def _status(page: Any, pattern: str) -> str:
    await page.wait_for_function(
        "(pattern) => new RegExp(pattern).test(document.getElementById('status').textContent)", arg=pattern)
    text: str = await page.text_content("#status")
    return text


async def _try(page: Any, question: str) -> None:
    await page.evaluate("document.getElementById('try-results').replaceChildren();"
                        "document.getElementById('try-decision').textContent = ''")
    await page.fill("#try-question", question)
    await page.click("#try-form button[type=submit]")
    await page.wait_for_selector("#try-decision:has-text('Decision')")


async def test_merchant_creates_publishes_tries_and_restores_in_chromium(page: Any, served: Served) -> None:
    await page.goto(served.base_url + "/merchant/faq")
    await page.fill("#token", served.token)
    await page.click("#token-form button[type=submit]")
    await page.wait_for_selector("#entries-total:has-text('0 entries')")

    # Create a draft.
    await page.click("#new-entry")
    await page.fill("#entry-key", "ship-atlantis")
    await page.fill("#entry-questions", "Do you ship to Atlantis?\nHow long does delivery to Atlantis take?")
    await page.fill("#entry-answer", "Yes: **3-5 days** by submarine. Details: [delivery](https://shop.test/delivery)")
    await page.click("#save")
    assert "Saved version 1" in await _status(page, "Saved version")
    assert await page.text_content("#entry-status") == "draft"

    # A draft is never answered; once published it is, with its calibrated score.
    await _try(page, "how many days to deliver to atlantis")
    assert "ship-atlantis" not in (await page.text_content("#try-results") or "")
    await page.click("#publish")
    await _status(page, "Published")
    assert await page.text_content("#entry-status") == "published"
    await _try(page, "how many days to deliver to atlantis")
    first = page.locator("#try-results li").first
    assert "ship-atlantis" in (await first.text_content() or "")
    score = await first.locator(".score").text_content()
    assert re.fullmatch(r"0\.\d{3}|1\.000", score or ""), score
    assert float(score or 0) > 0.5
    link = first.locator(".answer a")
    assert await link.get_attribute("href") == "https://shop.test/delivery"
    assert await link.text_content() == "delivery"
    decision = await page.text_content("#try-decision") or ""
    assert decision.startswith("Decision: ")
    assert decision.split(": ")[1] in {"answer", "suggest"}

    # Markup typed into the answer: the preview shows it as text, the save is refused with a clear error.
    await page.fill("#entry-answer", MARKUP)
    assert await page.text_content("#preview") == MARKUP
    assert await page.locator("#preview img, #preview script").count() == 0
    await page.click("#save")
    assert "HTML tags" in await _status(page, "HTML")
    assert await page.get_attribute("#status", "class") == "error"

    # An edit, then the history and a restore of version 1.
    await page.fill("#entry-answer", "Yes, in two days.")
    await page.click("#save")
    await _status(page, "Saved version 3")
    history = page.locator("#history li")
    await page.wait_for_function("document.querySelectorAll('#history li').length === 3")
    assert [(await history.nth(i).text_content() or "").split(" by ")[0] for i in range(3)] == [
        "v3 edited", "v2 published", "v1 created"]
    await history.nth(2).locator("button", has_text="Restore").click()
    await _status(page, "Restored version 1")
    assert (await page.input_value("#entry-answer")).startswith("Yes: **3-5 days**")
    await page.wait_for_function("document.querySelectorAll('#history li').length === 4")
    assert (await history.nth(0).text_content() or "").startswith("v4 restored")

    # A row with markup that got around validation: the page and "try" show it as text, nothing runs.
    entry_id = int(await page.input_value("#entry-id"))
    run_in_thread(_store_markup_bypassing_validation(served.database_url, entry_id))
    await page.click(f"#entries tr[data-id='{entry_id}']")
    await page.wait_for_function("(m) => document.getElementById('preview').textContent === m", arg=MARKUP)
    await _try(page, "how many days to deliver to atlantis")
    await page.wait_for_function(
        "(m) => [...document.querySelectorAll('#try-results .answer')].some((a) => a.textContent === m)",
        arg=MARKUP)
    assert await page.locator("#try-results img, #try-results script, #preview img, #preview script").count() == 0
    assert await page.evaluate("window.__xss") is None
    assert page.errors == []

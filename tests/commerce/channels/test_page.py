"""The /merchant/channels page in real Chromium: token kept in sessionStorage, channel rows as text, reconcile."""
from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.auth import create_token
from commerce.channels import service as channels
from kit.db import Database
from kit.settings import Settings
from tests.commerce.channels.conftest import make_stocked_shop
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble
from tests.http import served_in_thread

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SHOPTALK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
HOSTILE = '<img src=x onerror="document.title=1">'


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def served(db: Database) -> Iterator[str]:
    settings = Settings(environment="test", database={"url": db.engine.url.render_as_string(hide_password=False)},
                        security={"secret_key": "test-secret-key-0123456789"})
    with served_in_thread(create_app(settings), name="channels-page") as base_url:
        yield base_url


async def test_merchant_sees_channels_and_reconciles_one(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, browser: Any, served: str) -> None:
    await make_stocked_shop(db, shopify, webhook)
    async with db.unit_of_work() as session:
        await channels.create_channel(session, code="evil", name=HOSTILE, kind="web")
        token = await create_token(session, name="merchant", role="merchant")
    page = await browser.new_page()
    await page.goto(f"{served}/merchant/channels")
    await page.wait_for_selector("text=Enter a merchant token")
    await page.fill("#token", "st_wrong_token_000000000000000000")
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#status.error >> text=Enter a merchant token")  # refused ...
    assert await page.evaluate("sessionStorage.getItem('shoptalk.merchantToken')") is None  # ... and forgotten
    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#channels tbody tr >> text=Web shop (site)")
    assert await page.evaluate("sessionStorage.getItem('shoptalk.merchantToken')") == token
    rows = await page.inner_text("#channels tbody")
    assert "push · webhook" in rows
    assert "pool − 2" in rows
    assert HOSTILE in rows  # shown as text, never as markup
    assert await page.title() != "1"
    assert await page.query_selector("#channels img") is None
    site_row = page.locator("#channels tbody tr", has_text="Web shop (site)")
    assert "3" in await site_row.locator("td").nth(5).inner_text()  # three pushes waiting for the worker
    await site_row.locator("button", has_text="Details").click()
    await page.wait_for_selector("#detail-title >> text=Web shop (site)")
    market_row = page.locator("#channels tbody tr", has_text="Marketplace (mkt)")
    await market_row.locator("button", has_text="Reconcile now").click()
    await page.wait_for_selector("text=Reconciled mkt: 3 of 3 SKUs drifted.")
    await page.wait_for_selector("#channels tbody tr >> text=3 of 3")
    await page.wait_for_selector("#reconcile-summary >> text=3 drifted, 3 repaired")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "merchant-channels.png"), full_page=True)
    await page.close()


async def test_merchant_sees_a_channel_alert_until_a_reconciliation_makes_it_good(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, browser: Any, served: str) -> None:
    from commerce.channels.sync import StockSync
    from tests.commerce.channels.conftest import drain, worker_for

    await make_stocked_shop(db, shopify, webhook)
    async with db.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    webhook.fail_next(100, status=410)  # the web shop refuses every push: dead-lettered at once
    stock_sync = StockSync(db, timeout=5.0)
    try:
        await drain(worker_for(db, stock_sync), lambda: shopify.quantity("KET-1") == 8)
        await drain(worker_for(db, stock_sync), lambda: True)
    finally:
        await stock_sync.aclose()
    webhook.fail_next(0)
    page = await browser.new_page()
    await page.goto(f"{served}/merchant/channels")
    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    site_row = page.locator("#channels tbody tr", has_text="Web shop (site)")
    await site_row.wait_for()
    alert = await site_row.locator("td.alert").inner_text()
    assert "3 failed push(es) not made good" in alert
    assert "410" in alert
    assert await site_row.get_attribute("class") == "warn"
    market_row = page.locator("#channels tbody tr", has_text="Marketplace (mkt)")
    assert await market_row.locator("td").nth(9).inner_text() == "OK"
    await site_row.locator("button", has_text="Details").click()
    await page.wait_for_selector("#detail-alert >> text=Alert: 3 failed push(es)")
    await site_row.locator("button", has_text="Reconcile now").click()
    await page.wait_for_selector("text=Reconciled site: 3 of 3 SKUs drifted.")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#channels tbody tr')].some("
        "r => r.textContent.includes('Web shop (site)') && r.children[9].textContent === 'OK')")
    assert await page.locator("#detail-alert").is_hidden()
    assert (webhook.quantity("KET-1"), webhook.quantity("KET-2"), webhook.quantity("MUG-1")) == (10, 5, 3)
    await page.close()

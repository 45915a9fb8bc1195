"""/merchant/insights: click-through and conversion per model and channel (JSON and the page in Chromium)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from api.migrations import upgrade
from commerce.recommend import service as recommendations
from commerce.recommend.schemas import Recommendation
from kit.db import Database
from kit.settings import Settings
from tests.api.conftest import client, settings, token_for  # noqa: F401
from tests.http import served_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
NASTY = "<img src=x onerror=alert(1)>"


def shown(model: str, n: int) -> list[Recommendation]:
    return [Recommendation(sku=f"SKU-{model}-{i}", product_id=i + 1, score=1.0, model=model, reason="why",
                           reason_code=model) for i in range(n)]


async def record(db: Database) -> None:
    """Telegram: 4 buy-again shown, 2 clicked, 1 bought; web chat: 2 popular shown, 1 added (a click too);
    a channel named like markup, to prove it is shown as text."""
    async with db.unit_of_work() as session:
        ids = await recommendations.record_impressions(session, recommendations=shown("buy_again", 4),
                                                       shopper_id=None, channel="telegram")
        await recommendations.record_outcome(session, impression_id=ids[0], kind="click")
        await recommendations.record_outcome(session, impression_id=ids[1], kind="click")
        await recommendations.record_outcome(session, impression_id=ids[1], kind="purchase")
        web = await recommendations.record_impressions(session, recommendations=shown("popularity", 2),
                                                       shopper_id=None, channel="webchat")
        await recommendations.record_outcome(session, impression_id=web[0], kind="click")
        await recommendations.record_outcome(session, impression_id=web[0], kind="add_to_cart")
        await recommendations.record_impressions(session, recommendations=shown("popularity", 1), shopper_id=None,
                                                 channel=NASTY[:20])


async def test_json_per_model_and_channel(client: httpx.AsyncClient, db: Database) -> None:  # noqa: F811
    assert (await client.get("/api/v1/insights/recommendations")).status_code == 401
    agent = await token_for(db, "agent")
    assert (await client.get("/api/v1/insights/recommendations", headers=agent)).json()["code"] == "wrong_role"
    merchant = await token_for(db, "merchant")
    empty = (await client.get("/api/v1/insights/recommendations", headers=merchant)).json()
    assert empty["impressions"] == 0
    assert empty["per_model"] == []
    assert empty["per_channel"] == []

    await record(db)
    data = (await client.get("/api/v1/insights/recommendations", headers=merchant, params={"days": 7})).json()
    assert (data["days"], data["impressions"], data["clicks"], data["purchases"]) == (7, 7, 3, 1)
    models = {m["model"]: m for m in data["per_model"]}
    assert (models["buy_again"]["click_through"], models["buy_again"]["conversion"]) == (0.5, 0.25)
    assert (models["popularity"]["impressions"], models["popularity"]["added_to_cart"]) == (3, 1)
    channels = {c["channel"]: c for c in data["per_channel"]}
    assert set(channels) == {"telegram", "webchat", NASTY[:20]}
    assert (channels["webchat"]["clicks"], channels["webchat"]["click_through"]) == (1, 0.5)
    assert all(c["model"] == "all" for c in data["per_channel"])
    both = {(r["model"], r["channel"]): r["impressions"] for r in data["per_model_and_channel"]}
    assert both == {("buy_again", "telegram"): 4, ("popularity", "webchat"): 2, ("popularity", NASTY[:20]): 1}
    bad = await client.get("/api/v1/insights/recommendations", headers=merchant, params={"days": 0})
    assert bad.status_code == 422


async def test_page_is_static_with_a_strict_policy(client: httpx.AsyncClient) -> None:  # noqa: F811
    page = await client.get("/merchant/insights")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = (await client.get("/merchant/insights/insights.js")).text
    assert "textContent" in script
    assert "innerHTML" not in script
    assert (await client.get("/merchant/insights/other.js")).status_code == 404


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Database]]:
    """The API (no NLU) on a free port over a migrated SQLite file; yields (base url, merchant token, db)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'insights.db'}"
    database = Database(url)

    async def prepare() -> str:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            return await create_token(session, name="merchant", role="merchant")

    token = asyncio.run(prepare())
    asyncio.run(database.dispose())
    app = create_app(Settings(environment="test", database={"url": url},
                              security={"secret_key": "test-secret-key-0123456789"}))
    with served_in_thread(app, name="insights") as base_url:
        yield base_url, token, Database(url)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")
async def test_page_in_chromium_shows_empty_state_then_figures_as_text(served: tuple[str, str, Database]) -> None:
    from playwright.async_api import async_playwright, expect

    base, token, database = served
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            alerts: list[str] = []
            page.on("dialog", lambda dialog: alerts.append(dialog.message))
            await page.goto(base + "/merchant/insights")
            await expect(page.locator("#status")).to_have_text("Enter a merchant API token.")
            await page.fill("#token", "wrong")
            await page.click("#token-form button[type=submit]")
            await expect(page.locator("#status")).to_have_class("error")
            await page.fill("#token", token)
            await page.click("#token-form button[type=submit]")
            await expect(page.locator("#empty")).to_be_visible()
            await expect(page.locator("#results")).to_be_hidden()

            await record(database)
            await page.click("#range-form button[type=submit]")
            await expect(page.locator("#results")).to_be_visible()
            await expect(page.locator("#summary")).to_contain_text("7 recommendations shown, 3 clicked, 1 bought")
            first = page.locator("#per-model tbody tr").first
            await expect(first).to_contain_text("Buy again")
            await expect(first).to_contain_text("50.0 %")
            await expect(page.locator("#per-channel tbody")).to_contain_text(NASTY[:20])
            assert await page.locator("#per-channel img").count() == 0  # text, never markup
            assert alerts == []
        finally:
            await browser.close()
            await database.dispose()

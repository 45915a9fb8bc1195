"""/api/v1/insights/recommendations: click-through and conversion per model and channel (the back office's insights
page shows them; the old token page /merchant/insights redirects there)."""
from __future__ import annotations

import httpx

from commerce.recommend import service as recommendations
from commerce.recommend.schemas import Recommendation
from kit.db import Database
from tests.api.conftest import client, settings, token_for  # noqa: F401

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


async def test_the_old_token_page_redirects_to_the_back_office(client: httpx.AsyncClient) -> None:  # noqa: F811
    for path in ("/merchant/insights", "/merchant/insights/insights.js", "/merchant/learning"):
        page = await client.get(path)
        assert page.status_code == 308, path
        assert page.headers["location"] == "/backoffice/insights"

"""The merchant search REST API and page."""
from __future__ import annotations

import httpx

from api.demo.loader import demo_data, load_catalog
from commerce.search import service as search
from kit.db import Database
from tests.api.conftest import client, settings, token_for  # noqa: F401


async def test_merchant_controls_over_rest(client: httpx.AsyncClient, db: Database) -> None:  # noqa: F811
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
        await search.search_products(session, query="hoverboard", channel="telegram")
    assert (await client.get("/api/v1/search/synonyms")).status_code == 401
    agent = await token_for(db, "agent")
    assert (await client.get("/api/v1/search/report", headers=agent)).json()["code"] == "wrong_role"
    merchant = await token_for(db, "merchant")

    created = await client.post("/api/v1/search/synonyms", json={"terms": ["zoris", "slide sandals"]}, headers=merchant)
    assert created.status_code == 201, created.text
    found = (await client.get("/api/v1/search/products", params={"q": "zoris"}, headers=merchant)).json()
    assert found["hits"][0]["product"] == "eva-slide-sandals"

    pin = await client.post("/api/v1/search/rules", headers=merchant,
                            json={"kind": "pin", "product": "silk-dragon-kite", "query": "zoris", "position": 1})
    assert pin.status_code == 201, pin.text
    found = (await client.get("/api/v1/search/products", params={"q": "zoris"}, headers=merchant)).json()
    assert [h["product"] for h in found["hits"][:2]] == ["silk-dragon-kite", "eva-slide-sandals"]
    rules = (await client.get("/api/v1/search/rules", headers=merchant)).json()
    assert rules == [{"id": pin.json()["id"], "kind": "pin", "product": "silk-dragon-kite", "query": "zoris",
                      "position": 1}]
    assert (await client.delete(f"/api/v1/search/rules/{rules[0]['id']}", headers=merchant)).status_code == 204

    bad = await client.post("/api/v1/search/rules", json={"kind": "pin", "product": "silk-dragon-kite"},
                            headers=merchant)
    assert bad.status_code == 422
    assert bad.json()["code"] == "pin_needs_query"
    assert bad.headers["content-type"].startswith("application/problem+json")
    missing = await client.delete("/api/v1/search/synonyms/999", headers=merchant)
    assert missing.status_code == 404
    assert missing.json()["code"] == "synonyms_not_found"

    report = (await client.get("/api/v1/search/report", headers=merchant)).json()
    assert report["zero_results"] == [{"query": "hoverboard", "language": "en", "searches": 1, "results": 0}]
    for query in ["😀", "<b>x</b>", "' OR 1=1 --", "y" * 500]:
        answer = await client.get("/api/v1/search/products", params={"q": query}, headers=merchant)
        assert answer.status_code == 200


async def test_the_old_token_page_redirects_to_the_back_office(client: httpx.AsyncClient) -> None:  # noqa: F811
    for path in ("/merchant/search", "/merchant/search/search.js"):
        page = await client.get(path)
        assert page.status_code == 308
        assert page.headers["location"] == "/backoffice/search"


async def test_a_category_renamed_over_rest_is_searched_by_its_new_name(
        client: httpx.AsyncClient, db: Database) -> None:  # noqa: F811
    from sqlalchemy import select

    from api.models import AuditEvent
    from tests.factories import make_product, make_shop

    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 3}})
    merchant = await token_for(db, "merchant")
    barware = {"q": "barware"}
    assert (await client.get("/api/v1/search/products", headers=merchant, params=barware)).json()["hits"] == []
    renamed = await client.patch("/api/v1/categories/home-kitchen", headers=merchant,
                                 json={"name": {"en": "Barware", "zh": "酒吧用品"}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == {"en": "Barware", "zh": "酒吧用品"}
    hits = (await client.get("/api/v1/search/products", headers=merchant, params=barware)).json()["hits"]
    assert [h["product"] for h in hits] == ["kettle"]
    missing = await client.patch("/api/v1/categories/nope", headers=merchant, json={"name": {"en": "X"}})
    assert (missing.status_code, missing.json()["code"]) == (404, "category_not_found")
    empty = await client.patch("/api/v1/categories/home-kitchen", headers=merchant, json={"name": {"en": " "}})
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_category_name")
    agent = await token_for(db, "agent")
    assert (await client.patch("/api/v1/categories/home-kitchen", headers=agent,
                               json={"name": {"en": "X"}})).status_code == 403
    async with db.sessions() as session:
        audited = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "category renamed"))).all()
    assert [(a.subject, a.details["after"]) for a in audited] == [("home-kitchen", {"en": "Barware", "zh": "酒吧用品"})]

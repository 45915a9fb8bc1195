from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from kit.db import Database
from kit.settings import Settings

pytestmark = pytest.mark.slow  # loads the real encoders (MiniLM + USE)


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), database=db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
            async with db.unit_of_work() as session:
                merchant = await create_token(session, name="merchant", role="merchant")
                http.headers["Authorization"] = "Bearer " + merchant
                http.headers["X-Agent-Token"] = await create_token(session, name="agent", role="agent")
            yield http


def _as_agent(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": "Bearer " + client.headers["X-Agent-Token"]}


async def test_only_merchants_reach_the_faq_api(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/api/v1/merchant/faq/entries", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    agent = await client.get("/api/v1/merchant/faq/entries", headers=_as_agent(client))
    assert agent.status_code == 403
    assert agent.json()["code"] == "wrong_role"


async def test_merchant_edits_publishes_tries_and_deletes(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/merchant/faq/entries", json={
        "language": "en", "group_key": "returns", "questions": ["How do I return an item?", "Can I send it back?"],
        "answer": "Start a return under *My orders* within 30 days.", "tags": ["returns"]})
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["status"], entry["version"]) == ("draft", 1)

    tried = await client.post("/api/v1/merchant/faq/try", json={"question": "how can I return my order"})
    assert tried.json() == {"decision": "none", "matches": []}  # drafts are not answered

    published = await client.post(f"/api/v1/merchant/faq/entries/{entry['id']}/publish")
    assert published.json()["status"] == "published"
    tried = (await client.post("/api/v1/merchant/faq/try", json={"question": "how can I return my order"})).json()
    assert tried["matches"][0]["entry_id"] == entry["id"]
    assert tried["matches"][0]["score"] > 0.5

    translated = await client.post(f"/api/v1/merchant/faq/entries/{entry['id']}/translations", json={
        "language": "zh", "questions": ["怎么退货？"], "answer": "在“我的订单”中发起退货。", "status": "published"})
    assert translated.status_code == 201
    tried = (await client.post("/api/v1/merchant/faq/try",
                               json={"question": "我想退货", "language": "zh"})).json()
    assert tried["matches"][0]["language"] == "zh"

    edited = await client.patch(f"/api/v1/merchant/faq/entries/{entry['id']}",
                                json={"answer": "Returns are free.", "expected_version": 2})
    assert edited.json()["version"] == 3
    stale = await client.patch(f"/api/v1/merchant/faq/entries/{entry['id']}",
                               json={"answer": "Old tab.", "expected_version": 2})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    history = (await client.get(f"/api/v1/merchant/faq/entries/{entry['id']}/versions")).json()
    assert [v["action"] for v in history] == ["edited", "published", "created"]
    restored = await client.post(f"/api/v1/merchant/faq/entries/{entry['id']}/versions/1/restore")
    assert restored.json()["answer"].startswith("Start a return")

    assert (await client.delete(f"/api/v1/merchant/faq/entries/{entry['id']}")).status_code == 204
    tried = (await client.post("/api/v1/merchant/faq/try", json={"question": "how can I return my order"})).json()
    assert all(m["entry_id"] != entry["id"] for m in tried["matches"])
    assert (await client.get(f"/api/v1/merchant/faq/entries/{entry['id']}")).json()["code"] == "faq_entry_not_found"


async def test_script_in_an_answer_is_a_clear_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/merchant/faq/entries", json={
        "language": "en", "questions": ["Hi?"], "answer": "<script>alert(1)</script>"})
    assert response.status_code == 422
    assert response.json()["code"] == "answer_contains_html"


CSV_WITH_BROKEN_ROWS = (
    "key,language,status,questions,answer,tags,countries,channels\n"
    'ship-jp,en,published,"Do you ship to Japan?\nDelivery to Japan",Yes: 3-7 business days.,shipping,,\n'
    "ship-kr,en,draft,Do you ship to Korea?,,shipping,,\n"
    "too,few,cells\n"
    'xss,en,draft,Hello?,"<img src=x onerror=alert(1)>",,,\n'
    "ship-de,en,draft,Delivery to Germany?,2-4 days,shipping,Germany,\n"
)


async def test_csv_import_reports_every_broken_row_and_imports_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/merchant/faq/import?format=csv", content=CSV_WITH_BROKEN_ROWS,
                                 headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "import_rejected"
    assert [(e["row"], e["code"]) for e in problem["errors"]] == [
        (3, "empty_answer"), (4, "wrong_column_count"), (5, "answer_contains_html"), (6, "invalid_country")]
    assert (await client.get("/api/v1/merchant/faq/entries")).json()["total"] == 0

    good = CSV_WITH_BROKEN_ROWS.split("\n")[0:3]
    imported = await client.post("/api/v1/merchant/faq/import?format=csv", content="\n".join(good) + "\n")
    assert imported.json() == {"created": 1, "updated": 0, "unchanged": 0}
    exported = await client.get("/api/v1/merchant/faq/export?format=csv")
    assert exported.headers["content-type"].startswith("text/csv")
    again = await client.post("/api/v1/merchant/faq/import?format=csv", content=exported.text)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 1}
    as_json = await client.get("/api/v1/merchant/faq/export?format=json")
    assert as_json.json()["entries"][0]["questions"] == ["Do you ship to Japan?", "Delivery to Japan"]


async def test_malformed_json_import_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/merchant/faq/import?format=json", content="{not json")
    assert response.status_code == 422
    assert response.json()["code"] == "malformed_json"


async def test_the_old_page_sends_merchants_to_the_back_office(client: httpx.AsyncClient) -> None:
    page = await client.get("/merchant/faq", headers={"Authorization": ""})
    assert page.status_code == 308
    assert page.headers["location"] == "/backoffice/faq"
    old_script = await client.get("/merchant/faq/app.js")  # a cached old page's script: sent on, never served
    assert old_script.status_code == 308
    assert old_script.headers["location"] == "/backoffice/faq"

"""Validation at the edge (issue 21): the exact requests that answered 500, now 4xx/409 with a problem+json code."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.deps import SessionDep
from bot import BotDeps, handle_inbound
from bot.conversations.models import ConversationMessage as Message
from bot.messages import InboundMessage
from commerce.cross_border import load_cross_border_defaults
from commerce.inventory.models import Location
from kit.db import Database
from kit.settings import Settings
from tests.api.conftest import token_for
from tests.api.fuzzing import FallbackParser, use_cheap_bot
from tests.api.test_commerce_api import assert_problem
from tests.factories import make_product, make_shop
from tests.http import app_client

IMPORT_RULE = {"source_title": "Test", "source_url": "https://example.org", "region": "ZZ", "name": "Test rule",
               "currency": "EUR", "effective_from": "2024-01-01"}


@pytest.fixture
async def shop(db: Database) -> Database:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 10}})
        await load_cross_border_defaults(session)
    return db


@pytest.fixture
async def chat_client(shop: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=shop)
    async with app_client(app) as http:
        use_cheap_bot(app)
        http.headers.update(await token_for(shop, "channel"))  # the shop's server posting to the REST channel
        yield http


@pytest.fixture
async def merchant(shop: Database) -> dict[str, str]:
    return await token_for(shop, "merchant")


# ---- NUL ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/api/v1/stock?sku=%00", None),
    ("GET", "/api/v1/prices/KET%001?currency=EUR", None),
    ("POST", "/webhooks/rest/webhook", b'{"sender": "s1", "message": "hi\\u0000"}'),
    ("POST", "/api/v1/agent/session", b'{"email": "a\\u0000@b.c", "password": "x"}'),
    ("POST", "/api/v1/stock/reservations", b'{"sku": "KET-1", "quantity": 1, "reference": "r\\u0000"}'),
    ("POST", "/api/v1/stock/adjustments", b'{"sku": "KET-1", "location": "RTM\\u0000", "delta": 1}'),
    ("POST", "/api/v1/cross-border/duty-rates", b'{"\\u0000": 1}'),
    ("POST", "/api/v1/cross-border/tax-rates", b'{"country": "DE", "region": "EU", "tax_name": "V\\u0000T"}'),
    ("GET", "/api/v1/merchant/faq/entries?q=ship%00", None),
    ("POST", "/api/v1/merchant/faq/entries", b'{"language": "en", "questions": ["Q\\u0000?"], "answer": "A"}'),
    ("POST", "/api/v1/cross-border/rates/import", b"date,base,currency,rate\n2026-01-01,EUR,USD\x00,1.1\n"),
    ("POST", "/api/v1/categories", b"slug=a%00b"),
])
async def test_nul_anywhere_is_refused_before_any_route_runs(chat_client: httpx.AsyncClient, method: str, url: str,
                                                             body: bytes | None, merchant: dict[str, str]) -> None:
    for headers in ({}, merchant):  # without a token too: the refusal comes before authentication
        kind = "application/json" if body and body.startswith(b"{") else "application/x-www-form-urlencoded"
        response = await chat_client.request(method, url, content=body, headers=headers | {"Content-Type": kind})
        assert_problem(response, 422, "invalid_characters")


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(chat_client: httpx.AsyncClient) -> None:
    # JSON "C:\\u0000" is the 8 characters C : \ u 0 0 0 0: a shopper may write that.
    response = await chat_client.post("/webhooks/rest/webhook", content=b'{"sender": "s2", "message": "C:\\\\u0000"}',
                                      headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()


async def test_chat_channels_strip_nul_before_the_database(shop: Database, tmp_path: Any) -> None:
    """Telegram and the web chat build an InboundMessage without the HTTP middleware: NUL is stripped there."""
    deps = BotDeps(settings=Settings(data_dir=tmp_path), nlu=FallbackParser())
    inbound = InboundMessage(channel="telegram", sender_id="70\x0001", message_id="u\x001", text="hello\x00 kettle",
                             metadata={"note\x00": "x\x00"})
    async with shop.unit_of_work() as session:
        result = await handle_inbound(session, inbound, deps=deps)
    assert result.replies
    async with shop.sessions() as session:
        stored = (await session.scalars(select(Message.text).where(Message.direction == "in"))).all()
    assert stored == ["hello kettle"]


# ---- ids and offsets ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/api/v1/products/2147483648", "/api/v1/orders/2147483648", "/api/v1/orders?after_id=2147483648",
    "/api/v1/merchant/faq/entries/99999999999", "/api/v1/merchant/faq/entries?offset=9223372036854775808",
    "/api/v1/merchant/faq/entries/1/versions/2147483648/restore",
    "/api/v1/products/0",  # /conversations/{sender_id}/tracker takes Rasa sender ids (text): see tests/bot/rasa
])
async def test_ids_past_integer_are_422(client: httpx.AsyncClient, shop: Database, url: str,
                                        merchant: dict[str, str]) -> None:
    method = "POST" if url.endswith("/restore") else "GET"
    assert_problem(await client.request(method, url, headers=merchant), 422, "validation_error")


@pytest.mark.parametrize("url", ["/api/v1/stock/reservations/51178653570197463498752/commit",
                                 "/api/v1/stock/reservations/2147483648/release"])
async def test_reservation_ids_past_integer_are_422(client: httpx.AsyncClient, shop: Database, url: str,
                                                    merchant: dict[str, str]) -> None:
    assert_problem(await client.post(url, headers=merchant), 422, "validation_error")


async def test_the_largest_id_is_just_not_found(client: httpx.AsyncClient, shop: Database) -> None:
    assert (await client.get("/api/v1/products/2147483647")).status_code == 404


# ---- decimals ------------------------------------------------------------------------------------------------

async def test_a_percentage_that_would_be_rounded_is_refused_and_the_list_keeps_working(
        client: httpx.AsyncClient, shop: Database, merchant: dict[str, str]) -> None:
    refused = await client.post("/api/v1/cross-border/import-rules", headers=merchant,
                                json=IMPORT_RULE | {"personal_use_value_percent": 0.0000001})
    assert_problem(refused, 422, "validation_error")
    assert refused.json()["errors"][0]["loc"][-1] == "personal_use_value_percent"
    tiny = await client.post("/api/v1/cross-border/import-rules", headers=merchant,
                             json=IMPORT_RULE | {"low_value_max": "5E-324"})
    assert_problem(tiny, 422, "validation_error")
    listed = await client.get("/api/v1/cross-border/import-rules", headers=merchant)
    assert listed.status_code == 200, listed.text


async def test_decimals_are_echoed_in_plain_notation(client: httpx.AsyncClient, shop: Database,
                                                     merchant: dict[str, str]) -> None:
    created = await client.post("/api/v1/cross-border/import-rules", headers=merchant,
                                json=IMPORT_RULE | {"personal_use_value_percent": "1E-6", "clearance_fee": 1e-6})
    assert created.status_code == 201, created.text
    assert created.json()["personal_use_value_percent"] == "0.000001"
    assert created.json()["clearance_fee"] == "0.000001"
    listed = (await client.get("/api/v1/cross-border/import-rules", headers=merchant)).json()
    mine = next(r for r in listed if r["id"] == created.json()["id"])
    assert mine["personal_use_value_percent"] in ("0.000001", "0.0000010")  # never "1E-6"
    assert "E" not in mine["clearance_fee"]


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/cross-border/duty-rates", {"source_title": "t", "source_url": "u", "region": " E ", "rate": 5,
                                         "effective_from": "2024-01-01"}),
    ("/api/v1/cross-border/return-policies", {"scope": "   ", "window_days": 14, "legal_basis": "law"}),
    # found by bench/fuzz.py: 'ß' upper-cases to 'SS', 5 letters became 10 in an 8-character column
    ("/api/v1/cross-border/return-policies", {"scope": "ßßßßß", "window_days": 14, "legal_basis": "law"}),
    ("/api/v1/orders", {"channel": "web", "external_id": "x1", "currency": "EUR", "country": "ßa",
                        "lines": [{"sku": "KET-1", "quantity": 1}]}),
    ("/api/v1/cross-border/tax-rates", {"source_title": "t", "source_url": "u", "country": "DE", "region": "EU",
                                        "tax_name": "VAT", "rate": "19.0000001", "effective_from": "2024-01-01"}),
])
async def test_codes_too_short_once_trimmed_and_overlong_rates_are_422(
        client: httpx.AsyncClient, shop: Database, merchant: dict[str, str], path: str, body: dict[str, Any]) -> None:
    assert_problem(await client.post(path, headers=merchant, json=body), 422, "validation_error")


# ---- lengths -------------------------------------------------------------------------------------------------

async def test_category_slug_longer_than_its_column_is_422(client: httpx.AsyncClient, shop: Database,
                                                           merchant: dict[str, str]) -> None:
    too_long = await client.post("/api/v1/categories", headers=merchant, json={"slug": "a" * 81, "name": {"en": "A"}})
    assert_problem(too_long, 422, "validation_error")
    fits = await client.post("/api/v1/categories", headers=merchant, json={"slug": "a" * 80, "name": {"en": "A"}})
    assert fits.status_code == 201, fits.text


# ---- integrity races -------------------------------------------------------------------------------------------

async def test_two_concurrent_posts_of_one_category_slug_give_201_and_409(
        client: httpx.AsyncClient, shop: Database, merchant: dict[str, str]) -> None:
    for attempt in range(3):
        body = {"slug": f"race-{attempt}", "name": {"en": "Race"}}
        answers = await asyncio.gather(*(client.post("/api/v1/categories", headers=merchant, json=body)
                                         for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        conflict = next(a for a in answers if a.status_code == 409)
        assert conflict.headers["content-type"].startswith("application/problem+json")
        assert conflict.json()["code"] in ("already_exists", "duplicate_slug")


async def test_renaming_a_shipping_zone_to_an_existing_code_is_409(client: httpx.AsyncClient, shop: Database,
                                                                   merchant: dict[str, str]) -> None:
    zones = (await client.get("/api/v1/cross-border/shipping-zones", headers=merchant)).json()
    first, second = zones[0], zones[1]
    renamed = {k: v for k, v in second.items() if k != "id"} | {"code": first["code"], "services": [
        {k: v for k, v in s.items() if k != "id"} for s in second["services"]]}
    answer = await client.put(f"/api/v1/cross-border/shipping-zones/{second['id']}", headers=merchant, json=renamed)
    assert_problem(answer, 409, "already_exists")
    after = (await client.get("/api/v1/cross-border/shipping-zones", headers=merchant)).json()
    assert [z["code"] for z in after] == [z["code"] for z in zones]  # nothing was saved


async def test_concurrent_deletes_of_one_faq_entry_give_204_and_404(client: httpx.AsyncClient, shop: Database,
                                                                    merchant: dict[str, str]) -> None:
    for attempt in range(3):
        created = await client.post("/api/v1/merchant/faq/entries", headers=merchant, json={
            "language": "en", "questions": [f"Do you ship to the moon {attempt}?"], "answer": "Not yet."})
        assert created.status_code == 201, created.text
        url = f"/api/v1/merchant/faq/entries/{created.json()['id']}"
        answers = await asyncio.gather(*(client.delete(url, headers=merchant) for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [204, 404], [a.text for a in answers]
        assert next(a for a in answers if a.status_code == 404).json()["code"] == "faq_entry_not_found"


async def test_a_unique_violation_at_commit_is_409_not_a_200(shop: Database, settings: Settings) -> None:
    """The request's unit of work commits before the response is sent: a failing commit is the client's answer."""
    app = create_app(settings, database=shop)

    async def add_twice(session: SessionDep) -> dict[str, str]:
        session.add_all([Location(code="DUP", name="one", country="NL"), Location(code="DUP", name="two",
                                                                                  country="NL")])
        return {"saved": "yes"}  # nothing flushed yet: the INSERTs run at commit

    app.add_api_route("/test/add-twice", add_twice, methods=["POST"])
    async with app_client(app) as http:
        assert_problem(await http.post("/test/add-twice"), 409, "already_exists")


# ---- quantities in chat payloads -------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity", ["-1", "0", "100", "99999999999999999999"])
async def test_cart_add_payload_refuses_quantities_outside_1_to_99(chat_client: httpx.AsyncClient,
                                                                    quantity: str) -> None:
    sender = f"q{quantity}"
    added = await chat_client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "cart:add:KET-1:2",
                                                                   "metadata": {"payload": True}})
    assert "Added 2 x" in added.json()[0]["text"]
    crafted = await chat_client.post("/webhooks/rest/webhook", json={
        "sender": sender, "message": f"cart:add:KET-1:{quantity}", "metadata": {"payload": True}})
    text = " ".join(r["text"] for r in crafted.json())
    assert "Added" not in text
    assert "between 1 and 99" in text
    cart = await chat_client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "cart:view",
                                                                  "metadata": {"payload": True}})
    assert "- 2 x" in cart.json()[0]["text"]


async def test_cart_set_payload_refuses_a_negative_quantity(chat_client: httpx.AsyncClient) -> None:
    await chat_client.post("/webhooks/rest/webhook", json={"sender": "neg", "message": "cart:add:KET-1:3",
                                                           "metadata": {"payload": True}})
    crafted = await chat_client.post("/webhooks/rest/webhook", json={"sender": "neg", "message": "cart:set:KET-1:-4",
                                                                     "metadata": {"payload": True}})
    assert "between 1 and 99" in crafted.json()[0]["text"]
    cart = await chat_client.post("/webhooks/rest/webhook", json={"sender": "neg", "message": "cart:view",
                                                                  "metadata": {"payload": True}})
    assert "- 3 x" in cart.json()[0]["text"]

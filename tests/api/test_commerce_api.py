from __future__ import annotations

import httpx

from api.auth import create_token
from kit.db import Database
from tests.api.conftest import token_for
from tests.factories import make_product, make_shop

PRODUCT = {
    "slug": "gooseneck-kettle", "category": "home-kitchen", "title": {"en": "Gooseneck kettle", "zh": "手冲壶"},
    "description": {"en": "Pour-over kettle."}, "base_price": "59.90", "currency": "eur",
    "variants": [{"sku": "KET-GN-BLK", "attributes": {"colour": "black"}}],
}


async def _seed(db: Database, products: int = 0) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        for n in range(products):
            await make_product(session, slug=f"item-{n}", skus={f"SKU-{n}": {"RTM": n}})


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]


async def test_products_are_paged_with_a_cursor(client: httpx.AsyncClient, db: Database) -> None:
    await _seed(db, products=7)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/products", params=params)).json()
        seen += [p["slug"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"item-{n}" for n in range(7)]
    first = (await client.get("/api/v1/products", params={"limit": 1})).json()["items"][0]
    assert first["variants"][0]["available"] == 0
    assert_problem(await client.get("/api/v1/products", params={"cursor": "garbage!"}), 422, "invalid_cursor")


async def test_writes_need_a_token_with_the_right_role(client: httpx.AsyncClient, db: Database) -> None:
    await _seed(db)
    assert_problem(await client.post("/api/v1/products", json=PRODUCT), 401, "missing_token")
    assert_problem(await client.post("/api/v1/products", json=PRODUCT,
                                     headers={"Authorization": "Bearer st_not-a-real-token"}), 401, "invalid_token")
    assert_problem(await client.post("/api/v1/products", json=PRODUCT, headers=await token_for(db, "agent")),
                   403, "wrong_role")
    created = await client.post("/api/v1/products", json=PRODUCT, headers=await token_for(db, "merchant"))
    assert created.status_code == 201
    assert created.json()["currency"] == "EUR"
    assert_problem(await client.post("/api/v1/products", json=PRODUCT, headers=await token_for(db, "admin")),
                   409, "duplicate_slug")


async def test_tokens_are_stored_hashed(db: Database) -> None:
    async with db.unit_of_work() as session:
        token = await create_token(session, name="ci", role="merchant")
    async with db.engine.connect() as conn:
        stored = (await conn.exec_driver_sql("SELECT token_hash FROM api_tokens")).scalar_one()
    assert token.startswith("st_")
    assert token not in stored


async def test_bad_input_is_a_clear_problem_and_writes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    await _seed(db, products=2)
    merchant = await token_for(db, "merchant")
    assert_problem(await client.post("/api/v1/stock/reservations", json={"sku": "NOPE-1", "quantity": 1},
                                     headers=merchant), 404, "unknown_sku")
    assert_problem(await client.post("/api/v1/stock/reservations", json={"sku": "SKU-1", "quantity": 0},
                                     headers=merchant), 422, "validation_error")
    assert_problem(await client.post("/api/v1/stock/reservations", json={"sku": "SKU-1", "quantity": 5},
                                     headers=merchant), 409, "insufficient_stock")
    assert_problem(await client.post("/api/v1/products", json=PRODUCT | {"currency": "XYZ"}, headers=merchant),
                   422, "unknown_currency")
    assert_problem(await client.post("/api/v1/orders", content=b'{"channel": "web", ', headers=merchant
                                     | {"content-type": "application/json"}), 400, "malformed_json")
    assert_problem(await client.post("/api/v1/orders", content=b"x" * 70_000, headers=merchant
                                     | {"content-type": "application/json"}), 413, "payload_too_large")
    order = {"channel": "web", "external_id": "w-1", "currency": "EUR", "lines": [
        {"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-0", "quantity": 1}]}
    assert_problem(await client.post("/api/v1/orders", json=order, headers=merchant), 409, "insufficient_stock")
    stock = (await client.get("/api/v1/stock", params={"sku": "SKU-1"})).json()
    assert stock == [{"sku": "SKU-1", "location": "RTM", "on_hand": 1, "reserved": 0, "available": 1}]
    assert (await client.get("/api/v1/orders", headers=merchant)).json() == []


async def test_order_lifecycle_over_http(client: httpx.AsyncClient, db: Database) -> None:
    await _seed(db, products=3)
    merchant = await token_for(db, "merchant")
    order = {"channel": "marketplace", "external_id": "mkt-1", "currency": "EUR",
             "lines": [{"sku": "SKU-2", "quantity": 2}]}
    first = await client.post("/api/v1/orders", json=order, headers=merchant)
    again = await client.post("/api/v1/orders", json=order, headers=merchant)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    order_id = first.json()["id"]
    ref = first.json()["public_ref"]
    typed = ref.lower().replace("-", " ")  # as a shopper might read it out
    by_ref = await client.get(f"/api/v1/orders/by-ref/{typed}", headers=merchant)
    assert (by_ref.status_code, by_ref.json()["id"], by_ref.json()["public_ref"]) == (200, order_id, ref)
    assert_problem(await client.get("/api/v1/orders/by-ref/ST-00000-00000", headers=merchant), 404,
                   "order_not_found")
    assert_problem(await client.get(f"/api/v1/orders/by-ref/{ref}"), 401, "missing_token")
    assert_problem(await client.post(f"/api/v1/orders/{order_id}/transitions", json={"status": "delivered"},
                                     headers=merchant), 409, "illegal_status_transition")
    assert_problem(await client.post(f"/api/v1/orders/{order_id}/transitions", json={"status": "lost"},
                                     headers=merchant), 422, "unknown_status")
    cancelled = await client.post(f"/api/v1/orders/{order_id}/transitions",
                                  json={"status": "cancelled", "note": "shopper changed their mind"},
                                  headers=merchant)
    assert cancelled.json()["status"] == "cancelled"
    assert [h["to_status"] for h in cancelled.json()["history"]] == ["pending_payment", "cancelled"]
    stock = (await client.get("/api/v1/stock", params={"sku": "SKU-2"})).json()
    assert stock[0]["available"] == 2
    assert (await client.get("/openapi.json")).status_code == 200

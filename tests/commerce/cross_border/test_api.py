"""HTTP: quotes for shoppers, rules and rates for merchants, problem+json for bad input."""
from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from api.auth import create_token
from kit.clock import utcnow
from kit.db import Database
from tests.commerce.cross_border.conftest import rates_csv


@pytest.fixture
async def merchant(shop: Database) -> dict[str, str]:
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    return {"Authorization": f"Bearer {token}"}


async def _fresh_rates(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    response = await client.post("/api/v1/cross-border/rates/import", content=rates_csv(utcnow().date()),
                                 headers={**merchant, "Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json() == {"imported": 10}


async def test_berlin_quote_over_http(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    await _fresh_rates(client, merchant)
    response = await client.post("/api/v1/quotes", json={"sku": "TEE-1", "quantity": 1, "destination": "DE",
                                                         "currency": "EUR"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {c["kind"]: c["amount"] for c in body["charges"]} == {
        "goods": "40.00", "shipping": "6.40", "duty": "0.00", "import_tax": "8.82", "fees": "0.00"}
    assert (body["total"], body["pay_on_delivery"], body["incoterm"]) == ("55.22", "0.00", "DDP")
    assert body["delivery"]["min_days"] == 2
    cart = await client.post("/api/v1/quotes", json={
        "lines": [{"sku": "TEE-1", "quantity": 1}, {"sku": "TEA-1", "quantity": 2}], "destination": "gb",
        "currency": "GBP", "service": "express"})
    assert cart.status_code == 200, cart.text
    assert cart.json()["rates"][0]["age_days"] == 0
    assert Decimal(cart.json()["total"]) == sum(Decimal(c["amount"]) for c in cart.json()["charges"])


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"sku": "TEE-1", "destination": "BR", "currency": "EUR"}, 422, "destination_not_served"),
    ({"sku": "TEE-1", "destination": "QQ", "currency": "EUR"}, 422, "unknown_country"),
    ({"sku": "TEE-1", "destination": "DE", "currency": "XYZ"}, 422, "unknown_currency"),
    ({"sku": "LAMP-1", "destination": "US", "currency": "USD"}, 422, "not_sellable_to_destination"),
    ({"sku": "NOPE", "destination": "DE", "currency": "EUR"}, 404, "unknown_sku"),
    ({"destination": "DE", "currency": "EUR"}, 422, "validation_error"),
    ({"sku": "TEE-1", "lines": [{"sku": "TEE-1", "quantity": 1}], "destination": "DE", "currency": "EUR"}, 422,
     "validation_error"),
    ({"sku": "TEE-1", "quantity": 0, "destination": "DE", "currency": "EUR"}, 422, "validation_error"),
])
async def test_bad_quotes_are_problem_json(client: httpx.AsyncClient, merchant: dict[str, str],
                                           body: dict[str, object], status: int, code: str) -> None:
    await _fresh_rates(client, merchant)
    response = await client.post("/api/v1/quotes", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_brazil_detail_reads_as_a_shopper_answer(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/quotes", json={"sku": "TEE-1", "destination": "BR", "currency": "EUR"})
    assert response.json()["detail"] == "We can't ship to Brazil."


async def test_stale_rates_refuse_over_http(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    # The fixture's newest rates are from 2026-11-27; with a maximum age of 0 days they are refused.
    await client.put("/api/v1/cross-border/settings", headers=merchant,
                     json={"fx_markup_percent": "0", "max_rate_age_days": 0, "fx_base": "EUR"})
    response = await client.post("/api/v1/quotes", json={"sku": "TEE-1", "destination": "US", "currency": "USD"})
    assert response.status_code == 503
    assert response.json()["code"] == "stale_exchange_rate"
    assert response.json()["as_of"] == "2026-11-27"


async def test_shipping_options_and_returns(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    await _fresh_rates(client, merchant)
    options = await client.get("/api/v1/shipping-options",
                               params={"destination": "DE", "weight_grams": 500, "value": "30", "currency": "EUR"})
    assert options.status_code == 200, options.text
    assert [(o["service"], o["price"]) for o in options.json()] == [("standard", "6.40"), ("express", "15.90")]
    zero = await client.get("/api/v1/shipping-options", params={"destination": "DE", "weight_grams": 0, "value": "1"})
    assert zero.json()["code"] == "invalid_weight"
    price = await client.get("/api/v1/prices/TEE-1", params={"currency": "jpy"})
    assert (price.json()["price"], price.json()["currency"], price.json()["rate_age_days"]) == ("6400", "JPY", 0)
    assert (await client.get("/api/v1/prices/TEE-1", params={"currency": "XX"})).json()["code"] == "unknown_currency"
    returns = await client.get("/api/v1/returns/DE")
    assert returns.json()["window_days"] == 14
    assert (await client.get("/api/v1/returns/US")).json()["window_days"] == 30
    chinese = (await client.get("/api/v1/returns/DE", params={"locale": "zh-CN"})).json()
    assert chinese["locale"] == "zh"
    assert chinese["window_days"] == 14
    assert chinese["conditions"] != returns.json()["conditions"]
    assert "14" in chinese["conditions"][0]
    assert all(any("\u4e00" <= char <= "\u9fff" for char in line) for line in chinese["conditions"])
    untranslated = (await client.get("/api/v1/returns/DE", params={"locale": "fr"})).json()
    assert untranslated["locale"] == "en"
    assert untranslated["conditions"] == returns.json()["conditions"]


async def test_merchant_edits_rules_and_quotes_follow(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    await _fresh_rates(client, merchant)
    assert (await client.get("/api/v1/cross-border/tax-rates")).status_code == 401
    rates = (await client.get("/api/v1/cross-border/tax-rates", headers=merchant)).json()
    germany = next(r for r in rates if r["country"] == "DE")
    assert germany["rate"] == "19.000000"
    assert germany["source_url"].startswith("https://")
    germany["rate"] = "7"
    updated = await client.put(f"/api/v1/cross-border/tax-rates/{germany['id']}",
                               json={k: v for k, v in germany.items() if k != "id"}, headers=merchant)
    assert updated.status_code == 200, updated.text
    quote = await client.post("/api/v1/quotes", json={"sku": "TEE-1", "destination": "DE", "currency": "EUR"})
    assert {c["kind"]: c["amount"] for c in quote.json()["charges"]}["import_tax"] == "3.25"  # 7% of 46.40

    rules = (await client.get("/api/v1/cross-border/import-rules", headers=merchant)).json()
    assert {r["region"] for r in rules} >= {"EU", "GB", "US", "CA", "AU", "JP", "SG", "CN"}
    assert all(r["source_title"] and r["source_url"] for r in rules)
    bad = await client.post("/api/v1/cross-border/import-rules", headers=merchant, json={
        **{k: v for k, v in rules[0].items() if k != "id"}, "effective_to": "2000-01-01"})
    assert bad.json()["code"] == "invalid_effective_dates"

    zones = (await client.get("/api/v1/cross-border/shipping-zones", headers=merchant)).json()
    not_served = next(z for z in zones if z["code"] == "not-served")
    not_served["countries"] = [c for c in not_served["countries"] if c != "BR"]
    saved = await client.put(f"/api/v1/cross-border/shipping-zones/{not_served['id']}", headers=merchant,
                             json={k: v for k, v in not_served.items() if k != "id"})
    assert saved.status_code == 200, saved.text
    clash = await client.post("/api/v1/cross-border/shipping-zones", headers=merchant, json={
        "code": "again", "name": "Again", "countries": ["DE"], "services": []})
    assert clash.json()["code"] == "country_in_other_zone"

    settings = await client.put("/api/v1/cross-border/settings", headers=merchant,
                                json={"fx_markup_percent": "2", "max_rate_age_days": 3, "fx_base": "EUR"})
    assert settings.json()["fx_markup_percent"] == "2"
    usd = await client.post("/api/v1/quotes", json={"sku": "TEE-1", "destination": "US", "currency": "USD"})
    assert usd.json()["items"][0]["unit_price"] == "51.00"  # 40 x 1.25 x 1.02


async def test_rates_api_refuses_bad_files(client: httpx.AsyncClient, merchant: dict[str, str]) -> None:
    entity_trick = b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"
    response = await client.post("/api/v1/cross-border/rates/import", content=entity_trick,
                                 headers={**merchant, "Content-Type": "application/xml"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_rates_file"
    one = await client.post("/api/v1/cross-border/rates", headers=merchant,
                            json={"base": "EUR", "currency": "KWD", "rate": "0.36", "as_of": "2026-11-27"})
    assert one.status_code == 201
    listed = (await client.get("/api/v1/cross-border/rates", headers=merchant)).json()
    assert any(r["currency"] == "KWD" and r["rate"].startswith("0.36") for r in listed)


SOURCE = {"source_title": "Test source", "source_url": "https://example.test/rules"}
RULE_TABLES = [  # path, a new row, a change to it
    ("import-rules", {**SOURCE, "region": "ZZ", "name": "Test rule", "currency": "EUR", "effective_from": "2031-01-01"},
     {"name": "Renamed rule"}),
    ("tax-rates", {**SOURCE, "country": "DE", "region": "DE", "tax_name": "Test VAT", "rate": "5",
                   "effective_from": "2031-01-01"}, {"rate": "7.5"}),
    ("duty-rates", {**SOURCE, "region": "ZZ", "hs_chapter": "99", "rate": "3", "effective_from": "2031-01-01"},
     {"rate": "4"}),
    ("return-policies", {"scope": "ZZ", "window_days": 30, "legal_basis": "Test law"}, {"window_days": 45}),
]


@pytest.mark.parametrize(("table", "row", "change"), RULE_TABLES, ids=[t[0] for t in RULE_TABLES])
async def test_each_rule_table_is_listed_created_updated_and_deleted_by_a_merchant(
        client: httpx.AsyncClient, merchant: dict[str, str], table: str, row: dict[str, object],
        change: dict[str, object]) -> None:
    path = f"/api/v1/cross-border/{table}"
    assert (await client.get(path)).status_code == 401
    created = await client.post(path, json=row, headers=merchant)
    assert created.status_code == 201, created.text
    row_id = created.json()["id"]
    assert row_id in [r["id"] for r in (await client.get(path, headers=merchant)).json()]
    updated = await client.put(f"{path}/{row_id}", json={**row, **change}, headers=merchant)
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in change} == change
    deleted = await client.delete(f"{path}/{row_id}", headers=merchant)
    assert (deleted.status_code, deleted.content) == (204, b"")
    for gone in (await client.delete(f"{path}/{row_id}", headers=merchant),
                 await client.put(f"{path}/{row_id}", json=row, headers=merchant)):
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("application/problem+json")
        assert gone.json()["code"] == "cross_border_row_not_found"
    assert (await client.post(path, json={}, headers=merchant)).status_code == 422  # the table's own schema

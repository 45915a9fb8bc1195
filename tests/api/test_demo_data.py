"""The demo shop data (api/demo/catalog.json) is complete and consistent enough to load."""
from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from kit.db import Database

CATALOG = Path(__file__).resolve().parents[2] / "api" / "demo" / "catalog.json"

LEGAL_TRANSITIONS: dict[str, set[str]] = {
    "pending_payment": {"paid", "cancelled"},
    "paid": {"packed", "cancelled", "refunded"},
    "packed": {"shipped", "cancelled"},
    "shipped": {"delivered", "return_requested"},
    "delivered": {"return_requested"},
    "return_requested": {"refunded", "delivered"},
    "cancelled": set(),
    "refunded": set(),
}
STATUSES = set(LEGAL_TRANSITIONS)


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    with CATALOG.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _variants(demo: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for p in demo["products"] for v in p["variants"]]


def test_enough_products_in_enough_categories(demo: dict[str, Any]) -> None:
    slugs = {c["slug"] for c in demo["categories"]}
    assert len(demo["categories"]) >= 7
    assert len(demo["products"]) >= 64
    per_category = Counter(p["category"] for p in demo["products"])
    assert set(per_category) == slugs
    assert all(n >= 8 for n in per_category.values()), per_category
    assert all(re.fullmatch(r"\d{2}", c["hs_chapter"]) for c in demo["categories"])
    assert all(c["name"]["en"] and c["name"]["zh"] for c in demo["categories"])


def test_every_product_is_described_in_english_and_chinese(demo: dict[str, Any]) -> None:
    for p in demo["products"]:
        for field in ("title", "description"):
            assert p[field]["en"].strip(), (p["slug"], field)
            # Chinese text must actually contain Chinese characters, not a copy of the English.
            assert re.search(r"[\u4e00-\u9fff]", p[field]["zh"]), (p["slug"], field)


def test_products_have_sane_prices_weights_and_slugs(demo: dict[str, Any]) -> None:
    slugs = [p["slug"] for p in demo["products"]]
    assert len(slugs) == len(set(slugs))
    for p in demo["products"]:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", p["slug"])
        assert p["currency"] in {"EUR", "USD"}
        prices = [p["base_price"]] + [v["price"] for v in p["variants"] if v["price"] is not None]
        for price in prices:
            assert isinstance(price, str)
            try:
                assert Decimal(price) > 0
            except InvalidOperation:  # pragma: no cover - only reached on bad data
                pytest.fail(f"{p['slug']}: price {price!r} is not a decimal")
        assert p["weight_grams"] > 0
        assert p["variants"], p["slug"]
        assert all(re.fullmatch(r"[A-Z]{2}", c) for c in p["sellable_countries"])


def test_skus_are_unique_uppercase_and_stocked_in_known_warehouses(demo: dict[str, Any]) -> None:
    skus = [v["sku"] for v in _variants(demo)]
    assert len(skus) == len(set(skus))
    assert all(re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", s) for s in skus)
    locations = {loc["code"] for loc in demo["locations"]}
    assert locations == {"SZX", "RTM"}
    for v in _variants(demo):
        assert set(v["stock"]) <= locations
        assert all(isinstance(n, int) and n >= 0 for n in v["stock"].values())
    totals = [sum(v["stock"].values()) for v in _variants(demo)]
    assert 0 in totals  # some variants are sold out everywhere
    assert any(1 <= n <= 3 for n in totals)  # and some are nearly gone


def test_shoppers_have_unique_identities(demo: dict[str, Any]) -> None:
    keys = [s["key"] for s in demo["shoppers"]]
    assert 10 <= len(keys) == len(set(keys))
    identities = [(i["kind"], i["external_id"]) for s in demo["shoppers"] for i in s["identities"]]
    assert len(identities) == len(set(identities))
    for s in demo["shoppers"]:
        assert s["email"].endswith(("@example.com", "@example.cn"))
        assert s["locale"] in {"en", "zh"}
    assert any(s["locale"] == "zh" for s in demo["shoppers"])


def test_thirty_orders_cover_every_status_at_least_twice(demo: dict[str, Any]) -> None:
    orders = demo["orders"]
    assert [o["number"] for o in orders] == [str(n) for n in range(10001, 10031)]
    final = Counter(o["status_path"][-1] for o in orders)
    assert set(final) == STATUSES
    assert all(n >= 2 for n in final.values()), final


def test_every_status_path_is_legal(demo: dict[str, Any]) -> None:
    for o in demo["orders"]:
        path = o["status_path"]
        assert path[0] == "pending_payment", o["number"]
        for before, after in zip(path, path[1:], strict=False):
            assert after in LEGAL_TRANSITIONS[before], (o["number"], before, after)


def test_orders_refer_to_real_things(demo: dict[str, Any]) -> None:
    products_by_sku = {v["sku"]: p for p in demo["products"] for v in p["variants"]}
    shoppers = {s["key"]: s for s in demo["shoppers"]}
    channels = {c["code"] for c in demo["channels"]}
    external_ids = [(o["channel"], o["external_id"]) for o in demo["orders"]]
    assert len(external_ids) == len(set(external_ids))
    for o in demo["orders"]:
        assert o["channel"] in channels
        assert o["shopper"] in shoppers
        assert o["lines"]
        for line in o["lines"]:
            assert line["sku"] in products_by_sku, (o["number"], line["sku"])
            assert line["quantity"] >= 1
            allowed = products_by_sku[line["sku"]]["sellable_countries"]
            assert not allowed or o["country"] in allowed, (o["number"], line["sku"])
        shipped = "shipped" in o["status_path"]
        assert (o["carrier"] is not None) == shipped, o["number"]
        assert (o["tracking_number"] is not None) == shipped, o["number"]


def test_some_shoppers_buy_again(demo: dict[str, Any]) -> None:
    orders_per_shopper = Counter(o["shopper"] for o in demo["orders"])
    assert sum(1 for n in orders_per_shopper.values() if n >= 2) >= 5


def test_order_lines_in_another_currency_carry_their_price(demo: dict[str, Any]) -> None:
    currency_by_sku = {v["sku"]: p["currency"] for p in demo["products"] for v in p["variants"]}
    for o in demo["orders"]:
        for line in o["lines"]:
            if currency_by_sku[line["sku"]] != o["currency"]:
                assert Decimal(line["unit_price"]) > 0, (o["number"], line["sku"])
            else:
                assert "unit_price" not in line, (o["number"], line["sku"])


@pytest.mark.slow  # loads 316 variants and 30 orders: about 10 s per backend
async def test_demo_shop_loads_through_the_services(db: Database, demo: dict[str, Any]) -> None:
    from api.demo.loader import load_demo
    from commerce.inventory import service as inventory
    from commerce.orders import service as orders

    async with db.unit_of_work() as session:
        assert (await load_demo(session)).startswith("demo shop loaded")
    async with db.unit_of_work() as session:
        assert (await load_demo(session)).startswith("demo shop already loaded")
        for spec in demo["orders"]:
            order = await orders.get_order_by_number(session, number=spec["number"])
            assert order.status == spec["status_path"][-1]
            assert order.currency == spec["currency"]
            assert order.total > 0
        # The cleanser is sold out in both warehouses.
        assert (await inventory.available_stock(session, skus=["CLN-BMB-120"])) == {"CLN-BMB-120": 0}

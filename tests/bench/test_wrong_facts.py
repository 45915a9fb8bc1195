"""The product-question benchmark's wrong-fact count (bench/_wrong_facts.py) against the demo catalog: a quote from
another product, an option the product does not have, the opposite stock, another price; a right answer has none."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._wrong_facts import wrong_facts

DEMO = json.loads((Path(__file__).resolve().parents[2] / "api" / "demo" / "catalog.json").read_text("utf-8"))
CATALOG = {p["slug"]: p for p in DEMO["products"]}
CATEGORIES = {c["slug"]: c["name"] for c in DEMO["categories"]}


def item(**label: Any) -> dict[str, Any]:
    return {"language": "en", "expect": "answer", "field": None, "contains": None, **label}


def answer(product: str, *cited: tuple[str, str], **more: Any) -> dict[str, Any]:
    return {"product": product, "known": True, "aspect": "evidence", "fields": [f for f, _ in cited],
            "quotes": [q for _, q in cited], **more}


def test_a_quote_from_the_products_own_listing_is_no_wrong_fact() -> None:
    sentence = CATALOG["power-bank-20000-pd"]["description"]["en"].split(". ")[1]
    found = answer("power-bank-20000-pd", ("description", sentence), ("tags", "power bank, travel"),
                   ("category", "Electronics"))
    assert wrong_facts(item(product="power-bank-20000-pd"), found, "", CATALOG, CATEGORIES) == []


def test_a_quote_from_another_product_is_a_wrong_fact_naming_it() -> None:
    kettle = CATALOG["gooseneck-electric-kettle"]["description"]["en"].split(". ")[0]
    found = answer("power-bank-20000-pd", ("description", kettle))
    assert wrong_facts(item(product="power-bank-20000-pd"), found, "", CATALOG) == [
        "description quote from other product gooseneck-electric-kettle"]
    made_up = answer("power-bank-20000-pd", ("description", "Charges a laptop in ten minutes."))
    assert wrong_facts(item(product="power-bank-20000-pd"), made_up, "", CATALOG) == ["description quote in no listing"]


def test_an_option_the_product_does_not_come_in_is_a_wrong_fact() -> None:
    offered = {"product": "heavyweight-cotton-hoodie", "known": True, "aspect": "option",
               "fields": ["variants.size", "stock"], "quotes": ["XXL", "in stock"], "offered": True, "value": "XXL"}
    reasons = wrong_facts(item(product="heavyweight-cotton-hoodie"), offered, "", CATALOG)
    assert reasons == ["variants.size value 'xxl' not among its variants", "offered 'XXL', not among its variants"]
    right = {**offered, "quotes": ["XL", "in stock"], "value": "XL"}
    assert wrong_facts(item(product="heavyweight-cotton-hoodie"), right, "", CATALOG) == []


def test_stock_opposite_to_the_label_is_a_wrong_fact() -> None:
    found = {"product": "leather-card-wallet", "known": True, "aspect": "stock", "fields": ["stock"],
             "quotes": ["sold out"]}
    label = item(product="leather-card-wallet", contains="out of stock")
    assert wrong_facts(label, found, "Yes, it is in stock (from its stock).", CATALOG) == [
        "in stock, the label says out of stock"]
    assert wrong_facts(label, found, "It is out of stock right now.", CATALOG) == []
    zh = item(product="leather-card-wallet", contains="有货")
    assert wrong_facts(zh, found, "这款目前缺货。", CATALOG) == ["out of stock, the label says in stock"]


def test_another_price_than_the_labelled_one_is_a_wrong_fact() -> None:
    found = {"product": "braided-usb-c-cable", "known": True, "aspect": "price", "fields": ["price"],
             "quotes": ["€12.90"]}
    label = item(product="braided-usb-c-cable", field="price", contains="€15.90")
    assert wrong_facts(label, found, "It costs €12.90 (from its price).", CATALOG) == ["another price than '€15.90'"]
    assert wrong_facts(label, found, "It costs €15.90 (from its price).", CATALOG) == []


def test_a_refusal_states_no_fact() -> None:
    refused = {"product": "gooseneck-electric-kettle", "known": False, "aspect": "noise", "fields": [], "quotes": []}
    assert wrong_facts(item(product="gooseneck-electric-kettle", expect="refuse"), refused, "", CATALOG) == []
    assert wrong_facts(item(product="gooseneck-electric-kettle"), None, "", CATALOG) == []

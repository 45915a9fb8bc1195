"""Wrong facts in an answer to a product question (bench/product_qa.py): what the reply states that the label or
the catalog contradicts. Driven by each item's label fields and the catalog's listing of the product, not by
per-question rules:

- a quoted passage (description, title, tags, category) that is not in this product's listing: `other product` when
  it is in another product's listing (naming it), `no listing` when it is in none;
- an option value cited from the variants (`variants.<attribute>`), or the option the reply says the product comes
  in (`value` with `offered`), that is not among this product's variant values;
- stock: the label's `contains` says in stock and the reply only says out of stock, or the other way round (en, zh
  wording);
- price: the label's `contains` is a price (a figure labelled on the `price` field, or with a currency sign) and
  the reply cites a price without it.

`wrong_facts(item, found, text, catalog)` -> the list of reasons (empty: no wrong fact); `found` is the reply's
`custom.product_answer`, `catalog` the demo catalog's products by slug (api/demo/catalog.json).
"""
from __future__ import annotations

import re
from typing import Any

OUT_OF_STOCK = re.compile(r"out of stock|sold out|unavailable|缺货|售罄|卖完|没货|断货|暂无库存", re.IGNORECASE)
IN_STOCK = re.compile(r"(?<!out of )\bin stock\b|有货|现货", re.IGNORECASE)
_MONEY = re.compile(r"[€$£¥]|\b(EUR|USD|GBP|CNY|JPY)\b|元")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])")
_QUOTED_FIELDS = ("description", "title", "tags", "category")


def listing_text(product: dict[str, Any], categories: dict[str, dict[str, str]] | None = None) -> str:
    """Everything a listing says, every language: what a quote from it must be part of."""
    parts = [*product.get("title", {}).values(), *product.get("description", {}).values(), *product.get("tags", []),
             *(categories or {}).get(product.get("category", ""), {}).values(), product.get("brand") or ""]
    parts += [f"{name}: {value}" for v in product.get("variants", []) for name, value in v["attributes"].items()]
    return "\n".join(parts).lower()


def variant_values(product: dict[str, Any]) -> set[str]:
    return {str(value).lower() for v in product.get("variants", []) for value in v["attributes"].values()}


def _pieces(quote: str) -> list[str]:
    return [p.strip().lower() for p in _SENTENCE.split(quote) if p.strip()]


def _option_values(quote: str) -> list[str]:
    """The values of a variants citation: "S, M, L" / "colour: black; size: M" / "indigo XL"."""
    values: list[str] = []
    for part in re.split(r"[;,]", quote):
        part = part.split(":", 1)[-1].strip().lower()
        if part:
            values.append(part)
    return values


def _offered(value: str, values: set[str]) -> bool:
    value = value.strip().lower()
    return value in values or all(word in values for word in value.split()) or any(
        re.search(rf"\b{re.escape(value)}\b", v) for v in values)


def wrong_facts(item: dict[str, Any], found: dict[str, Any] | None, text: str, catalog: dict[str, dict[str, Any]],
                categories: dict[str, dict[str, str]] | None = None) -> list[str]:
    """The wrong facts an answer states (module docstring); none for a refusal or an answer about no product."""
    if found is None or not found.get("known"):
        return []
    product = catalog.get(found["product"])
    if product is None:
        return []
    own = listing_text(product, categories)
    values = variant_values(product)
    reasons: list[str] = []
    for field, quote in zip(found.get("fields", []), found.get("quotes", []), strict=False):
        head = field.split(".", 1)[0]
        if head in _QUOTED_FIELDS:
            for piece in (quote.lower().split(", ") if head == "tags" else _pieces(quote)):
                if piece in own:
                    continue
                others = [slug for slug, p in catalog.items() if slug != found["product"]
                          and piece in listing_text(p, categories)]
                reasons.append(f"{field} quote from other product {others[0]}" if others
                               else f"{field} quote in no listing")
        elif head == "variants" and "." in field:
            reasons += [f"{field} value {v!r} not among its variants" for v in _option_values(quote)
                        if not _offered(v, values)]
    if found.get("offered") and found.get("value") and not _offered(str(found["value"]), values):
        reasons.append(f"offered {found['value']!r}, not among its variants")
    contains = str(item.get("contains") or "")
    if item.get("expect") == "answer" and contains:
        says_out, says_in = OUT_OF_STOCK.search(text) is not None, IN_STOCK.search(text) is not None
        if OUT_OF_STOCK.search(contains) and says_in and not says_out:
            reasons.append("in stock, the label says out of stock")
        elif IN_STOCK.search(contains) and says_out and not says_in:
            reasons.append("out of stock, the label says in stock")
        is_price = (item.get("field") == "price" or _MONEY.search(contains) is not None) and re.search(r"\d", contains)
        if is_price and "price" in found.get("fields", []) and contains not in text:
            reasons.append(f"another price than {contains!r}")
    return reasons


__all__ = ["IN_STOCK", "OUT_OF_STOCK", "listing_text", "variant_values", "wrong_facts"]

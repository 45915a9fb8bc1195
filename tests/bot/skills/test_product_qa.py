"""Answers about one product from its listing only (bot.skills.product_qa.read_catalog), on demo products."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.skills.product_qa import Option, ProductSheet, read_catalog

CATALOG = json.loads((Path(__file__).resolve().parents[3] / "api" / "demo" / "catalog.json").read_text("utf-8"))


def sheet(slug: str, *, sold_out: frozenset[str] = frozenset()) -> ProductSheet:
    p = next(p for p in CATALOG["products"] if p["slug"] == slug)
    return ProductSheet(slug=slug, title=p["title"], description=p["description"], tags=tuple(p["tags"]),
                        brand=p.get("brand"), weight_grams=int(p.get("weight_grams", 0)), price_text="€59.90",
                        options=tuple(Option(v["sku"], v["attributes"], v["sku"] not in sold_out)
                                      for v in p["variants"]))


def test_what_the_listing_does_not_say_is_not_known() -> None:
    for question in ("is the kettle loud?", "is it dishwasher safe?", "does it have a warranty?", "有保修吗"):
        answer = read_catalog(sheet("gooseneck-electric-kettle"), question, language="en")
        assert not answer.known, question
        assert answer.citations == ()


def test_an_aspect_is_answered_with_the_sentence_and_field_that_say_it() -> None:
    volts = read_catalog(sheet("gooseneck-electric-kettle"), "what voltage does it use?", language="en")
    assert volts.known
    assert volts.aspect == "voltage"
    assert [(c.field, c.quote) for c in volts.citations] == [
        ("description", "220-240 V with EU plug only, so we do not ship it to 110 V countries.")]
    zh = read_catalog(sheet("anc-wireless-earbuds"), "这款耳机防水吗", language="zh")
    assert zh.known
    assert zh.citations[0].field == "description"
    assert "IPX4" in zh.citations[0].quote
    assert "防泼溅" in zh.citations[0].quote


def test_an_option_is_read_from_the_variants_with_its_stock() -> None:
    hoodie = sheet("heavyweight-cotton-hoodie")
    xl = read_catalog(hoodie, "does it come in XL?", language="en", sizes=("XL",))
    assert (xl.known, xl.offered, xl.asked_value) == (True, True, "XL")
    assert [c.field for c in xl.citations] == ["variants.size", "stock"]
    assert xl.citations[1].quote == "in stock"
    xxl = read_catalog(hoodie, "does it come in XXL?", language="en", sizes=("XXL",))
    assert (xxl.known, xxl.offered, xxl.values) == (True, False, ("S", "M", "L", "XL"))
    sold = sheet("heavyweight-cotton-hoodie", sold_out=frozenset(
        v["sku"] for p in CATALOG["products"] if p["slug"] == "heavyweight-cotton-hoodie"
        for v in p["variants"] if v["attributes"].get("size") == "XL"))
    assert read_catalog(sold, "XL?", language="en", sizes=("XL",)).citations[1].quote == "sold out"


def test_a_size_asked_of_a_product_without_sizes_is_one_size_from_its_variants() -> None:
    kettle = read_catalog(sheet("gooseneck-electric-kettle"), "does it come in XL?", language="en", sizes=("XL",))
    assert (kettle.known, kettle.aspect, kettle.offered, kettle.asked_value) == (True, "one_size", False, "XL")
    # The citation is what its options are instead (colours), not an invented size.
    assert [(c.field, c.quote) for c in kettle.citations] == [("variants", "colour: matte black, matte white, copper")]
    knife = read_catalog(sheet("damascus-chef-knife-20cm"), "do you have it in M?", language="en", sizes=("M",))
    assert (knife.known, knife.aspect, knife.citations[0].quote) == (True, "one_size", "—")


def test_a_colour_the_options_do_not_list_is_still_not_known() -> None:
    # No colour options: the title or description might name its colour, so the variants alone do not answer.
    answer = read_catalog(sheet("yixing-clay-teapot"), "does it come in red?", language="en", colours=("red",))
    assert (answer.known, answer.citations) == (False, ())


@pytest.mark.parametrize(("slug", "question", "field"), [
    ("waterproof-bluetooth-speaker", "is the speaker waterproof?", "tags"),
    ("yixing-clay-teapot", "is it handmade?", "description"),
    ("gooseneck-electric-kettle", "tell me more about this product", "description"),
    ("gooseneck-electric-kettle", "how much does it weigh?", "weight"),
])
def test_answers_cite_their_field(slug: str, question: str, field: str) -> None:
    answer = read_catalog(sheet(slug), question, language="en")
    assert answer.known
    assert answer.citations[0].field == field

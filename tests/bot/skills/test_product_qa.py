"""Answers about one product from its listing only (bot.skills.product_qa.read_catalog), on demo products."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.skills.product_qa import Option, ProductSheet, names_the_product, read_catalog

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
    ("waterproof-bluetooth-speaker", "is the speaker waterproof?", "description"),  # says more than the tag
    ("yixing-clay-teapot", "is it handmade?", "description"),
    ("gooseneck-electric-kettle", "tell me more about this product", "description"),
    ("gooseneck-electric-kettle", "how much does it weigh?", "weight"),
])
def test_answers_cite_their_field(slug: str, question: str, field: str) -> None:
    answer = read_catalog(sheet(slug), question, language="en")
    assert answer.known
    assert answer.citations[0].field == field


@pytest.mark.parametrize(("slug", "question", "language", "aspect", "quoted"), [
    ("lightweight-running-shoes", "do they run small?", "en", "fit", "true to size"),
    ("classic-canvas-sneakers", "尺码准不准", "zh", "fit", "偏小"),
    ("stoneware-dinner-plates-4", "can these go in the oven?", "en", "oven", "250"),
    ("merino-crew-sweater", "穿着会痒吗", "zh", "itch", "不扎皮肤"),
    ("wooden-tangram-puzzle", "适合几岁的孩子", "zh", "kids", "4岁"),
    ("mahjong-set-with-case", "麻将有多少张", "zh", "pieces", "144"),
    ("stainless-steel-chopsticks-set", "how many pairs are in the box?", "en", "pieces", "Five pairs"),
    ("fuding-white-peony-tea", "泡这个茶要多少度的水", "zh", "temperature", "85°C"),
    ("mahjong-set-with-case", "are the tiles made of plastic?", "en", "material", "melamine"),
    ("handmade-stoneware-mug", "可以微波加热吗", "zh", "microwave", "微波炉"),
    ("nylon-belt-bag", "is it waterproof?", "en", "waterproof", "water-repellent"),
])
def test_the_aspects_a_shopper_asks_about_are_read_in_their_language(slug: str, question: str, language: str,
                                                                     aspect: str, quoted: str) -> None:
    answer = read_catalog(sheet(slug), question, language=language)
    assert (answer.known, answer.aspect) == (True, aspect)
    assert answer.citations[0].field == "description"
    assert quoted in answer.citations[0].quote


@pytest.mark.parametrize(("slug", "question", "aspect"), [
    ("mulberry-silk-scarf-90", "is it scratchy?", "itch"),  # "扎头发" (tie in the hair) is no evidence
    ("mulberry-silk-scarf-90", "扎不扎脖子", "itch"),
    ("hyaluronic-sheet-masks-10", "有防晒效果吗", "sun"),
    ("giant-panda-plush-30cm", "有质保吗", "warranty"),
    ("fermented-rice-water-toner", "is the toner vegan?", "vegan"),
    ("traditional-cloth-shoes", "会不会偏大", "fit"),
    ("ramen-bowl-set", "可以放烤箱烤吗", "oven"),
])
def test_an_aspect_the_listing_does_not_state_is_refused(slug: str, question: str, aspect: str) -> None:
    answer = read_catalog(sheet(slug), question, language="zh" if not question.isascii() else "en")
    assert (answer.known, answer.aspect, answer.citations) == (False, aspect, ())


def test_a_fit_question_is_not_read_as_a_size() -> None:
    loafers = read_catalog(sheet("leather-penny-loafers"), "do they fit small?", language="en", sizes=("S",))
    assert (loafers.known, loafers.aspect) == (True, "fit")
    assert "snug" in loafers.citations[0].quote


def test_a_catalog_word_names_the_product_only_when_it_is_that_products_word() -> None:
    balm = sheet("lip-balm-trio")
    assert names_the_product(balm, "唇膏")
    assert names_the_product(balm, "lip balms")
    assert not names_the_product(balm, "防晒")  # a sunscreen's word: what the question asks about
    assert not names_the_product(balm, "")
    # Asked of the lip balm with "防晒" taken as naming nothing here, the listing does not say: not its description.
    answer = read_catalog(balm, "含防晒吗", language="zh", naming=())
    assert (answer.known, answer.citations) == (False, ())

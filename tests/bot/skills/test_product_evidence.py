"""The general evidence for a product question (bot.skills.product_evidence through read_catalog), with the served
multilingual encoder, on demo products: a passage is cited only when it speaks to what is asked; yes or no only
when it says so plainly."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bot.skills.product_evidence import PassageVectors, plain_answer, shared_share, wants_yes_or_no
from bot.skills.product_qa import Option, ProductSheet, read_catalog
from nlu.embedder import Embedder

CATALOG = json.loads((Path(__file__).resolve().parents[3] / "api" / "demo" / "catalog.json").read_text("utf-8"))
CATEGORIES = {c["slug"]: c["name"] for c in CATALOG["categories"]}


@pytest.fixture(scope="module")
def encoder() -> Embedder:
    embedder = Embedder(processes=0)
    embedder.load()
    return embedder


def sheet(slug: str) -> ProductSheet:
    p = next(p for p in CATALOG["products"] if p["slug"] == slug)
    return ProductSheet(slug=slug, title=p["title"], description=p["description"], tags=tuple(p["tags"]),
                        brand=p.get("brand"), weight_grams=int(p.get("weight_grams", 0)), price_text="€9.90",
                        options=tuple(Option(v["sku"], v["attributes"], True) for v in p["variants"]),
                        category=CATEGORIES[p["category"]])


def test_a_question_no_table_knows_is_answered_from_the_sentence_that_says_it(encoder: Embedder) -> None:
    cold = read_catalog(sheet("fuding-white-peony-tea"), "可以冷泡吗", language="zh", encoder=encoder.encode)
    assert cold.known
    assert cold.aspect == "evidence"
    assert cold.citations[0].field == "description"
    assert "冷泡" in cold.citations[0].quote
    greasy = read_catalog(sheet("daily-sunscreen-spf50"), "is it greasy", language="en", encoder=encoder.encode)
    assert greasy.known
    assert "non-greasy" in greasy.citations[0].quote
    assert greasy.plain is False  # "non-greasy": the listing plainly says no


def test_what_the_listing_does_not_speak_to_is_not_known(encoder: Embedder) -> None:
    for slug, question, language in (("gooseneck-electric-kettle", "is the kettle loud?", "en"),
                                     ("west-lake-longjing-green-tea", "这个茶含咖啡因吗", "zh"),
                                     ("yixing-clay-teapot", "is the teapot dishwasher safe?", "en"),
                                     ("led-desk-lamp", "can it go down to 2000K?", "en"),
                                     # a figure is asked: a sentence naming the strap without one does not answer
                                     ("nylon-belt-bag", "how long is the strap", "en")):
        answer = read_catalog(sheet(slug), question, language=language, encoder=encoder.encode)
        assert not answer.known, question
        assert answer.citations == ()


def test_every_cited_passage_is_this_products_own_text(encoder: Embedder) -> None:
    product = sheet("nylon-belt-bag")
    answer = read_catalog(product, "will it fit a passport?", language="en", encoder=encoder.encode)
    assert answer.known
    own = " ".join([*product.title.values(), *product.description.values(), *product.tags])
    assert all(c.quote in own for c in answer.citations)


def test_yes_or_no_only_when_the_passage_says_it_plainly() -> None:
    assert plain_answer(["waterproof"], "Fully waterproof to IPX7.") is True
    assert plain_answer(["glazed"], "The pot is unglazed inside and out.") is False
    assert plain_answer(["dishwasher"], "Hand wash only, not dishwasher safe.") is False
    assert plain_answer(["冷泡"], "放冰箱冷泡一夜也非常好喝。") is True
    assert plain_answer(["防水"], "不防水，请勿泡水。") is False
    assert plain_answer(["waterproof", "shower"], "Fully waterproof.") is None  # a part of the question is unsaid
    for question in ("is it greasy", "可以冷泡吗", "防水不"):
        assert wants_yes_or_no(question), question
    assert not wants_yes_or_no("how long is the strap")


def test_a_word_inside_a_longer_asked_word_counts_half_and_never_in_a_tag() -> None:
    assert shared_share(["咖啡因", "咖啡"], "茶叶与咖啡", whole_words=True) == 0.0
    assert shared_share(["咖啡因", "咖啡"], "茶叶与咖啡") == 0.5
    assert shared_share(["咖啡因", "咖啡"], "不含咖啡因") == 1.0
    assert shared_share(["scented"], "An unscented balm.") == 1.0


def test_passage_vectors_are_encoded_once_and_kept_by_text() -> None:
    calls: list[list[str]] = []

    def counting(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        calls.append(list(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    vectors = PassageVectors(counting, keep=2)
    vectors.of(["a", "b"], fresh=["q1"])
    vectors.of(["a", "b"], fresh=["q2"])
    assert calls == [["q1", "a", "b"], ["q2"]]
    vectors.of(["c"])
    assert calls[-1] == ["c"]
    vectors.of(["a"])  # "a" was the oldest when "c" came in (keep=2): encoded again
    assert calls[-1] == ["a"]


def test_the_message_row_gives_the_question_meaning_and_use_rows_are_taken_whole(encoder: Embedder) -> None:
    question = "可以冷泡吗"
    row = encoder.encode([question])[0]  # the NLU's row: MiniLM then USE
    with_row = read_catalog(sheet("fuding-white-peony-tea"), question, language="zh",
                            encoder=encoder.encode_multilingual, question_row=row)
    without = read_catalog(sheet("fuding-white-peony-tea"), question, language="zh", encoder=encoder.encode)
    assert with_row.known
    assert with_row.citations == without.citations

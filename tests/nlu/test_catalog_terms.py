"""The catalog's words as NLU evidence (nlu.catalog_terms) and how they change a parse."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nlu.catalog_terms import CatalogVocabulary, rereads_as_products
from nlu.entities import Entity
from nlu.service import CATALOG_EXTRACTOR, IntentScore, ParseResult, with_catalog_evidence

TERMS = ["Gooseneck Electric Kettle with Temperature Control, 0.9 L", "温控手冲细口电热水壶 0.9升", "Brewhaus",
         "kettle", "tea", "green tea", "Teaware & Ceramics", "茶具与陶瓷", "龙井 绿茶", "茶与咖啡", "Great Wall Puzzle"]
LABELS = ["greet", "goodbye", "thanks", "faq", "product_search", "order_status", "nlu_fallback"]


@pytest.fixture(scope="module")
def vocabulary() -> CatalogVocabulary:
    return CatalogVocabulary(TERMS)


def parse(text: str, intent: str, confidence: float = 0.9) -> ParseResult:
    return ParseResult(text=text, intent=intent, confidence=confidence,
                       intent_ranking=(IntentScore(intent, confidence), IntentScore("product_search", 0.05)),
                       entities=(), language="zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en",
                       embedding=np.zeros(0, np.float32))


@pytest.mark.parametrize(("text", "coverage"), [
    ("tea", 1.0), ("kettles", 1.0), ("Brewhaus", 1.0), ("do you have green tea?", 1.0), ("hi, tea please", 0.5),
    ("有电水壶吗", 2 / 3), ("茶", 1.0), ("温控水壶", 1.0),
])
def test_catalog_words_and_their_share_of_the_message(vocabulary: CatalogVocabulary, text: str,
                                                      coverage: float) -> None:
    evidence = vocabulary.evidence(text)
    assert evidence.names_products
    assert evidence.coverage == pytest.approx(coverage)


@pytest.mark.parametrize("text", ["hi", "bye", "thanks", "great, thanks", "你好", "谢谢", "再见", "where is my order",
                                  "运费多少", ""])
def test_small_talk_names_no_product(vocabulary: CatalogVocabulary, text: str) -> None:
    assert not vocabulary.evidence(text).names_products  # "great" is in a title but never a product word


def test_a_bare_noun_read_as_goodbye_becomes_a_search(vocabulary: CatalogVocabulary) -> None:
    reread = with_catalog_evidence(parse("tea", "goodbye"), vocabulary.evidence("tea"), labels=LABELS)
    assert (reread.intent, reread.confidence, reread.reread_from) == ("product_search", 1.0, "goodbye")
    assert reread.intent_ranking[0].name == "product_search"
    assert [(e.entity, e.value, e.start, e.end, e.extractor) for e in reread.entities] == [
        ("product", "tea", 0, 3, CATALOG_EXTRACTOR)]
    assert reread.to_rasa()["reread_from"] == "goodbye"


def test_other_readings_keep_their_intent_and_gain_the_product_entity(vocabulary: CatalogVocabulary) -> None:
    text = "where is my kettle order"
    kept = with_catalog_evidence(parse(text, "order_status"), vocabulary.evidence(text), labels=LABELS)
    assert kept.intent == "order_status"
    assert kept.reread_from is None
    assert [e.value for e in kept.entities] == ["kettle"]
    # The knowledge base's reading gives way only when the whole message is catalog words.
    faq = "do you gift wrap the kettle"
    assert not rereads_as_products("faq", vocabulary.evidence(faq), labels=LABELS)
    assert rereads_as_products("faq", vocabulary.evidence("green tea"), labels=LABELS)


def test_a_model_without_product_search_is_left_alone(vocabulary: CatalogVocabulary) -> None:
    assert not rereads_as_products("goodbye", vocabulary.evidence("tea"), labels=["greet", "goodbye"])
    assert not rereads_as_products("goodbye", vocabulary.evidence("tea"), labels=[])


def test_a_misspelt_catalog_word_counts_in_a_short_message(vocabulary: CatalogVocabulary) -> None:
    for text in ("kettel", "ketle", "brewhuas", "gooseneck kettel"):
        assert vocabulary.evidence(text).names_products, text
    assert vocabulary.evidence("kettel").matches[0].term == "kettel"  # the words as written
    assert vocabulary.correction("kettel") == "kettle"
    # Not in a longer message, not a social word, not a short word, not two candidates.
    assert not vocabulary.evidence("i would like a new kettel for my mum").names_products
    assert not vocabulary.evidence("helo").names_products
    assert vocabulary.correction("tee") is None
    assert CatalogVocabulary(["pants", "paints"]).correction("pints") is None  # one typo from both: unsure


def test_a_colour_inside_a_longer_catalog_name_is_part_of_the_name() -> None:
    # 大红袍 is a tea: its 大红 ("bright red") must not become a colour filter that leaves "袍" to search for.
    vocabulary = CatalogVocabulary([*TERMS, "武夷山大红袍岩茶 100克"])

    def with_colour(text: str) -> ParseResult:
        start = text.index("大红")
        colour = Entity(entity="colour", value="red", start=start, end=start + 2, text="大红", confidence=1.0,
                        extractor="LookupEntityExtractor")
        return with_catalog_evidence(replace(parse(text, "product_search"), entities=(colour,)),
                                     vocabulary.evidence(text), labels=LABELS)

    tea = with_colour("大红袍还有货没")
    assert [(e.entity, e.value) for e in tea.entities] == [("product", "大红袍")]
    # A colour word followed by 色 stays a colour, even next to catalog words.
    hoodie = with_colour("大红色的茶具")
    assert ("colour", "red") in [(e.entity, e.value) for e in hoodie.entities]


def test_a_merchant_synonym_names_the_product_whole_not_by_its_lone_characters() -> None:
    vocabulary = CatalogVocabulary(["20000毫安时 USB-C 快充移动电源"], names=["充电宝", "移动电源"])
    assert [m.term for m in vocabulary.evidence("我想买充电宝").matches] == ["充电宝"]
    assert vocabulary.evidence("可以用支付宝吗").matches == ()  # jieba's 宝 of 充电宝 is no catalog word
    assert CatalogVocabulary(["充电宝"]).evidence("可以用支付宝吗").matches != ()  # as a title word it is

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nlu.entities import EntityExtractor
from nlu.training_data import load_training_data

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(load_training_data([DATA / "tiny_shop.yml"]))


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, Any, str]]:
    return [(e.entity, e.value, text[e.start:e.end]) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is order #10023?", [("order_number", "10023", "#10023")]),
        ("track order 10451 please", [("order_number", "10451", "10451")]),
        ("我的订单号10023到哪了", [("order_number", "10023", "10023")]),
        ("mail me at li.wei@example.cn", [("email", "li.wei@example.cn", "li.wei@example.cn")]),
        ("my phone is +49 151 23456789", [("phone", "+4915123456789", "+49 151 23456789")]),
        ("手机13812345678", [("phone", "13812345678", "13812345678")]),
    ],
)
def test_order_numbers_emails_phones(extractor: EntityExtractor, text: str, expected: list[Any]) -> None:
    assert found(extractor, text) == expected


@pytest.mark.parametrize(
    ("text", "amount", "currency", "surface"),
    [
        ("under $50", "50", "USD", "$50"),
        ("about US$ 1,299.99", "1299.99", "USD", "US$ 1,299.99"),
        ("max €80", "80", "EUR", "€80"),
        ("it costs 12,50 €", "12.50", "EUR", "12,50 €"),
        ("around 20 pounds", "20", "GBP", "20 pounds"),
        ("100元以内", "100", "CNY", "100元"),
        ("预算¥300", "300", "CNY", "¥300"),
        ("less than ¥3000", "3000", "CNY", "¥3000"),
        ("about JP¥3000", "3000", "JPY", "JP¥3000"),
        ("50欧以内", "50", "EUR", "50欧"),
        ("RMB 200 is fine", "200", "CNY", "RMB 200"),
        ("pay 30 EUR", "30", "EUR", "30 EUR"),
        ("50美元", "50", "USD", "50美元"),
    ],
)
def test_money_amount_and_currency(extractor: EntityExtractor, text: str, amount: str, currency: str,
                                   surface: str) -> None:
    money = [(e.value, text[e.start:e.end]) for e in extractor.extract(text) if e.entity == "money"]
    assert money == [({"amount": amount, "currency": currency}, surface)]


def test_shop_words_sizes_colours_quantities(extractor: EntityExtractor) -> None:
    assert found(extractor, "I need 2 black hoodies in size M") == [
        ("quantity", 2, "2"), ("colour", "black", "black"), ("product", "hoodies", "hoodies"), ("size", "M", "M"),
    ]
    assert found(extractor, "white t-shirt in small or EU 42") == [
        ("colour", "white", "white"), ("size", "S", "small"), ("size", "EU 42", "EU 42"),
    ]
    assert found(extractor, "add a couple of grey ones") == [("quantity", 2, "a couple of"), ("colour", "grey", "grey")]
    assert found(extractor, "我要两件红色的卫衣，XL") == [
        ("quantity", 2, "两件"), ("colour", "red", "红色"), ("product", "卫衣", "卫衣"), ("size", "XL", "XL"),
    ]
    # "I'm" is not a size M and "this one" is no quantity.
    assert found(extractor, "I'm sure this one is nice") == []


def test_countries_and_currencies_in_english_chinese_and_codes(extractor: EntityExtractor) -> None:
    assert found(extractor, "do you ship to Germany or the UK?") == [
        ("country", "DE", "Germany"), ("country", "GB", "UK"),
    ]
    assert found(extractor, "寄到美国和日本要多久") == [("country", "US", "美国"), ("country", "JP", "日本")]
    assert found(extractor, "shipping to FR, show prices in euros") == [
        ("country", "FR", "FR"), ("currency", "EUR", "euros"),
    ]
    assert found(extractor, "用人民币还是美元付款") == [("currency", "CNY", "人民币"), ("currency", "USD", "美元")]
    # Lower-case "it" and "in" are words, not Italy and India.
    assert found(extractor, "is it in stock") == []


def test_synonyms_map_to_canonical_values(extractor: EntityExtractor) -> None:
    assert found(extractor, "any trainers?") == [("product", "sneaker", "trainers")]
    assert found(extractor, "got sneakers?") == [("product", "sneaker", "sneakers")]
    extractor.add_synonyms({"dresses": "dress"})
    (dress,) = extractor.extract("red dresses")[1:]
    assert dress.value == "dress"
    assert dress.to_rasa()["processors"] == ["EntitySynonymMapper"]


def test_training_regexes_and_lookups(extractor: EntityExtractor) -> None:
    assert found(extractor, "use code SAVE20 on my Acme jacket") == [
        ("coupon_code", "SAVE20", "SAVE20"), ("brand", "Acme", "Acme"),
    ]


def test_catalog_lookup_tables_can_be_replaced_at_runtime() -> None:
    extractor = EntityExtractor(load_training_data([DATA / "tiny_shop.yml"]))
    assert found(extractor, "do you have the Alpine Rain Jacket?") == []
    extractor.set_lookup("product", ["Alpine Rain Jacket", "陶瓷茶壶"])
    extractor.set_lookup("category", {"outdoor gear": "outdoor", "户外": "outdoor"})
    assert found(extractor, "do you have the alpine rain jackets in outdoor gear?") == [
        ("product", "Alpine Rain Jacket", "alpine rain jackets"), ("category", "outdoor", "outdoor gear"),
    ]
    assert found(extractor, "户外的陶瓷茶壶") == [("category", "outdoor", "户外"), ("product", "陶瓷茶壶", "陶瓷茶壶")]


def test_offsets_stay_right_in_long_and_odd_text(extractor: EntityExtractor) -> None:
    text = "😀" * 50 + " " + "blah " * 2000 + "order #55012 to Germany"
    entities = extractor.extract(text)
    assert [(e.entity, text[e.start:e.end]) for e in entities] == [("order_number", "#55012"), ("country", "Germany")]
    assert extractor.extract("") == []
    assert extractor.extract("🎉🎉🎉") == []


def test_rasa_shape(extractor: EntityExtractor) -> None:
    (entity,) = extractor.extract("order #10023")
    assert entity.to_rasa() == {"entity": "order_number", "start": 6, "end": 12, "value": "10023",
                                "confidence": 1.0, "extractor": "RegexEntityExtractor"}

from __future__ import annotations

import pytest

from nlu.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("where is my order?", "en"),
        ("我的订单在哪里", "zh"),
        ("我想买 iPhone 15 的手机壳", "zh"),
        ("do you ship to 中国?", "en"),
        ("", "en"),
        ("   ", "en"),
        ("😀🎉", "en"),
        ("12345", "en"),
        ("こんにちは", "ja"),
        ("¿Dónde está mi pedido?", "es"),
        ("quiero comprar el hervidor negro", "es"),
        ("Hola, busco una tetera", "es"),
        ("hola", "en"),  # English shoppers greet like this too
        ("ship to ES please", "en"),  # a country code is not a Spanish word
        ("a café latte mug", "en"),
    ],
)
def test_language_from_script(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_default_for_text_without_letters() -> None:
    assert detect_language("👍", default="zh") == "zh"

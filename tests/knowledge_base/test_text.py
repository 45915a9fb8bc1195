from __future__ import annotations

import pytest

from knowledge_base.errors import InvalidFaqEntry
from knowledge_base.text import clean_answer, clean_codes, clean_language, clean_questions, question_key, tokens


@pytest.mark.parametrize(("answer", "code"), [
    ("", "empty_answer"),
    ("   \n ", "empty_answer"),
    ("Free returns <script>alert(1)</script>", "answer_contains_html"),
    ("<b>bold</b>", "answer_contains_html"),
    ('<img src=x onerror="alert(1)">', "answer_contains_html"),
    ("See [our policy](javascript:alert(1))", "unsafe_link"),
    ("Click javascript:alert(1)", "unsafe_link"),
    ("x" * 5001, "answer_too_long"),
])
def test_bad_answers_are_refused_with_a_code(answer: str, code: str) -> None:
    with pytest.raises(InvalidFaqEntry) as caught:
        clean_answer(answer)
    assert caught.value.code == code


def test_simple_formatting_and_safe_links_are_kept() -> None:
    text = "**Free** returns:\n- within 30 days\nSee [policy](https://shop.example/returns) or mailto:help@x.example"
    assert clean_answer(text) == text
    assert clean_answer("Prices 2 < 3 and 5 > 4") == "Prices 2 < 3 and 5 > 4"


def test_questions_are_deduplicated_and_required() -> None:
    assert clean_questions(["Where is my order?", "where is my  order", "  ", "Track parcel"]) == [
        "Where is my order?", "Track parcel"]
    with pytest.raises(InvalidFaqEntry) as caught:
        clean_questions(["", "  "])
    assert caught.value.code == "missing_question"


def test_question_key_ignores_case_width_and_end_punctuation() -> None:
    assert question_key("How long is SHIPPING?") == question_key("how long is shipping")
    assert question_key("运费多少？") == question_key("运费多少")


def test_chinese_is_segmented_and_english_stemmed() -> None:
    assert "运费" in tokens("寄到德国运费多少")
    assert "return" in tokens("Returns and returned items")


def test_codes_and_languages() -> None:
    assert clean_codes(["de", " NL ", "de"], what="country", upper=True) == ["DE", "NL"]
    assert clean_language("zh-CN") == "zh"
    with pytest.raises(InvalidFaqEntry):
        clean_codes(["Germany"], what="country", upper=True)
    with pytest.raises(InvalidFaqEntry):
        clean_language("klingon")

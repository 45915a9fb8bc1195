from __future__ import annotations

from pathlib import Path

import pytest

from nlu.errors import TrainingDataError
from nlu.service import DEFAULT_DATA_DIR
from nlu.training_data import load_training_data, parse_training_data

DATA = Path(__file__).parent / "data"


def test_tiny_shop_data_reads_intents_entities_synonyms_regexes_lookups() -> None:
    data = load_training_data([DATA / "tiny_shop.yml"])

    assert data.intents == ["greet", "order_status", "out_of_scope", "product_search", "return_refund"]
    example = next(e for e in data.examples if e.text == "where is my order #10023?")
    (annotation,) = example.entities
    assert (annotation.entity, annotation.value) == ("order_number", "#10023")
    assert example.text[annotation.start:annotation.end] == "#10023"
    sneakers = next(e for e in data.examples if e.text.startswith("any sneakers"))
    product, money = sneakers.entities
    assert (product.text, product.value) == ("sneakers", "sneaker")
    assert sneakers.text[money.start:money.end] == "$50"
    assert data.synonyms["trainers"] == "sneaker"
    assert data.synonyms["sneakers"] == "sneaker"
    assert data.regexes == {"coupon_code": [r"\bSAVE\d{2}\b"]}
    assert data.lookups == {"brand": ["Acme", "Globex"]}
    assert example.source.endswith("tiny_shop.yml:17")


def test_chinese_annotation_offsets() -> None:
    content = 'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - 有没有[红色](colour)的[连衣裙](product)\n'
    data = parse_training_data(content)
    (example,) = data.examples
    assert example.text == "有没有红色的连衣裙"
    spans = [(example.text[a.start:a.end], a.entity) for a in example.entities]
    assert spans == [("红色", "colour"), ("连衣裙", "product")]


def test_old_style_synonym_and_list_examples() -> None:
    content = 'version: "3.1"\nnlu:\n- intent: a\n  examples:\n  - text: ship to [UK](country:GB)\n  - hello\n'
    data = parse_training_data(content)
    assert [e.text for e in data.examples] == ["ship to UK", "hello"]
    assert data.examples[0].entities[0].value == "GB"
    assert data.synonyms["uk"] == "GB"


@pytest.mark.parametrize(
    ("name", "line", "problem"),
    [
        ("broken_annotation.yml", 6, "not valid JSON"),
        ("broken_yaml.yml", 6, "YAML syntax error"),
        ("broken_item.yml", 6, "exactly one of intent, synonym, regex, lookup"),
    ],
)
def test_malformed_files_are_refused_with_file_line_and_problem(name: str, line: int, problem: str) -> None:
    with pytest.raises(TrainingDataError) as caught:
        load_training_data([DATA / name])
    error = caught.value
    assert error.source.endswith(name)
    assert error.line == line
    assert problem in error.detail
    assert f"{name}:{line}:" in error.detail
    assert error.to_problem()["code"] == "nlu_training_data_invalid"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('version: "9.0"\nnlu: []\n', "unsupported training data version"),
        ('version: "3.1"\nnlu:\n- intent: a\n', "has no 'examples'"),
        ('version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    hello\n', "must start with '- '"),
        ('version: "3.1"\nnlu:\n- regex: r\n  examples: |\n    - ([a-z\n', "does not compile"),
        ('version: "3.1"\nnlu: hello\n', "'nlu' must be a list"),
        ('- just a list\n', "top level must be a mapping"),
        ('version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - see [this](\n', "malformed entity annotation"),
    ],
)
def test_other_problems_are_named(content: str, problem: str) -> None:
    with pytest.raises(TrainingDataError, match="nlu.yml:[0-9]+: .*" + problem.replace("(", r"\(")):
        parse_training_data(content, source="nlu.yml")


def test_missing_file_is_named() -> None:
    with pytest.raises(TrainingDataError, match="nope.yml: file or folder does not exist"):
        load_training_data([DATA / "nope.yml"])


def test_shipped_shop_data_parses() -> None:
    data = load_training_data([DEFAULT_DATA_DIR])
    assert len(data.intents) >= 10
    assert "out_of_scope" in data.intents
    assert any("\u4e00" <= ch <= "\u9fff" for e in data.examples for ch in e.text)

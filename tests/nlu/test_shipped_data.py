"""The shipped NLU data (nlu/data) and the held-out test sets (bench/data) are valid Rasa 3.1 YAML."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("en", "zh")
TRAIN = {lang: ROOT / "nlu" / "data" / f"shop_{lang}.yml" for lang in LANGUAGES}
HELD_OUT = {lang: ROOT / "bench" / "data" / f"nlu_shop_test_{lang}.yml" for lang in LANGUAGES}
LOOKUPS = ROOT / "nlu" / "data" / "lookups"
INTENTS = {
    "greet", "goodbye", "thanks", "affirm", "deny", "help", "product_search", "recommend",
    "add_to_cart", "view_cart", "checkout", "order_status", "cancel_order", "return_refund",
    "shipping_info", "customs_duties", "currency_payment", "human_handoff", "complaint", "faq",
    "out_of_scope", "product_question",
}
ENTITIES = {
    "order_number", "email", "phone", "money", "quantity", "size", "colour", "country", "currency",
    "product", "category",
}
# Rasa's own annotation grammar: [text](entity), [text](entity:value) or [text]{"entity": ...}.
ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\](?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<json>[^}]+?)\})"
)


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), path
    return data


def block_lines(item: dict[str, Any]) -> list[str]:
    lines = [line.strip() for line in str(item["examples"]).splitlines() if line.strip()]
    assert all(line.startswith("- ") for line in lines), item
    return [line[2:].strip() for line in lines]


def intent_examples(path: Path) -> dict[str, list[str]]:
    data = load(path)
    assert data.get("version") == "3.1", path
    found: dict[str, list[str]] = {}
    for item in data["nlu"]:
        if "intent" in item:
            assert item["intent"] not in found, f"{path}: intent {item['intent']} listed twice"
            found[item["intent"]] = block_lines(item)
    return found


def entity_annotations(example: str) -> list[tuple[str, str, str]]:
    """(surface text, entity, value) of every annotation; fails on malformed markup."""
    found: list[tuple[str, str, str]] = []
    for match in ANNOTATION.finditer(example):
        text = match.group("text")
        if match.group("json"):
            spec = json.loads("{" + match.group("json") + "}")
            entity, value = spec["entity"], str(spec.get("value", text))
        else:
            entity, value = match.group("entity"), match.group("value") or text
        found.append((text, entity, value))
    plain = ANNOTATION.sub("", example)
    assert not set("[]{}") & set(plain), f"unbalanced or malformed annotation: {example!r}"
    return found


def plain_text(example: str) -> str:
    return ANNOTATION.sub(lambda m: m.group("text"), example)


def normalised(example: str) -> str:
    return " ".join(plain_text(example).casefold().split()).strip(" .!?。！？~")


def synonym_values(name: str) -> set[str]:
    return {item["synonym"] for item in load(LOOKUPS / name)["nlu"] if "synonym" in item}


ALL_FILES = [*TRAIN.values(), *HELD_OUT.values()]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_intent_is_present_with_enough_examples(path: Path) -> None:
    examples = intent_examples(path)
    assert set(examples) == INTENTS
    minimum = 40 if path in TRAIN.values() else 15
    short = {intent: len(lines) for intent, lines in examples.items() if len(lines) < minimum}
    assert not short, f"{path.name}: fewer than {minimum} examples: {short}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_annotations_are_well_formed_and_use_known_entities(path: Path) -> None:
    countries = synonym_values("countries.yml")
    currencies = synonym_values("currencies.yml")
    for lines in intent_examples(path).values():
        for example in lines:
            for text, entity, value in entity_annotations(example):
                assert entity in ENTITIES, example
                assert text, example
                assert text.strip() == text, example
                if entity == "country":
                    assert value in countries, f"unknown country code {value!r} in {example!r}"
                if entity == "currency":
                    assert value in currencies, f"unknown currency code {value!r} in {example!r}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_no_duplicate_examples_within_or_across_intents(path: Path) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, lines in intent_examples(path).items():
        for example in lines:
            key = normalised(example)
            if key in seen:
                clashes.append(f"{example!r} in {intent} and {seen[key]}")
            seen[key] = intent
    assert not clashes, f"{path.name}: {clashes}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_held_out_examples_never_appear_in_training(lang: str) -> None:
    # Against both languages: the classifier may be trained on the two files together.
    trained = {normalised(e) for path in TRAIN.values() for lines in intent_examples(path).values() for e in lines}
    leaked = [e for lines in intent_examples(HELD_OUT[lang]).values() for e in lines if normalised(e) in trained]
    assert not leaked


@pytest.mark.parametrize(
    ("name", "code"),
    [("countries.yml", r"[A-Z]{2}"), ("currencies.yml", r"[A-Z]{3}")],
)
def test_lookup_synonyms_map_to_iso_codes(name: str, code: str) -> None:
    data = load(LOOKUPS / name)
    assert data["version"] == "3.1"
    items = data["nlu"]
    assert any("lookup" in item for item in items)
    surface_to_code: dict[str, str] = {}
    for item in items:
        if "synonym" not in item:
            continue
        assert re.fullmatch(code, item["synonym"]), item["synonym"]
        for surface in block_lines(item):
            # One surface form must not mean two different codes.
            assert surface_to_code.setdefault(surface.casefold(), item["synonym"]) == item["synonym"], surface


def test_country_and_currency_synonyms_cover_key_forms() -> None:
    def mapping(name: str) -> dict[str, str]:
        return {
            surface: item["synonym"]
            for item in load(LOOKUPS / name)["nlu"] if "synonym" in item
            for surface in block_lines(item)
        }

    countries, currencies = mapping("countries.yml"), mapping("currencies.yml")
    assert len({*countries.values()}) >= 240
    assert countries["Germany"] == countries["德国"] == "DE"
    assert countries["UK"] == countries["英国"] == "GB"
    assert currencies["¥"] == currencies["人民币"] == currencies["RMB"] == "CNY"
    assert currencies["日元"] == currencies["円"] == "JPY"
    assert currencies["€"] == currencies["欧元"] == "EUR"
    assert currencies["美金"] == currencies["US$"] == "USD"


def test_synonyms_are_consistent_across_all_files() -> None:
    # Rasa applies synonyms globally (whatever the entity), so one surface form must mean one value.
    meanings: dict[str, set[str]] = {}
    for path in LOOKUPS.glob("*.yml"):
        for item in load(path)["nlu"]:
            if "synonym" in item:
                for surface in block_lines(item):
                    meanings.setdefault(surface.casefold(), set()).add(item["synonym"])
    for path in ALL_FILES:
        for lines in intent_examples(path).values():
            for example in lines:
                for text, _, value in entity_annotations(example):
                    if text != value:
                        meanings.setdefault(text.casefold(), set()).add(value)
    assert not {surface: values for surface, values in meanings.items() if len(values) > 1}


@pytest.mark.parametrize(("entity", "name"), [("colour", "colours.yml"), ("category", "categories.yml")])
def test_colour_and_category_values_are_canonical(entity: str, name: str) -> None:
    items = load(LOOKUPS / name)["nlu"]
    canonical = {item["synonym"] for item in items if "synonym" in item}
    surfaces = {s.casefold() for item in items if "synonym" in item for s in block_lines(item)}
    canonical |= {s for item in items if "lookup" in item for s in block_lines(item) if s.casefold() not in surfaces}
    odd = [
        (path.name, example)
        for path in ALL_FILES
        for lines in intent_examples(path).values()
        for example in lines
        for _, found, value in entity_annotations(example)
        if found == entity and value not in canonical
    ]
    assert not odd


@pytest.mark.parametrize("name", ["colours.yml", "sizes.yml", "categories.yml"])
def test_other_lookups_load(name: str) -> None:
    data = load(LOOKUPS / name)
    assert data["version"] == "3.1"
    assert any("lookup" in item for item in data["nlu"])
    assert any("synonym" in item for item in data["nlu"])


@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [
        ("order_number", "where is order #10023?", "#10023"),
        ("order_number", "订单号10023还没到", "10023"),
        ("email", "mail me at anna.k@example.com please", "anna.k@example.com"),
        ("phone", "call +44 7700 900123 tomorrow", "+44 7700 900123"),
        ("phone", "我的手机13812345678", "13812345678"),
    ],
)
def test_regexes_find_entities(entity: str, text: str, expected: str) -> None:
    items = load(LOOKUPS / "regexes.yml")["nlu"]
    patterns = [p for item in items if item.get("regex") == entity for p in block_lines(item)]
    assert patterns
    matches = {m.group(0) for p in patterns for m in re.finditer(p, text)}
    assert expected in matches

"""Retrieval quality on the demo FAQ with the real embedder (the held-out paraphrases of bench/data)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import knowledge_base as kb
from kit.db import Database
from knowledge_base.live import LiveFaqIndex
from tests.knowledge_base.conftest import RememberingEmbedder

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def _heldout(language: str) -> list[dict[str, str]]:
    items: list[dict[str, str]] = json.loads((DATA / f"kb_heldout_{language}.json").read_text("utf-8"))["questions"]
    return items


@pytest.fixture
async def demo_index(db: Database, embedder: RememberingEmbedder) -> LiveFaqIndex:
    async with db.unit_of_work() as session:
        report = await kb.load_demo_faq(session, embedder=embedder)
    assert report.created >= 80
    index = LiveFaqIndex(db, embedder=embedder, poll_interval=60)
    await index.reload()
    return index


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_shoppers_paraphrases_find_the_right_entry_in_their_language(
        demo_index: LiveFaqIndex, embedder: RememberingEmbedder, language: str) -> None:
    items = [i for i in _heldout(language) if i["expected"] and not i.get("faq_language")]
    rows = embedder.encode([i["question"] for i in items])
    right = 0
    for item, row in zip(items, rows, strict=True):
        result = await demo_index.search(item["question"], language=language, embedding=row)
        assert result.matches, item["question"]
        assert result.matches[0].language == language
        right += result.matches[0].group_key == item["expected"]
    # bench/kb_retrieval.py, same-language held-out P@1 with the shipped weights: en 0.83, zh 0.84.
    assert right / len(items) >= 0.72


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_answers_are_right_and_frequent_enough_for_a_merchant_faq(
        demo_index: LiveFaqIndex, embedder: RememberingEmbedder, language: str) -> None:
    """The decision was calibrated on the dev paraphrases (bench/data/kb_dev_*.json), never on these."""
    items = [i for i in _heldout(language) if not i.get("faq_language")]
    rows = embedder.encode([i["question"] for i in items])
    answered = right = in_scope = 0
    for item, row in zip(items, rows, strict=True):
        result = await demo_index.search(item["question"], language=language, embedding=row)
        in_scope += bool(item["expected"])
        if result.decision == "answer":
            answered += 1
            right += bool(item["expected"]) and result.matches[0].group_key == item["expected"]
    # bench/kb_retrieval.py (held-out incl. cross-lingual): en 51 of 51 answers right, coverage 0.67;
    # zh 43 of 46, coverage 0.57.
    assert right / answered >= 0.9
    assert right / in_scope >= 0.4


async def test_out_of_scope_questions_are_not_answered(demo_index: LiveFaqIndex,
                                                       embedder: RememberingEmbedder) -> None:
    items = [i for language in ("en", "zh") for i in _heldout(language) if not i["expected"]]
    rows = embedder.encode([i["question"] for i in items])
    answered = [i["question"] for i, row in zip(items, rows, strict=True)
                if (await demo_index.search(i["question"], language=i["language"], embedding=row)).decision == "answer"]
    assert len(answered) <= 2, answered


async def test_country_scoped_entries_only_reach_that_country(demo_index: LiveFaqIndex) -> None:
    question = "Do I pay import VAT in the UK?"
    british = await demo_index.search(question, language="en", country="GB")
    german = await demo_index.search(question, language="en", country="DE")
    assert british.matches[0].group_key == "customs-uk"
    assert all(m.group_key != "customs-uk" for m in german.matches)

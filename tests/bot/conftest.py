"""Engine test fixtures: a small trained NLU (fast), the real NLU (slow), and a little shop."""
from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sqlalchemy.ext.asyncio import AsyncSession

from bot import BotDeps, HandleResult, InboundMessage, handle_inbound
from commerce.catalog import service as catalog
from commerce.catalog.schemas import CategoryIn, ProductIn, VariantIn
from commerce.cross_border import load_cross_border_defaults
from commerce.inventory import service as inventory
from kit.db import Database
from kit.settings import Settings
from nlu.catalog_terms import CatalogVocabulary
from nlu.classifier import FALLBACK_INTENT
from nlu.entities import EntityExtractor
from nlu.language import detect_language
from nlu.service import DEFAULT_DATA_DIR, IntentScore, ParseResult, with_catalog_evidence
from nlu.training_data import load_training_data
from tests.factories import make_shop

TINY_PER_INTENT = 25  # examples per intent and language: a small model trained in well under a second


class TinyParser:
    """A small trained intent model (tf-idf character n-grams + linear SVM) on a slice of the shipped data,
    with the real entity extractor and language detection; no sentence embedding."""

    def __init__(self) -> None:
        data = load_training_data([DEFAULT_DATA_DIR])
        taken: dict[tuple[str, bool], int] = {}
        texts, labels = [], []
        for example in data.examples:
            key = (example.intent, "zh" in example.source)
            if taken.get(key, 0) < TINY_PER_INTENT:
                taken[key] = taken.get(key, 0) + 1
                texts.append(example.text)
                labels.append(example.intent)
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        self.model = LinearSVC(C=1.0).fit(self.vectorizer.fit_transform(texts), labels)
        self.extractor = EntityExtractor(data)
        self.threshold = 0.3
        self.vocabulary: CatalogVocabulary | None = None

    def set_catalog_vocabulary(self, terms: list[str], *, names: list[str] | None = None) -> None:
        self.vocabulary = CatalogVocabulary(terms, names=names or [])

    async def parse(self, text: str) -> ParseResult:
        scores = self.model.decision_function(self.vectorizer.transform([text]))[0] * 5
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        ranking = tuple(IntentScore(str(self.model.classes_[i]), float(probs[i])) for i in order[:10])
        intent, confidence = ranking[0].name, ranking[0].confidence
        if confidence < self.threshold:
            intent = FALLBACK_INTENT
        language = detect_language(text)
        result = ParseResult(text=text, intent=intent, confidence=confidence, intent_ranking=ranking,
                             entities=tuple(self.extractor.extract(text, language=language)), language=language,
                             embedding=np.zeros(0, np.float32), out_of_scope=intent == FALLBACK_INTENT)
        if self.vocabulary is None:
            return result
        return with_catalog_evidence(result, self.vocabulary.evidence(text), labels=self.model.classes_)


@pytest.fixture(scope="session")
def tiny_parser() -> TinyParser:
    return TinyParser()


@pytest.fixture
def bot_deps(tiny_parser: TinyParser, tmp_path: Path) -> BotDeps:
    return BotDeps(settings=Settings(data_dir=tmp_path), nlu=tiny_parser)


async def make_bot_shop(session: AsyncSession) -> None:
    """Two warehouses, the sales channels, a kettle, a teapot, a hoodie in sizes and colours; cross-border rules."""
    await make_shop(session)
    await catalog.create_category(session, data=CategoryIn(slug="clothing", name={"en": "Clothing", "zh": "服装"},
                                                           hs_chapter="61"))
    products: list[dict[str, Any]] = [
        {"slug": "electric-kettle", "category": "home-kitchen", "price": "49.90",
         "title": {"en": "Electric Kettle 1.7 L", "zh": "电热水壶 1.7升"}, "tags": ["kettle", "tea"],
         "variants": [("KET-1", {"colour": "black"}, {"RTM": 10})]},
        {"slug": "glass-teapot", "category": "home-kitchen", "price": "24.00",
         "title": {"en": "Glass Teapot", "zh": "玻璃茶壶"}, "tags": ["teapot", "tea"],
         "variants": [("POT-1", {}, {"SZX": 5})]},
        {"slug": "cotton-hoodie", "category": "clothing", "price": "39.00",
         "title": {"en": "Cotton Hoodie", "zh": "纯棉连帽卫衣"}, "tags": ["hoodie", "sweatshirt"],
         "variants": [("HOOD-BLK-M", {"colour": "black", "size": "M"}, {"RTM": 3}),
                      ("HOOD-BLK-L", {"colour": "black", "size": "L"}, {"RTM": 0}),
                      ("HOOD-RED-L", {"colour": "red", "size": "L"}, {"RTM": 2})]},
        {"slug": "sold-out-kettle", "category": "home-kitchen", "price": "19.00",
         "title": {"en": "Travel Kettle", "zh": "旅行水壶"}, "tags": ["kettle"],
         "variants": [("KET-TRAVEL", {}, {"RTM": 0})]},
    ]
    for spec in products:
        await catalog.create_product(session, data=ProductIn(
            slug=spec["slug"], category=spec["category"], title=spec["title"],
            description={"en": f"A {spec['title']['en'].lower()}.", "zh": spec["title"]["zh"]},
            tags=spec["tags"], base_price=Decimal(spec["price"]), currency="EUR",
            variants=[VariantIn(sku=sku, attributes=attributes) for sku, attributes, _ in spec["variants"]]))
        for sku, _, stock in spec["variants"]:
            for location, quantity in stock.items():
                await inventory.set_stock(session, sku=sku, location=location, on_hand=quantity)
    await load_cross_border_defaults(session)


Say = Callable[..., Awaitable[HandleResult]]


@pytest.fixture
async def shop(db: Database) -> Database:
    async with db.unit_of_work() as session:
        await make_bot_shop(session)
    return db


_ids = itertools.count(1)


@pytest.fixture
def say(shop: Database, bot_deps: BotDeps) -> Say:
    """Send one message as a shopper (own transaction, like a channel) and get the engine's result."""

    async def send(text: str | None = None, *, sender: str = "5001", channel: str = "telegram",
                   kind: str = "text", payload: str | None = None, message_id: str | None = None,
                   locale_hint: str | None = None, deps: BotDeps | None = None) -> HandleResult:
        inbound = InboundMessage(channel=channel, sender_id=sender, message_id=message_id or f"m{next(_ids)}",
                                 kind=kind, text=text, payload=payload, locale_hint=locale_hint)
        async with shop.unit_of_work() as session:
            return await handle_inbound(session, inbound, deps=deps or bot_deps)

    return send


def texts(result: HandleResult) -> str:
    return "\n".join(reply.text for reply in result.replies)


def payloads(result: HandleResult) -> list[str]:
    out = [b.payload or "" for r in result.replies for b in r.buttons]
    out += [b.payload or "" for r in result.replies for c in r.cards for b in c.buttons]
    return out


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-models")

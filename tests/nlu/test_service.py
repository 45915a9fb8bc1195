from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from nlu.embedder import Embedder, get_embedder
from nlu.errors import TrainingDataError
from nlu.service import NluService

pytestmark = pytest.mark.slow  # loads the real encoders (MiniLM + USE)

DATA = Path(__file__).parent / "data"


async def test_english_and_chinese_messages_get_intent_entities_language(tiny_service: NluService) -> None:
    english = await tiny_service.parse("where is my order #10023?")
    assert (english.intent, english.language, english.out_of_scope) == ("order_status", "en", False)
    assert english.confidence > 0.5
    assert [(e.entity, e.value) for e in english.entities] == [("order_number", "10023")]

    chinese = await tiny_service.parse("我想退货，东西坏了")
    assert (chinese.intent, chinese.language) == ("return_refund", "zh")

    search = await tiny_service.parse("有没有蓝色的卫衣")
    assert search.intent == "product_search"
    assert [(e.entity, e.value) for e in search.entities] == [("colour", "blue"), ("product", "卫衣")]


async def test_rasa_response_shape(tiny_service: NluService) -> None:
    result = await tiny_service.parse("do you sell red hoodies under $50?")
    body = result.to_rasa()
    assert set(body) == {"text", "intent", "intent_ranking", "entities", "language"}
    assert body["intent"]["name"] == "product_search"
    assert body["intent_ranking"][0] == body["intent"]
    assert abs(sum(r["confidence"] for r in body["intent_ranking"]) - 1.0) < 1e-3
    assert {"entity": "money", "start": 30, "end": 33, "value": {"amount": "50", "currency": "USD"},
            "confidence": 1.0, "extractor": "RegexEntityExtractor"} in body["entities"]
    with_embedding = result.to_rasa(include_embedding=True)
    assert len(with_embedding["embedding"]) == Embedder.dim
    assert result.embedding.shape == (Embedder.dim,)
    assert abs(float(np.linalg.norm(result.embedding)) - 1.0) < 1e-4


async def test_out_of_scope_messages_are_flagged(tiny_service: NluService) -> None:
    for text in ("what's the weather like tomorrow?", "给我讲个笑话吧"):
        result = await tiny_service.parse(text)
        assert result.out_of_scope, (text, result.intent, result.confidence)
        assert result.intent in ("out_of_scope", "nlu_fallback")


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "😀🎉👍", "x" * 10_000, "我想买 iPhone 15 的 case, ship to Germany 🇩🇪", "\u200b\u0000",
     "🙂" * 3000],
)
async def test_odd_input_parses_without_error(tiny_service: NluService, text: str) -> None:
    result = await tiny_service.parse(text)
    assert result.text == text
    assert 0.0 <= result.confidence <= 1.0
    assert result.language in ("en", "zh")
    for entity in result.entities:
        assert 0 <= entity.start < entity.end <= len(text)
        assert text[entity.start:entity.end] == entity.text


async def test_empty_message_is_the_fallback(tiny_service: NluService) -> None:
    result = await tiny_service.parse("  ")
    assert (result.intent, result.confidence, result.out_of_scope) == ("nlu_fallback", 0.0, True)


async def test_long_message_offsets_point_at_the_entity(tiny_service: NluService) -> None:
    text = "hello " * 1500 + "my order #20987 is late"
    result = await tiny_service.parse(text)
    (order,) = [e for e in result.entities if e.entity == "order_number"]
    assert text[order.start:order.end] == "#20987"


async def test_concurrent_parses_share_forward_passes(tiny_service: NluService) -> None:
    embedder = tiny_service.embedder
    texts = [f"where is my order #{10000 + i}" for i in range(32)]
    before = embedder.micro_batches
    results = await asyncio.gather(*(tiny_service.parse(t) for t in texts))
    assert embedder.micro_batches - before < len(texts) / 2
    assert [r.intent for r in results] == ["order_status"] * len(texts)
    alone = embedder.encode([texts[5]])[0]
    assert float(alone @ results[5].embedding) > 0.999


def test_model_is_saved_as_versioned_artifact_and_loads(tiny_service: NluService, tmp_path: Path) -> None:
    model = tiny_service.model
    assert model is not None
    folder = tiny_service.models_dir / f"nlu-{model.version}"
    assert {p.name for p in folder.iterdir()} == {"classifier.pkl", "entities.json", "meta.json"}
    fresh = NluService(models_dir=tiny_service.models_dir, embedder=tiny_service.embedder)
    loaded = fresh.load()
    assert loaded.version == model.version
    before = tiny_service.parse_sync("can I send it back for a refund")
    after = fresh.parse_sync("can I send it back for a refund")
    assert (after.intent, round(after.confidence, 6)) == (before.intent, round(before.confidence, 6))
    assert fresh.parse_sync("use SAVE10 with Globex").entity_values("brand") == ["Globex"]


def test_malformed_training_data_is_refused_and_the_model_keeps_serving(tiny_service: NluService) -> None:
    model = tiny_service.model
    assert model is not None
    with pytest.raises(TrainingDataError, match=r"broken_annotation.yml:6: .*not valid JSON"):
        tiny_service.train(data_paths=[DATA / "broken_annotation.yml"])
    assert tiny_service.model is model
    assert tiny_service.parse_sync("hello there").intent == "greet"


def test_runtime_product_lookup(tiny_service: NluService) -> None:
    tiny_service.set_lookup("product", ["Alpine Rain Jacket"])
    result = tiny_service.parse_sync("is the alpine rain jacket waterproof?")
    assert result.entity_values("product") == ["Alpine Rain Jacket"]


def test_multilingual_part_makes_chinese_and_english_comparable() -> None:
    embedder = get_embedder()
    rows = embedder.encode(["where is my parcel", "我的包裹在哪里", "I would like a red dress"])
    assert rows.dtype == np.float32
    assert rows.shape == (3, Embedder.dim)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    use = Embedder.multilingual_part(rows)
    assert float(use[0] @ use[1]) > float(use[1] @ use[2]) + 0.2
    alone = embedder.encode_multilingual(["where is my parcel"])
    assert float(alone[0] @ use[0]) > 0.999

"""The fast paths of parsing give the same answers as the slow references they replace."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nlu.classifier import IntentClassifier
from nlu.embedder import Embedder, get_embedder
from nlu.model import EmbeddingCache
from nlu.service import NluService

ODD = ["where is my order #10023?", "我想退货，东西坏了", "", "   ", "😀🎉", "x" * 3000, "SAVE10 für 3 Stück?"]


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
def test_fast_scores_equal_sklearn(tiny_service: NluService) -> None:
    model = tiny_service.model
    assert model is not None
    rows = tiny_service.embedder.encode(ODD)
    fast_dense, fast_lexical = model.classifier.score_parts(rows, ODD)
    slow_dense, slow_lexical = model.classifier.score_parts_sklearn(rows, ODD)
    assert fast_lexical is not None
    assert slow_lexical is not None
    assert np.allclose(fast_dense, slow_dense, atol=1e-9)
    assert np.allclose(fast_lexical, slow_lexical, atol=1e-9)


def test_fast_scores_equal_sklearn_for_two_intents() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(40, 8)).astype(np.float32)
    texts = [f"hello number {i}" if i % 2 else f"bye {i} now" for i in range(40)]
    labels = ["greet" if i % 2 else "goodbye" for i in range(40)]
    classifier = IntentClassifier()
    classifier.fit(rows, texts, labels)
    fast = classifier.score_parts(rows, texts)
    slow = classifier.score_parts_sklearn(rows, texts)
    assert fast[0].shape == (40, 2)
    assert np.allclose(fast[0], slow[0], atol=1e-9)
    assert fast[1] is not None
    assert slow[1] is not None
    assert np.allclose(fast[1], slow[1], atol=1e-9)


def test_language_thresholds_are_chosen_per_language() -> None:
    classifier = IntentClassifier(labels=["a", "b", "out_of_scope"])
    # English: right answers are sure (0.9), out-of-scope rows unsure (0.5): a threshold between helps.
    # Chinese: everything is less sure; right answers 0.6, out-of-scope rows 0.35.
    rows: list[tuple[list[float], str, str]] = []
    rows += [([0.9, 0.05, 0.05], "a", "en"), ([0.6, 0.3, 0.1], "a", "zh")] * 30
    rows += [([0.5, 0.4, 0.1], "out_of_scope", "en"), ([0.35, 0.33, 0.32], "out_of_scope", "zh")] * 6
    rows.append(([0.2, 0.4, 0.4], "b", "ko"))
    probs = [row[0] for row in rows]
    labels = [row[1] for row in rows]
    languages = [row[2] for row in rows]
    matrix = np.array(probs)
    shared = classifier.choose_threshold(matrix, labels, oos_labels=frozenset({"out_of_scope"}))
    chosen = classifier.choose_language_thresholds(matrix, labels, languages, oos_labels=frozenset({"out_of_scope"}))
    assert set(chosen) == {"en", "zh"}  # too few Korean rows: the shared threshold
    assert 0.5 < chosen["en"] <= 0.9
    assert 0.35 < chosen["zh"] <= 0.6
    assert classifier.threshold == shared
    assert classifier.threshold_for("ko") == shared
    restored = IntentClassifier.from_state(classifier.state())
    assert restored.thresholds == chosen


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
def test_trained_model_keeps_language_thresholds(tiny_service: NluService) -> None:
    model = tiny_service.model
    assert model is not None
    validation = model.metrics["validation"]
    assert set(validation["thresholds_by_language"]) == set(model.classifier.thresholds)
    for language, value in model.classifier.thresholds.items():
        assert 0.0 <= value <= 1.0
        assert model.classifier.threshold_for(language) == value


def test_embedding_cache_is_keyed_by_encoder(tmp_path: pytest.TempPathFactory) -> None:
    assert EmbeddingCache._key("hi", "minilm-fp32+use3") != EmbeddingCache._key("hi", "minilm-int8+use3")


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown embedder backend"):
        Embedder(backend="tensorflow")


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
def test_large_batches_split_over_workers_give_the_same_rows() -> None:
    embedder = get_embedder()
    texts = [f"do you ship order {i} to Germany?" if i % 2 else f"第{i}号订单能寄到德国吗" for i in range(300)]
    split = embedder.encode(texts)
    single = Embedder(workers=1, backend=embedder.backend)
    single._minilm, single._use = embedder._minilm, embedder._use  # share the loaded encoders
    assert np.allclose(split, single.encode(texts), atol=1e-6)


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_concurrent_passes_run_on_both_workers() -> None:
    embedder = get_embedder()
    if embedder.workers < 2:
        pytest.skip("one core: one worker")
    texts = [f"where is my parcel number {i}" for i in range(64)]
    before = embedder.micro_batches
    rows = await asyncio.gather(*(embedder.embed(t) for t in texts))
    # 64 waiting texts and two idle workers: split in (at least) two passes, not one pass of 64.
    assert embedder.micro_batches - before >= 2
    assert np.allclose(np.stack(rows), embedder.encode(texts), atol=1e-5)


async def test_a_second_pass_waits_for_enough_texts_or_the_spread_deadline() -> None:
    from nlu.embedder import _MicroBatcher, _Request

    loop = asyncio.get_running_loop()
    batcher = _MicroBatcher(Embedder(workers=2, processes=0))
    batcher._queue.append(_Request(["where is my parcel"], loop.create_future()))
    assert batcher._hold_for() is None  # nothing running: a lone message goes at once
    running = loop.create_task(asyncio.sleep(10))
    batcher._running.add(running)
    try:
        hold = batcher._hold_for()  # a pass runs: one text waits for it (or for the deadline)
        assert hold is not None
        assert 0 < hold <= _MicroBatcher.SPREAD_WAIT_S
        batcher._queue[0].queued_at -= _MicroBatcher.SPREAD_WAIT_S
        assert batcher._hold_for() is None  # waited long enough: the free worker takes it
        batcher._queue[0].queued_at += _MicroBatcher.SPREAD_WAIT_S
        batcher._queue.append(_Request([f"text {i}" for i in range(_MicroBatcher.SPREAD_TEXTS)],
                                       loop.create_future()))
        assert batcher._hold_for() is None  # enough texts for a pass of their own
    finally:
        running.cancel()

"""The language-aware mix of the classifier's heads: an English-only assistant understands Chinese through the
multilingual (USE) heads; the mix survives a save; the benchmark measures the served classifier."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.embedder import Embedder, get_embedder
from nlu.model import NluModel, train_model
from nlu.service import NluService
from nlu.training_data import Example, TrainingData

pytestmark = pytest.mark.slow  # the real encoders (MiniLM + USE)

REPO = Path(__file__).resolve().parents[2]
ENGLISH = {
    "greet": ["hello", "hi there", "good morning", "hey", "hello, anyone there?", "hi, good evening",
              "greetings", "hey there, how are you"],
    "goodbye": ["bye", "goodbye", "see you later", "bye for now", "talk to you later", "have a nice day, bye",
                "that's all, goodbye", "see you soon"],
    "thanks": ["thanks", "thank you", "thanks a lot", "many thanks", "thank you so much", "I appreciate it",
               "cheers, thanks", "thanks for your help"],
    "order_status": ["where is my order", "has my order shipped yet", "when will my package arrive",
                     "track my order", "my parcel has not arrived", "what is the status of my order",
                     "is my order on the way", "where is my delivery"],
    "refund": ["I want a refund", "can I get my money back", "please refund me", "I want to return this",
               "how do I return an item", "the item is broken, I want a refund", "refund my purchase",
               "send my money back"],
    "shipping_cost": ["how much is shipping", "what does delivery cost", "is shipping free",
                      "shipping fee to Germany", "how much do you charge for delivery", "postage cost",
                      "do I pay for shipping", "delivery charges"],
}
CHINESE = [("你好", "greet"), ("早上好", "greet"), ("再见", "goodbye"), ("回头见", "goodbye"),
           ("谢谢你", "thanks"), ("非常感谢", "thanks"), ("我的订单在哪里", "order_status"),
           ("我的包裹什么时候到", "order_status"), ("我要退款", "refund"), ("我想退货退钱", "refund"),
           ("运费多少钱", "shipping_cost"), ("包邮吗", "shipping_cost")]


def _english() -> tuple[list[str], list[str]]:
    texts = [text for examples in ENGLISH.values() for text in examples]
    labels = [intent for intent, examples in ENGLISH.items() for _ in examples]
    return texts, labels


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def _zh_right(classifier: IntentClassifier, rows: np.ndarray) -> tuple[float, float]:
    """Share of the Chinese messages given their intent, and the mean probability of the right intent."""
    texts = [text for text, _ in CHINESE]
    probs = classifier.predict_proba(rows, texts)
    right = [classifier.labels.index(truth) for _, truth in CHINESE]
    return (float(np.mean(probs.argmax(axis=1) == right)),
            float(np.mean(probs[np.arange(len(right)), right])))


def test_english_only_training_understands_chinese_through_the_multilingual_heads(embedder: Embedder) -> None:
    texts, labels = _english()
    rows = embedder.encode(texts)
    served = IntentClassifier(config=ClassifierConfig())
    served.fit(rows, texts, labels)
    assert served.language_counts == {"en": len(texts)}
    assert list(served.full_head_weights(["en", "zh", "ja"])) == [1.0, 0.0, 0.0]
    # the mix without the multilingual heads: MiniLM and the English n-grams read Chinese as noise
    old = IntentClassifier(config=dataclasses.replace(ClassifierConfig(), multilingual_c=0.0))
    old.fit(rows, texts, labels)
    zh_rows = embedder.encode([text for text, _ in CHINESE])
    (new_accuracy, new_probability), (_, old_probability) = _zh_right(served, zh_rows), _zh_right(old, zh_rows)
    assert new_accuracy >= 11 / 12, new_accuracy
    assert new_probability >= old_probability + 0.1, (new_probability, old_probability)
    # Chinese is scored from the USE columns alone: noise in the MiniLM columns changes nothing
    noisy = zh_rows.copy()
    noisy[:, :384] = np.random.default_rng(0).normal(size=(len(noisy), 384)).astype(np.float32) * 0.05
    zh_texts = [text for text, _ in CHINESE]
    assert np.allclose(served.decision_scores(noisy, zh_texts), served.decision_scores(zh_rows, zh_texts))
    assert not np.allclose(old.decision_scores(noisy, zh_texts), old.decision_scores(zh_rows, zh_texts))
    # English is scored by the full heads exactly as without the mix
    english = ["where is my parcel", "thank you very much", "how much is delivery"]
    english_rows = embedder.encode(english)
    assert np.array_equal(served.decision_scores(english_rows, english), served.full_scores(english_rows, english))


def test_a_language_with_few_examples_slides_towards_the_multilingual_heads(embedder: Embedder) -> None:
    texts, labels = _english()
    # one Chinese example per intent: 1 of the 3 per intent that the full heads need
    texts += ["嗨", "拜拜", "多谢", "查一下订单", "退款", "运费"]
    labels += list(ENGLISH)
    classifier = IntentClassifier(config=ClassifierConfig())
    classifier.fit(embedder.encode(texts), texts, labels)
    weight = classifier.full_head_weights(["zh"])[0]
    assert weight == pytest.approx(1 / 3)
    probe = ["包邮吗"]
    rows = embedder.encode(probe)
    full, multi = classifier.full_scores(rows, probe), classifier.multilingual_scores(rows)
    assert multi is not None
    assert np.allclose(classifier.decision_scores(rows, probe), weight * full + (1 - weight) * multi)


def test_the_mix_survives_save_and_load_and_old_artifacts_still_score(embedder: Embedder, tmp_path: Path) -> None:
    texts, labels = _english()
    data = TrainingData(examples=[Example(text=t, intent=i) for t, i in zip(texts, labels, strict=True)])
    model = train_model(data, embedder=embedder)
    # what every shop model and Rasa import trains (the small set keeps the settings without MLPs)
    assert model.classifier.config == ClassifierConfig().resolved_for(len(texts), len(ENGLISH))
    assert not model.classifier.state()["mlps"]
    folder = model.save(tmp_path)
    loaded = NluModel.load(folder)
    probe = [text for text, _ in CHINESE] + ["where is my order"]
    rows = embedder.encode(probe)
    assert np.array_equal(loaded.classifier.predict_proba(rows, probe), model.classifier.predict_proba(rows, probe))
    assert loaded.classifier.language_counts == {"en": len(texts)}
    # an artifact written before the mix (no multilingual keys) loads and scores with its full heads
    state = {k: v for k, v in model.classifier.state().items()
             if k not in ("language_counts", "multi_linear", "multi_mlps")}
    old = IntentClassifier.from_state(state)
    assert old.multilingual_scores(rows) is None
    assert np.array_equal(old.decision_scores(rows, probe), model.classifier.full_scores(rows, probe))


def test_the_benchmark_measures_the_served_classifier(embedder: Embedder, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import nlu_public  # type: ignore[import-not-found]  # bench/, put on the path just above

    assert nlu_public.served_config() == ClassifierConfig()
    source = (REPO / "bench" / "nlu_public.py").read_text(encoding="utf-8")
    assert "train_mlp" not in source
    assert "massive_ensemble" not in source
    # a tiny MASSIVE-format set: the bench's figures are the service's own parses of a served model
    texts, labels = _english()
    folder = tmp_path / "massive"
    folder.mkdir()
    rows = [json.dumps({"id": i, "text": t, "intent": label}) for i, (t, label) in enumerate(zip(texts, labels,
                                                                                           strict=True))]
    (folder / "en-US.train.jsonl").write_text("\n".join(rows), encoding="utf-8")
    dev = [("hi, is anyone there", "greet"), ("cheers", "thanks"), ("where's my stuff", "order_status"),
           ("how much for postage", "shipping_cost")]
    (folder / "en-US.dev.jsonl").write_text("\n".join(json.dumps({"id": i, "text": t, "intent": label})
                                                      for i, (t, label) in enumerate(dev)), encoding="utf-8")
    (folder / "zh-CN.dev.jsonl").write_text("\n".join(json.dumps({"id": i, "text": t, "intent": label})
                                                      for i, (t, label) in enumerate(CHINESE)), encoding="utf-8")
    (folder / "zh-CN.train.jsonl").write_text("", encoding="utf-8")
    monkeypatch.setattr(nlu_public, "CACHE_DIR", tmp_path / "cache")
    result = nlu_public.bench_massive_zero_shot(tmp_path, None)
    english = IntentClassifier(config=ClassifierConfig())
    english.fit(embedder.encode(texts), texts, labels)
    service = NluService(models_dir=tmp_path / "models", data_paths=[], embedder=embedder)
    parsed = service.classify(NluModel(version="t", classifier=english, entity_data=TrainingData()),
                              [t for t, _ in CHINESE], embedder.encode([t for t, _ in CHINESE]))
    expected = round(100.0 * float(np.mean([p.intent == truth for p, (_, truth) in zip(parsed, CHINESE,
                                                                                        strict=True)])), 2)
    assert result["dev_accuracy"] == expected
    assert expected >= 100.0 * 11 / 12

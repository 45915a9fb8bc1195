"""Evaluate a model on held-out Rasa YAML: intent accuracy, out-of-scope recall, entity span F1."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.classifier import OUT_OF_SCOPE_INTENT
from nlu.service import NluService, ParseResult
from nlu.training_data import Example, TrainingData


@dataclass(frozen=True)
class Mistake:
    text: str
    expected: str
    predicted: str
    confidence: float


def evaluate(service: NluService, data: TrainingData, *,
             embeddings: npt.NDArray[np.float32] | None = None) -> dict[str, Any]:
    """Scores of the active model on `data` (the model never saw it)."""
    model = service.ensure_model()
    examples = data.examples
    texts = [example.text for example in examples]
    vectors = service.embedder.encode(texts) if embeddings is None else embeddings
    results = service.classify(model, texts, vectors)
    return score(examples, results) | {"model_version": model.version}


def score(examples: list[Example], results: list[ParseResult]) -> dict[str, Any]:
    in_scope = [(e, r) for e, r in zip(examples, results, strict=True) if e.intent != OUT_OF_SCOPE_INTENT]
    oos = [(e, r) for e, r in zip(examples, results, strict=True) if e.intent == OUT_OF_SCOPE_INTENT]
    by_language: dict[str, list[bool]] = {}
    for example, result in in_scope:
        by_language.setdefault(result.language, []).append(result.intent == example.intent)
    oos_by_language: dict[str, list[bool]] = {}
    for _, result in oos:
        oos_by_language.setdefault(result.language, []).append(result.out_of_scope)
    mistakes = [Mistake(e.text, e.intent, r.intent, round(r.confidence, 3))
                for e, r in zip(examples, results, strict=True)
                if (r.out_of_scope if e.intent == OUT_OF_SCOPE_INTENT else r.intent != e.intent)]
    correct_all = [(r.out_of_scope if e.intent == OUT_OF_SCOPE_INTENT else r.intent == e.intent)
                   for e, r in zip(examples, results, strict=True)]
    return {
        "examples": len(examples),
        "accuracy": _mean(correct_all),
        "in_scope_accuracy": _mean([r.intent == e.intent for e, r in in_scope]),
        "oos_recall": _mean([r.out_of_scope for _, r in oos]),
        "in_scope_rejected": _mean([r.out_of_scope for _, r in in_scope]),
        "accuracy_by_language": {k: _mean(v) for k, v in sorted(by_language.items())},
        "oos_recall_by_language": {k: _mean(v) for k, v in sorted(oos_by_language.items())},
        "entities": entity_scores(examples, results),
        "mistakes": [m.__dict__ for m in mistakes[:50]],
    }


def entity_scores(examples: list[Example], results: list[ParseResult]) -> dict[str, Any]:
    """Exact span matches (entity, start, end), micro-averaged and per entity."""
    true_positive: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for example, result in zip(examples, results, strict=True):
        gold = {(a.entity, a.start, a.end) for a in example.entities}
        guessed = {(e.entity, e.start, e.end) for e in result.entities}
        for name, _, _ in gold:
            expected[name] += 1
        for name, _, _ in guessed:
            found[name] += 1
        for name, _, _ in gold & guessed:
            true_positive[name] += 1
    per_entity = {name: _prf(true_positive[name], found[name], expected[name]) for name in sorted(expected)}
    return {"micro": _prf(sum(true_positive.values()), sum(found.values()), sum(expected.values())),
            "per_entity": per_entity}


def _prf(tp: int, found: int, expected: int) -> dict[str, float | int | None]:
    precision = tp / found if found else None
    recall = tp / expected if expected else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else None)
    return {"precision": _round(precision), "recall": _round(recall), "f1": _round(f1), "support": expected}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _mean(values: list[bool]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None

"""The intent classifier's optional MLPs: they learn, score the same on every path, and survive a save."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from nlu.classifier import ClassifierConfig, IntentClassifier, mlp_logits, train_mlp

MLP = ClassifierConfig(mlp_hidden=32, mlp_seeds=2, mlp_epochs=30, mlp_batch=16, embedding_weight=0.5,
                       analyzer="char", ngram_range=(1, 3))


def _blobs(seed: int, per_class: int = 30) -> tuple[np.ndarray, list[str], list[str]]:
    """Three intents as noisy unit vectors around three centres (the embeddings' shape: unit rows)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 3.0
    rows, texts, labels = [], [], []
    for k, name in enumerate(["greet", "goodbye", "thanks"]):
        for i in range(per_class):
            rows.append(centres[k] + rng.normal(size=16))
            texts.append(f"{name} {i}")
            labels.append(name)
    matrix = np.array(rows)
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32), texts, labels


def test_mlp_logits_equal_torch_forward() -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(5, 16))
    weights = train_mlp(rows, np.array([0, 1, 2, 0, 1]), 3, hidden=8, epochs=2, batch=4, seed=0)
    w1, b1, w2, b2 = (torch.tensor(w) for w in weights)
    hidden = torch.nn.functional.gelu(torch.tensor(rows) * (np.sqrt(2.0) * 4.0) @ w1 + b1, approximate="tanh")
    assert np.allclose(mlp_logits(weights, rows), (hidden @ w2 + b2).numpy(), atol=1e-9)


def test_mlp_fits_are_reproducible_when_run_concurrently() -> None:
    threads = torch.get_num_threads()
    rows, _, labels = _blobs(0)
    targets = np.array([["greet", "goodbye", "thanks"].index(label) for label in labels])

    def fit(seed: int) -> tuple[np.ndarray, ...]:
        return train_mlp(rows.astype(np.float64), targets, 3, hidden=16, epochs=5, batch=8, seed=seed)

    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(fit, [0, 0, 1]))
    alone = fit(0)
    assert all(np.array_equal(a, b) for a, b in zip(together[0], alone, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(together[1], alone, strict=True))
    assert not np.array_equal(together[2][0], alone[0])  # another seed, other weights
    assert torch.get_num_threads() == threads  # fits run on one torch thread, then give the others back


def test_classifier_with_mlps_learns_and_round_trips() -> None:
    rows, texts, labels = _blobs(0)
    classifier = IntentClassifier(config=MLP)
    classifier.fit(rows, texts, labels)
    assert len(classifier.state()["mlps"]) == 2
    test_rows, test_texts, test_labels = _blobs(1, per_class=20)
    probs = classifier.predict_proba(test_rows, test_texts)
    accuracy = np.mean([classifier.labels[i] == label for i, label in zip(probs.argmax(axis=1), test_labels,
                                                                           strict=True)])
    assert accuracy > 0.9
    fast = classifier.score_parts(test_rows, test_texts)
    slow = classifier.score_parts_sklearn(test_rows, test_texts)
    assert np.allclose(fast[0], slow[0], atol=1e-9)
    assert fast[1] is not None
    assert slow[1] is not None
    assert np.allclose(fast[1], slow[1], atol=1e-9)
    loaded = IntentClassifier.from_state(classifier.state())
    assert np.array_equal(loaded.predict_proba(test_rows, test_texts), probs)


def test_mlp_scores_join_the_embedding_side_with_their_weights() -> None:
    rows, texts, labels = _blobs(0)
    classifier = IntentClassifier(config=MLP)
    classifier.fit(rows, texts, labels)
    dense, _ = classifier.score_parts(rows, texts)
    linear = IntentClassifier.from_state({**classifier.state(), "mlps": [],
                                          "config": dataclasses.replace(MLP, embedding_weight=1.0)})
    linear_dense, _ = linear.score_parts(rows, texts)
    mlp = np.mean([mlp_logits(w, rows.astype(np.float64)) for w in classifier.state()["mlps"]], axis=0)
    assert np.allclose(dense, 0.5 * linear_dense + MLP.mlp_weight * mlp, atol=1e-9)


def test_without_mlps_nothing_changes() -> None:
    rows, texts, labels = _blobs(0)
    classifier = IntentClassifier()
    classifier.fit(rows, texts, labels)
    assert classifier.state()["mlps"] == []
    assert IntentClassifier.from_state({k: v for k, v in classifier.state().items() if k != "mlps"})._mlps == []

"""Intent classifier on sentence embeddings + character n-gram TF-IDF, with calibrated confidences.

Out-of-scope rejection: a message whose calibrated top confidence is below `threshold` (chosen on
validation data with Larson's rule) is out of scope, as is one whose top intent is `out_of_scope`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

OUT_OF_SCOPE_INTENT = "out_of_scope"
FALLBACK_INTENT = "nlu_fallback"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClassifierConfig:
    c: float = 10.0
    embedding_weight: float = 1.0
    # 0 disables the TF-IDF block.
    tfidf_weight: float = 0.5
    ngram_range: tuple[int, int] = (1, 4)
    max_features: int = 200_000
    max_iter: int = 300
    solver: str = "lbfgs"


def _softmax(scores: FloatArray) -> FloatArray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


@dataclass
class IntentClassifier:
    config: ClassifierConfig = field(default_factory=ClassifierConfig)
    labels: list[str] = field(default_factory=list)
    temperature: float = 1.0
    threshold: float = 0.0
    margin: float = 0.1
    _model: Any = None
    _tfidf: Any = None

    # ---------- features ----------
    def _features(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str], *, fit: bool) -> Any:
        dense = np.asarray(embeddings, dtype=np.float64) * self.config.embedding_weight
        if self.config.tfidf_weight <= 0:
            return dense
        if fit:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._tfidf = TfidfVectorizer(
                analyzer="char_wb", ngram_range=self.config.ngram_range, lowercase=True, sublinear_tf=True,
                min_df=1, max_features=self.config.max_features, dtype=np.float64,
            )
            lexical = self._tfidf.fit_transform([t[:1000] for t in texts])
        else:
            lexical = self._tfidf.transform([t[:1000] for t in texts])
        return sparse.hstack([sparse.csr_matrix(dense), lexical * self.config.tfidf_weight], format="csr")

    # ---------- training ----------
    def fit(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str], labels: Sequence[str]) -> None:
        from sklearn.linear_model import LogisticRegression

        features = self._features(embeddings, texts, fit=True)
        model = LogisticRegression(C=self.config.c, max_iter=self.config.max_iter, solver=self.config.solver)
        model.fit(features, list(labels))
        self._model = model
        self.labels = [str(label) for label in model.classes_]

    # ---------- inference ----------
    def decision_scores(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str]) -> FloatArray:
        features = self._features(embeddings, texts, fit=False)
        scores: FloatArray = np.asarray(self._model.decision_function(features), dtype=np.float64)
        if scores.ndim == 1:  # two classes
            scores = np.stack([-scores, scores], axis=1) / 2.0
        return scores

    def predict_proba(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str]) -> FloatArray:
        return _softmax(self.decision_scores(embeddings, texts) / self.temperature)

    # ---------- calibration on validation data ----------
    def calibrate_temperature(self, scores: FloatArray, labels: Sequence[str]) -> float:
        """Temperature minimising the negative log-likelihood of in-scope validation labels."""
        index = {label: i for i, label in enumerate(self.labels)}
        rows = [(i, index[label]) for i, label in enumerate(labels) if label in index]
        if not rows:
            return self.temperature
        picked = np.array(rows)
        best_t, best_nll = 1.0, float("inf")
        for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 80)):
            probs = _softmax(scores[picked[:, 0]] / t)
            nll = float(-np.mean(np.log(probs[np.arange(len(picked)), picked[:, 1]] + 1e-12)))
            if nll < best_nll:
                best_t, best_nll = float(t), nll
        self.temperature = best_t
        return best_t

    def choose_threshold(self, probs: FloatArray, labels: Sequence[str], *, oos_labels: frozenset[str]) -> float:
        """Larson's rule: the threshold with the best validation accuracy, out-of-scope counted as a class."""
        top = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        predicted = np.array([self.labels[i] for i in top])
        truth = np.array(list(labels))
        truth_oos = np.isin(truth, list(oos_labels))
        predicted_oos_class = np.isin(predicted, list(oos_labels))
        candidates = np.unique(np.concatenate([[0.0], confidence]))
        best_threshold, best_accuracy = 0.0, -1.0
        for threshold in candidates:
            rejected = predicted_oos_class | (confidence < threshold)
            correct = np.where(truth_oos, rejected, (~rejected) & (predicted == truth))
            accuracy = float(correct.mean())
            if accuracy > best_accuracy + 1e-12:
                best_threshold, best_accuracy = float(threshold), accuracy
        self.threshold = best_threshold
        return best_threshold

    # ---------- persistence ----------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.config, "labels": self.labels, "temperature": self.temperature,
            "threshold": self.threshold, "margin": self.margin, "model": self._model, "tfidf": self._tfidf,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IntentClassifier:
        classifier = cls(config=state["config"], labels=list(state["labels"]),
                         temperature=float(state["temperature"]), threshold=float(state["threshold"]),
                         margin=float(state["margin"]))
        classifier._model = state["model"]
        classifier._tfidf = state["tfidf"]
        return classifier

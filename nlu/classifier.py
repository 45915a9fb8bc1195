"""Intent classifier on sentence embeddings + character n-gram TF-IDF, with calibrated confidences.

Out-of-scope rejection: a message whose calibrated top confidence is below `threshold` (chosen on
validation data with Larson's rule) is out of scope, as is one whose top intent is `out_of_scope`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.embedder import MINILM_DIM, USE_DIM
from nlu.language import detect_language

OUT_OF_SCOPE_INTENT = "out_of_scope"
FALLBACK_INTENT = "nlu_fallback"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClassifierConfig:
    c: float = 10.0
    # Weight of the logistic regression's scores on the embeddings.
    embedding_weight: float = 1.0
    # 0 disables the TF-IDF block.
    tfidf_weight: float = 2.0
    # TfidfVectorizer analyzer: "char_wb" (n-grams inside word boundaries) or "char" (across them).
    analyzer: str = "char_wb"
    ngram_range: tuple[int, int] = (1, 4)
    max_features: int = 200_000
    lexical_c: float = 1.0
    max_iter: int = 300
    solver: str = "lbfgs"
    # One-hidden-layer MLPs on the embeddings (0 hidden units: none); their mean logits join the
    # embedding-side scores with `mlp_weight`. Seeds 0..mlp_seeds-1, trained one after the other.
    mlp_hidden: int = 0
    mlp_seeds: int = 1
    mlp_epochs: int = 40
    mlp_batch: int = 64
    mlp_weight: float = 1.0
    # At most this many optimiser steps per MLP (0: no cap): epochs shrink on large training sets, so a
    # fit costs at most about mlp_max_steps x mlp_batch rows whatever the data size.
    mlp_max_steps: int = 0
    # The ensemble (issue 25: what bench/nlu_public.py's massive_ensemble measured, chosen on MASSIVE dev): a
    # training set with at least `ensemble_min_examples_per_intent` examples per intent (on average) is fitted
    # with these settings instead of the ones above: MLPs on the embeddings + `ensemble_lr_weight` x LR(C=
    # `ensemble_c`) + `ensemble_tfidf_weight` x n-gram SVM(C=`ensemble_lexical_c`). Smaller sets keep the
    # settings above (the shop model, ~99 per intent, trained 3x slower with MLPs and validated no better).
    ensemble_min_examples_per_intent: float = 120.0
    ensemble_c: float = 30.0
    ensemble_lexical_c: float = 2.0
    ensemble_lr_weight: float = 0.1
    ensemble_tfidf_weight: float = 1.0
    ensemble_mlp_hidden: int = 1024
    ensemble_mlp_seeds: int = 1
    ensemble_multilingual_mlp_seeds: int = 0
    # True once `resolved_for` has picked the settings for a training set (a fitted model's config is resolved).
    resolved: bool = False
    # Language-aware mix: heads on the multilingual (USE) columns alone, for messages in a language the
    # training data has few examples of (MiniLM is English-only; character n-grams are language-specific).
    # `multilingual_c` is the C of their logistic regression (0: no multilingual heads); the head scores are
    # `multilingual_lr_weight` x that regression + the mean logits of `multilingual_mlp_seeds` MLPs on the
    # same columns (0 seeds: the regression alone, weight 1).
    multilingual_c: float = 3.0
    multilingual_lr_weight: float = 0.0
    multilingual_mlp_seeds: int = 0
    # A message language with at least this many training examples per intent (on average) is scored by
    # the full heads; with fewer, the score slides linearly towards the multilingual heads (none: those alone).
    language_examples_per_intent: float = 3.0


    def resolved_for(self, examples: int, intents: int) -> ClassifierConfig:
        """The settings a training set of `examples` over `intents` is fitted with (see the ensemble fields)."""
        if self.resolved:
            return self
        if examples >= self.ensemble_min_examples_per_intent * max(1, intents):
            return dataclasses.replace(
                self, c=self.ensemble_c, lexical_c=self.ensemble_lexical_c, embedding_weight=self.ensemble_lr_weight,
                tfidf_weight=self.ensemble_tfidf_weight, mlp_hidden=self.ensemble_mlp_hidden,
                mlp_seeds=self.ensemble_mlp_seeds, multilingual_mlp_seeds=self.ensemble_multilingual_mlp_seeds,
                resolved=True)
        return dataclasses.replace(self, resolved=True)


_controller: Any = None


def single_threaded_blas() -> Any:
    """Linear models on a shared 2-core box run faster on one BLAS thread than fighting over two."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _two_column(scores: FloatArray) -> FloatArray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:  # a binary model gives one column
        return np.stack([-scores, scores], axis=1) / 2.0
    return scores


def _softmax(scores: FloatArray) -> FloatArray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: FloatArray = exp / exp.sum(axis=1, keepdims=True)
    return out


# One MLP's (w1, b1, w2, b2) as float64 arrays: logits = gelu(rows * MLP_INPUT_SCALE @ w1 + b1) @ w2 + b2.
MlpWeights = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
# Embedding rows have unit length (two halves of norm 1/sqrt(2)): a larger input scale suits the first layer.
MLP_INPUT_SCALE = float(np.sqrt(2.0) * 4.0)
_torch_lock = threading.Lock()
_torch_users = [0, 0]  # [fits running, torch threads before the first of them]


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Small MLP fits run faster on one torch thread; folds fitted concurrently share the setting."""
    import torch

    with _torch_lock:
        if _torch_users[0] == 0:
            _torch_users[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _torch_users[0] += 1
    try:
        yield
    finally:
        with _torch_lock:
            _torch_users[0] -= 1
            if _torch_users[0] == 0:
                torch.set_num_threads(_torch_users[1])


def _gelu(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))
    return out


def mlp_logits(weights: MlpWeights, rows: FloatArray) -> FloatArray:
    w1, b1, w2, b2 = weights
    out: FloatArray = _gelu((rows * MLP_INPUT_SCALE) @ w1 + b1) @ w2 + b2
    return out


def mlp_epochs_for(config: ClassifierConfig, rows: int) -> int:
    """`mlp_epochs`, fewer when that many would exceed `mlp_max_steps` optimiser steps (at least 1)."""
    if config.mlp_max_steps <= 0:
        return config.mlp_epochs
    batches = max(1, (rows + config.mlp_batch - 1) // config.mlp_batch)
    return max(1, min(config.mlp_epochs, config.mlp_max_steps // batches))


def multilingual_rows(rows: FloatArray) -> FloatArray:
    """The USE columns of embedder rows, as unit rows (see nlu.embedder's row layout)."""
    part = rows[:, MINILM_DIM:]
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    out: FloatArray = part / norms
    return out


def train_mlp(rows: FloatArray, targets: npt.NDArray[np.int64], classes: int, *, hidden: int, epochs: int,
              batch: int, seed: int) -> MlpWeights:
    """One hidden layer (tanh-GELU), dropout 0.1 on the inputs and 0.4 on the hidden units, label
    smoothing 0.1, AdamW with a one-cycle schedule. Every random draw comes from a generator seeded
    with `seed`, so concurrent fits stay reproducible."""
    import torch

    with _one_torch_thread():
        generator = torch.Generator().manual_seed(seed)

        def uniform(*shape: int, bound: float) -> torch.Tensor:
            return ((torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound).float()

        def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
            return x * (torch.rand(x.shape, generator=generator) >= p) / (1.0 - p)

        dim = rows.shape[1]
        params = [uniform(dim, hidden, bound=dim ** -0.5), uniform(hidden, bound=dim ** -0.5),
                  uniform(hidden, classes, bound=hidden ** -0.5), uniform(classes, bound=hidden ** -0.5)]
        for param in params:
            param.requires_grad_(True)
        w1, b1, w2, b2 = params
        inputs = torch.tensor(rows * MLP_INPUT_SCALE, dtype=torch.float32)
        labels = torch.tensor(targets, dtype=torch.int64)
        steps = max(1, epochs * ((len(labels) + batch - 1) // batch))
        optimiser = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            for start in range(0, len(labels), batch):
                chosen = order[start:start + batch]
                hidden_units = torch.nn.functional.gelu(dropout(inputs[chosen], 0.1) @ w1 + b1, approximate="tanh")
                logits = dropout(hidden_units, 0.4) @ w2 + b2
                loss = torch.nn.functional.cross_entropy(logits, labels[chosen], label_smoothing=0.1)
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                schedule.step()
        return (w1.detach().double().numpy(), b1.detach().double().numpy(),
                w2.detach().double().numpy(), b2.detach().double().numpy())


class _Scorer:
    """Linear scores of the two fitted models as plain numpy (float64, like sklearn)."""

    def __init__(self, dense_coef: FloatArray, dense_intercept: FloatArray, analyzer: Any = None,
                 vocabulary: dict[str, int] | None = None, idf: FloatArray | None = None, sublinear_tf: bool = True,
                 lexical_coef_t: FloatArray | None = None, lexical_intercept: FloatArray | None = None) -> None:
        self.dense_coef_t = np.ascontiguousarray(dense_coef.T)
        self.dense_intercept = dense_intercept
        self.analyzer = analyzer
        self.vocabulary = vocabulary or {}
        self.idf = idf
        self.sublinear_tf = sublinear_tf
        self.lexical_coef_t = lexical_coef_t
        self.lexical_intercept = lexical_intercept

    @classmethod
    def from_models(cls, dense: Any, tfidf: Any, lexical: Any) -> _Scorer:
        dense_coef = np.asarray(dense.coef_, dtype=np.float64)
        dense_intercept = np.asarray(dense.intercept_, dtype=np.float64)
        if tfidf is None or lexical is None:
            return cls(dense_coef, dense_intercept)
        if tfidf.norm != "l2" or not tfidf.use_idf:
            raise ValueError("fast scoring supports the l2-normalised idf TF-IDF the classifier trains")
        return cls(
            dense_coef, dense_intercept, analyzer=tfidf.build_analyzer(), vocabulary=dict(tfidf.vocabulary_),
            idf=np.asarray(tfidf.idf_, dtype=np.float64), sublinear_tf=bool(tfidf.sublinear_tf),
            lexical_coef_t=np.ascontiguousarray(np.asarray(lexical.coef_, dtype=np.float64).T),
            lexical_intercept=np.asarray(lexical.intercept_, dtype=np.float64),
        )

    @property
    def has_lexical(self) -> bool:
        return self.lexical_coef_t is not None

    def dense(self, rows: FloatArray) -> FloatArray:
        out: FloatArray = rows @ self.dense_coef_t + self.dense_intercept
        return out[:, 0] if out.shape[1] == 1 else out

    def lexical(self, texts: Sequence[str]) -> FloatArray:
        assert self.lexical_coef_t is not None
        assert self.lexical_intercept is not None
        assert self.idf is not None
        out = np.empty((len(texts), self.lexical_coef_t.shape[1]), dtype=np.float64)
        vocabulary = self.vocabulary
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            for gram in self.analyzer(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                out[row] = self.lexical_intercept
                continue
            columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if self.sublinear_tf:
                values = np.log(values) + 1.0
            values *= self.idf[columns]
            norm = float(np.sqrt(np.dot(values, values)))
            if norm > 0.0:
                values /= norm
            out[row] = values @ self.lexical_coef_t[columns] + self.lexical_intercept
        return out[:, 0] if out.shape[1] == 1 else out


@dataclass
class IntentClassifier:
    config: ClassifierConfig = field(default_factory=ClassifierConfig)
    labels: list[str] = field(default_factory=list)
    temperature: float = 1.0
    threshold: float = 0.0
    # Per-language rejection thresholds chosen on that language's validation examples ("zh": 0.41);
    # languages not listed use `threshold`.
    thresholds: dict[str, float] = field(default_factory=dict)
    margin: float = 0.1
    # Training examples per message language (nlu.language.detect_language): the language-aware mix.
    language_counts: dict[str, int] = field(default_factory=dict)
    _model: Any = None
    _tfidf: Any = None
    _lexical: Any = None
    _mlps: list[MlpWeights] = field(default_factory=list)
    _scorer: _Scorer | None = None
    # The multilingual heads: (coef.T, intercept) of the regression on the USE columns, and their MLPs.
    _multi_linear: tuple[FloatArray, FloatArray] | None = None
    _multi_mlps: list[MlpWeights] = field(default_factory=list)
    # Calibration of the multilingual heads on their own out-of-fold scores: their scores are multiplied by
    # `multilingual_scale` (so that / temperature gives their own temperature) and a message scored by them
    # alone is rejected below `multilingual_threshold` (None: the shared threshold).
    multilingual_scale: float = 1.0
    multilingual_threshold: float | None = None

    # ---------- training ----------
    def fit(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str], labels: Sequence[str], *,
            multilingual: bool = True) -> None:
        """Fit every head; `multilingual=False` leaves out the multilingual ones (validation folds, whose
        rows are all in the training languages)."""
        from sklearn.linear_model import LogisticRegression

        targets = list(labels)
        self.config = self.config.resolved_for(len(targets), len(set(targets)))
        self.language_counts = dict(Counter(detect_language(text) for text in texts))
        dense = LogisticRegression(C=self.config.c, max_iter=self.config.max_iter, solver=self.config.solver)
        with single_threaded_blas():
            dense.fit(np.asarray(embeddings, dtype=np.float64), targets)
        self._model = dense
        self._scorer = None
        self.labels = [str(label) for label in dense.classes_]
        self._mlps = []
        self._multi_linear = None
        self._multi_mlps = []
        config = self.config
        index = {label: i for i, label in enumerate(self.labels)}
        mlp_targets = np.array([index[str(label)] for label in targets], dtype=np.int64)
        rows = np.asarray(embeddings, dtype=np.float64)
        epochs = mlp_epochs_for(config, len(rows))
        with_mlps = config.mlp_hidden > 0
        if with_mlps and config.mlp_seeds > 0:
            self._mlps = [train_mlp(rows, mlp_targets, len(self.labels), hidden=config.mlp_hidden,
                                    epochs=epochs, batch=config.mlp_batch, seed=seed)
                          for seed in range(config.mlp_seeds)]
        if multilingual and config.multilingual_c > 0 and rows.shape[1] == MINILM_DIM + USE_DIM:
            multi_rows = multilingual_rows(rows)
            multi = LogisticRegression(C=config.multilingual_c, max_iter=config.max_iter, solver=config.solver)
            with single_threaded_blas():
                multi.fit(multi_rows, mlp_targets)
            coef = np.asarray(multi.coef_, dtype=np.float64)
            intercept = np.asarray(multi.intercept_, dtype=np.float64)
            if coef.shape[0] == 1:  # binary: one column, as sklearn's decision_function gives
                coef, intercept = np.concatenate([-coef, coef]) / 2.0, np.concatenate([-intercept, intercept]) / 2.0
            self._multi_linear = (np.ascontiguousarray(coef.T), intercept)
            if with_mlps and config.multilingual_mlp_seeds > 0:
                self._multi_mlps = [train_mlp(multi_rows, mlp_targets, len(self.labels), hidden=config.mlp_hidden,
                                              epochs=epochs, batch=config.mlp_batch, seed=seed)
                                    for seed in range(config.multilingual_mlp_seeds)]
        self._tfidf = None
        self._lexical = None
        if self.config.tfidf_weight > 0:
            from sklearn.feature_extraction.text import TfidfVectorizer

            tfidf = TfidfVectorizer(
                analyzer=self.config.analyzer, ngram_range=self.config.ngram_range, lowercase=True, sublinear_tf=True,
                min_df=1, max_features=self.config.max_features, dtype=np.float64,
            )
            lexical_features = tfidf.fit_transform([t[:1000] for t in texts])
            from sklearn.svm import LinearSVC

            # liblinear's SVM trains in a second where lbfgs logistic regression on sparse n-grams takes a minute.
            lexical = LinearSVC(C=self.config.lexical_c)
            with single_threaded_blas():
                lexical.fit(lexical_features, targets)
            self._tfidf = tfidf
            self._lexical = lexical

    # ---------- inference ----------
    def score_parts(self, embeddings: npt.NDArray[np.float32],
                    texts: Sequence[str]) -> tuple[FloatArray, FloatArray | None]:
        """Embedding-side scores (`embedding_weight` x logistic regression + `mlp_weight` x the MLPs' mean
        logits) and character n-gram scores (None without TF-IDF, not yet weighted).

        Computed from the fitted coefficients directly (``_Scorer``): the same numbers as sklearn's
        ``decision_function``/``transform`` without their per-call validation, which cost ~2 ms of
        the event loop per message."""
        scorer = self._scorer
        if scorer is None:
            scorer = self._scorer = _Scorer.from_models(self._model, self._tfidf, self._lexical)
        rows = np.asarray(embeddings, np.float64)
        dense = self._embedding_scores(_two_column(scorer.dense(rows)), rows)
        lexical = None
        if scorer.has_lexical:
            lexical = _two_column(scorer.lexical([t[:1000] for t in texts]))
        return dense, lexical

    def score_parts_sklearn(self, embeddings: npt.NDArray[np.float32],
                            texts: Sequence[str]) -> tuple[FloatArray, FloatArray | None]:
        """``score_parts`` through sklearn's own API (the reference the fast path is tested against)."""
        rows = np.asarray(embeddings, np.float64)
        with single_threaded_blas():
            dense = self._embedding_scores(_two_column(np.asarray(self._model.decision_function(rows))), rows)
            lexical = None
            if self._lexical is not None and self._tfidf is not None:
                lexical = _two_column(np.asarray(
                    self._lexical.decision_function(self._tfidf.transform([t[:1000] for t in texts]))
                ))
        return dense, lexical

    def _embedding_scores(self, linear: FloatArray, rows: FloatArray) -> FloatArray:
        out: FloatArray = self.config.embedding_weight * linear  # x 1.0 (the default) is exact
        if self._mlps:
            out = out + self.config.mlp_weight * sum(mlp_logits(w, rows) for w in self._mlps) / len(self._mlps)
        return out

    def full_scores(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str]) -> FloatArray:
        """Embedding-model scores plus weighted character n-gram model scores: the heads for a language the
        training data has (before temperature)."""
        dense, lexical = self.score_parts(embeddings, texts)
        return dense if lexical is None else dense + self.config.tfidf_weight * lexical

    def multilingual_scores(self, embeddings: npt.NDArray[np.float32]) -> FloatArray | None:
        """Scores of the heads on the multilingual columns alone (None when the model has none)."""
        if self._multi_linear is None:
            return None
        rows = multilingual_rows(np.asarray(embeddings, np.float64))
        coef_t, intercept = self._multi_linear
        linear: FloatArray = rows @ coef_t + intercept
        if not self._multi_mlps:
            return self.multilingual_scale * linear
        mlps = sum(mlp_logits(w, rows) for w in self._multi_mlps) / len(self._multi_mlps)
        out: FloatArray = self.multilingual_scale * (self.config.multilingual_lr_weight * linear + mlps)
        return out

    def full_head_weights(self, languages: Sequence[str]) -> FloatArray:
        """Per message: the weight of the full heads in its score (1: its language is well covered by the
        training data; 0: absent from it, so the multilingual heads alone decide)."""
        if self._multi_linear is None:
            return np.ones(len(languages))
        need = max(1e-9, self.config.language_examples_per_intent * max(1, len(self.labels)))
        return np.array([min(1.0, self.language_counts.get(language, 0) / need) for language in languages])

    def decision_scores(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str],
                        languages: Sequence[str] | None = None) -> FloatArray:
        """The language-aware mix of the heads (before temperature): per message, the full heads weighted by
        how well the training data covers its language (`languages`, detected when not given), the
        multilingual heads the rest."""
        full = self.full_scores(embeddings, texts)
        if self._multi_linear is None:
            return full
        if languages is None:
            languages = [detect_language(text) for text in texts]
        weights = self.full_head_weights(languages)
        if bool((weights >= 1.0).all()):
            return full
        multi = self.multilingual_scores(embeddings)
        assert multi is not None
        out: FloatArray = weights[:, None] * full + (1.0 - weights[:, None]) * multi
        return out

    def predict_proba(self, embeddings: npt.NDArray[np.float32], texts: Sequence[str],
                      languages: Sequence[str] | None = None) -> FloatArray:
        return _softmax(self.decision_scores(embeddings, texts, languages) / self.temperature)

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

    def choose_language_thresholds(self, probs: FloatArray, labels: Sequence[str], languages: Sequence[str], *,
                                   oos_labels: frozenset[str], min_oos: int = 5, min_in_scope: int = 20,
                                   budget: float = 0.03) -> dict[str, float]:
        """One threshold per language, on that language's validation rows alone.

        Larson's rule (plain accuracy) almost never rejects when out-of-scope rows are 5 % of the data,
        yet a Chinese out-of-scope message the bot answers is worse than an in-scope one it asks to
        rephrase. So per language: the threshold with the best balanced accuracy (mean of in-scope
        accuracy and out-of-scope recall) among those that turn away at most `budget` of the in-scope
        rows the classifier got right. A language with fewer than `min_oos` out-of-scope or
        `min_in_scope` in-scope rows keeps the shared threshold."""
        chosen: dict[str, float] = {}
        top = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        predicted = np.array([self.labels[i] for i in top])
        truth = np.array(list(labels))
        is_oos = np.isin(truth, list(oos_labels))
        as_oos_class = np.isin(predicted, list(oos_labels))
        language_of = np.array(list(languages))
        for language in sorted(set(languages)):
            rows = language_of == language
            oos_rows, in_rows = rows & is_oos, rows & ~is_oos
            if oos_rows.sum() < min_oos or in_rows.sum() < min_in_scope:
                continue
            right = in_rows & (predicted == truth)
            best = (-1.0, 0.0)
            for threshold in np.unique(np.concatenate([[0.0], confidence[rows]])):
                rejected = as_oos_class | (confidence < threshold)
                if (right & rejected & ~as_oos_class).sum() > budget * in_rows.sum():
                    break  # thresholds only grow from here
                balanced = 0.5 * float((right & ~rejected).sum() / in_rows.sum()) + \
                    0.5 * float((oos_rows & rejected).sum() / oos_rows.sum())
                if balanced > best[0] + 1e-12:
                    best = (balanced, float(threshold))
            chosen[language] = best[1]
        self.thresholds = chosen
        return chosen

    def threshold_for(self, language: str) -> float:
        """The rejection threshold of messages in `language`: its own when chosen, else the shared one, moved
        towards the multilingual heads' threshold as far as their weight in the language's mix."""
        if language in self.thresholds:
            return self.thresholds[language]
        if self.multilingual_threshold is None or self._multi_linear is None:
            return self.threshold
        weight = float(self.full_head_weights([language])[0])
        return weight * self.threshold + (1.0 - weight) * self.multilingual_threshold

    # ---------- persistence ----------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.config, "labels": self.labels, "temperature": self.temperature,
            "threshold": self.threshold, "thresholds": dict(self.thresholds), "margin": self.margin,
            "model": self._model, "tfidf": self._tfidf,
            "lexical": self._lexical, "mlps": list(self._mlps),
            "language_counts": dict(self.language_counts), "multi_linear": self._multi_linear,
            "multi_mlps": list(self._multi_mlps), "multilingual_scale": self.multilingual_scale,
            "multilingual_threshold": self.multilingual_threshold,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IntentClassifier:
        classifier = cls(config=state["config"], labels=list(state["labels"]),
                         temperature=float(state["temperature"]), threshold=float(state["threshold"]),
                         margin=float(state["margin"]),
                         thresholds={str(k): float(v) for k, v in state.get("thresholds", {}).items()})
        classifier._model = state["model"]
        classifier._tfidf = state["tfidf"]
        classifier._lexical = state.get("lexical")
        classifier._mlps = list(state.get("mlps", []))
        # Models saved before the language-aware mix have no multilingual heads: they score as they did.
        classifier.language_counts = {str(k): int(v) for k, v in state.get("language_counts", {}).items()}
        classifier._multi_linear = state.get("multi_linear")
        classifier._multi_mlps = list(state.get("multi_mlps", []))
        classifier.multilingual_scale = float(state.get("multilingual_scale", 1.0))
        threshold = state.get("multilingual_threshold")
        classifier.multilingual_threshold = None if threshold is None else float(threshold)
        return classifier

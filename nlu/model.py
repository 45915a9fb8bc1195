"""Training a versioned NLU model and saving/loading it as an artifact folder `nlu-<version>/`."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.classifier import OUT_OF_SCOPE_INTENT, ClassifierConfig, IntentClassifier, _softmax
from nlu.embedder import Embedder
from nlu.errors import NluModelInvalid, NluModelMissing, TrainingDataError
from nlu.language import detect_language
from nlu.training_data import TrainingData

ARTIFACT_PREFIX = "nlu-"
ARTIFACT_FORMAT = 1
OOS_LABELS = frozenset({OUT_OF_SCOPE_INTENT})


@dataclass
class NluModel:
    version: str
    classifier: IntentClassifier
    entity_data: TrainingData
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_at: str = ""
    data_fingerprint: str = ""

    @property
    def intents(self) -> list[str]:
        return list(self.classifier.labels)

    def meta(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT, "version": self.version, "trained_at": self.trained_at,
            "data_fingerprint": self.data_fingerprint, "intents": self.intents,
            "temperature": self.classifier.temperature, "threshold": self.classifier.threshold,
            "thresholds_by_language": self.classifier.thresholds,
            "margin": self.classifier.margin, "embedding_dim": Embedder.dim, "metrics": self.metrics,
        }

    # ---------- persistence ----------
    def save(self, models_dir: Path) -> Path:
        """Write the artifact atomically (temp folder then rename); returns its folder."""
        models_dir.mkdir(parents=True, exist_ok=True)
        target = models_dir / f"{ARTIFACT_PREFIX}{self.version}"
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=models_dir))
        try:
            with (staging / "classifier.pkl").open("wb") as handle:
                pickle.dump(self.classifier.state(), handle, protocol=pickle.HIGHEST_PROTOCOL)
            entity_payload = {
                "synonyms": self.entity_data.synonyms, "regexes": self.entity_data.regexes,
                "lookups": self.entity_data.lookups,
                "vocabulary": {k: sorted(v) for k, v in self.entity_data.entity_vocabulary().items()},
            }
            (staging / "entities.json").write_text(json.dumps(entity_payload, ensure_ascii=False, indent=1),
                                                   encoding="utf-8")
            (staging / "meta.json").write_text(json.dumps(self.meta(), ensure_ascii=False, indent=1),
                                               encoding="utf-8")
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(staging, target)
            except OSError:
                # Another process (two API processes starting on one models folder) saved the same version
                # between our rmtree and our rename: a folder cannot replace a non-empty one. Theirs is the same
                # training's artifact; keep it and drop ours.
                if not (target / "meta.json").exists():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    @classmethod
    def load(cls, folder: Path) -> NluModel:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != ARTIFACT_FORMAT:
                raise NluModelInvalid(f"{folder}: artifact format {meta.get('format')!r} is not {ARTIFACT_FORMAT}")
            with (folder / "classifier.pkl").open("rb") as handle:
                state = pickle.load(handle)  # noqa: S301 - our own artifact under data_dir
            entities = json.loads((folder / "entities.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, pickle.UnpicklingError, EOFError, KeyError) as error:
            raise NluModelInvalid(f"{folder}: cannot read NLU model artifact ({error})") from error
        entity_data = TrainingData(synonyms=dict(entities["synonyms"]), regexes=dict(entities["regexes"]),
                                   lookups=dict(entities["lookups"]))
        for name, surfaces in entities.get("vocabulary", {}).items():
            entity_data.lookups.setdefault(name, []).extend(surfaces)
        return cls(version=str(meta["version"]), classifier=IntentClassifier.from_state(state),
                   entity_data=entity_data, metrics=dict(meta.get("metrics", {})),
                   trained_at=str(meta.get("trained_at", "")), data_fingerprint=str(meta.get("data_fingerprint", "")))


def artifact_folders(models_dir: Path) -> list[Path]:
    """Artifact folders, newest version last (versions start with a UTC timestamp)."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir()
                  if p.is_dir() and p.name.startswith(ARTIFACT_PREFIX) and (p / "meta.json").exists())


def load_model(models_dir: Path, *, version: str | None = None) -> NluModel:
    """The artifact of `version`, or the newest one that loads."""
    if version is not None:
        folder = models_dir / f"{ARTIFACT_PREFIX}{version}"
        if not folder.is_dir():
            raise NluModelMissing(f"no NLU model version {version!r} under {models_dir}")
        return NluModel.load(folder)
    last_error: NluModelInvalid | None = None
    for folder in reversed(artifact_folders(models_dir)):
        try:
            return NluModel.load(folder)
        except NluModelInvalid as error:
            last_error = error
    if last_error is not None:
        raise last_error
    raise NluModelMissing(f"no NLU model under {models_dir}; run `shoptalk nlu train`")


class EmbeddingCache:
    """Embeddings of training texts kept beside the artifacts, so retraining embeds only new texts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def _key(text: str, encoder_id: str = "") -> str:
        # Keyed by the encoder too: float32 and int8 MiniLM rows must never mix in one training set.
        return hashlib.sha1(f"{encoder_id}\0{text}".encode()).hexdigest()

    def _read(self) -> dict[str, npt.NDArray[np.float32]]:
        if not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                keys, rows = stored["keys"], stored["rows"]
        except (OSError, ValueError, KeyError):
            return {}
        if rows.ndim != 2 or rows.shape[1] != Embedder.dim:
            return {}
        return {str(key): rows[i] for i, key in enumerate(keys)}

    def encode(self, texts: list[str], embedder: Embedder) -> npt.NDArray[np.float32]:
        known = self._read()
        encoder_id = str(getattr(embedder, "encoder_id", ""))
        keys = [self._key(text, encoder_id) for text in texts]
        missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in known}.items())
        if missing:
            fresh = embedder.encode([text for _, text in missing])
            known.update({key: fresh[i] for i, (key, _) in enumerate(missing)})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A staging file of our own: two processes training at once (two API processes starting on one
            # folder) each write theirs, and the last rename wins with a whole file.
            handle, name = tempfile.mkstemp(prefix=".embedding-cache-", suffix=".npz", dir=self.path.parent)
            staging = Path(name)
            try:
                with os.fdopen(handle, "wb") as stream:
                    np.savez(stream, keys=np.array(list(known)),
                             rows=np.stack(list(known.values())).astype(np.float32))
                os.replace(staging, self.path)
            finally:
                staging.unlink(missing_ok=True)
        return np.stack([known[key] for key in keys]).astype(np.float32)


def _stratified_folds(labels: list[str], *, folds: int, seed: int) -> npt.NDArray[np.int64]:
    """Fold number of each example (stratified by label); -1 for labels too rare to leave out."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    assignment = np.full(len(labels), -1, dtype=np.int64)
    offset = 0
    for label in sorted(by_label):
        indices = by_label[label]
        if len(indices) < max(5, folds):
            continue
        for position, index in enumerate(rng.permutation(indices)):
            assignment[int(index)] = (position + offset) % folds
        offset += len(indices)
    return assignment


def _out_of_fold_scores(vectors: npt.NDArray[np.float32], texts: list[str], labels: list[str],
                        assignment: npt.NDArray[np.int64], *, folds: int, config: ClassifierConfig,
                        margin: float) -> tuple[IntentClassifier, npt.NDArray[np.float64],
                                                npt.NDArray[np.float64] | None, list[int]]:
    """Scores of every foldable example from a model that never saw it (columns: sorted labels): the full
    heads' and, when the config has them, the multilingual heads' alone (None otherwise)."""
    names = sorted(set(labels))
    column = {name: i for i, name in enumerate(names)}
    scores = np.zeros((len(labels), len(names)), dtype=np.float64)
    multi_scores = np.zeros_like(scores) if config.multilingual_c > 0 and vectors.shape[1] == Embedder.dim else None
    held = [i for i in range(len(labels)) if assignment[i] >= 0]
    empty = np.zeros((0, len(names)))

    def run(fold: int) -> tuple[list[int], list[str], npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        train = [i for i in range(len(labels)) if assignment[i] != fold]
        val = [i for i in range(len(labels)) if assignment[i] == fold]
        if not val:
            return val, [], empty, None
        probe = IntentClassifier(config=config, margin=margin)
        probe.fit(vectors[train], [texts[i] for i in train], [labels[i] for i in train],
                  multilingual=multi_scores is not None)
        val_texts = [texts[i] for i in val]
        return val, probe.labels, probe.full_scores(vectors[val], val_texts), probe.multilingual_scores(vectors[val])

    # Two folds at a time: the fits spend most of their time in BLAS/liblinear, outside the GIL.
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix="nlu-fold") as pool:
        for val, fold_labels, fold_scores, fold_multi in pool.map(run, range(folds)):
            if not val:
                continue
            for target, part in ((scores, fold_scores), (multi_scores, fold_multi)):
                if target is None or part is None:
                    continue
                # A label missing from this fold's training part keeps a score far below the others.
                target[np.ix_(val, range(len(names)))] = part.min() - 10.0
                for j, name in enumerate(fold_labels):
                    target[val, column[name]] = part[:, j]
    reference = IntentClassifier(config=config, margin=margin, labels=names)
    return reference, scores[held], None if multi_scores is None else multi_scores[held], held


def _no_oos_threshold(probe: IntentClassifier, probs: npt.NDArray[np.float64], val_labels: list[str]) -> float:
    """No out-of-scope examples: reject only what is less sure than nearly all right answers."""
    predicted = [probe.labels[i] for i in probs.argmax(axis=1)]
    right = probs.max(axis=1)[[p == t for p, t in zip(predicted, val_labels, strict=True)]]
    return float(np.quantile(right, 0.02)) if len(right) else 0.0


def new_version(fingerprint: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + fingerprint[:8]


def train_model(
    data: TrainingData,
    *,
    embedder: Embedder,
    config: ClassifierConfig | None = None,
    validation_share: float = 0.2,
    seed: int = 0,
    margin: float = 0.1,
    embeddings: npt.NDArray[np.float32] | None = None,
    cache: EmbeddingCache | None = None,
) -> NluModel:
    """Calibrate and choose the out-of-scope thresholds on out-of-fold scores (stratified k-fold,
    k = 1 / validation_share), then fit on all examples keeping those choices."""
    started = time.perf_counter()
    examples = data.examples
    counts = Counter(example.intent for example in examples)
    if len(counts) < 2:
        raise TrainingDataError(f"need examples of at least two intents, found {len(counts)}",
                                source=", ".join(data.sources) or "<training data>")
    texts = [example.text for example in examples]
    labels = [example.intent for example in examples]
    if embeddings is not None:
        vectors = embeddings
    elif cache is not None:
        vectors = cache.encode(texts, embedder)
    else:
        vectors = embedder.encode(texts)
    # Settings picked on the whole set, so the validation folds (4/5 of it) are fitted as the final model is.
    config = (config or ClassifierConfig()).resolved_for(len(texts), len(counts))
    folds = max(2, int(round(1.0 / validation_share)))
    assignment = _stratified_folds(labels, folds=folds, seed=seed)
    metrics: dict[str, Any] = {"examples": len(texts), "intents": len(counts), "validation_folds": folds}
    temperature, threshold = 1.0, 0.0
    multilingual_scale, multilingual_threshold = 1.0, None
    thresholds: dict[str, float] = {}
    if (assignment >= 0).any():
        # Every example is validation data once: k models each trained without one fold.
        probe, scores, multi_scores, held = _out_of_fold_scores(vectors, texts, labels, assignment, folds=folds,
                                                                config=config, margin=margin)
        val_texts = [texts[i] for i in held]
        val_labels = [labels[i] for i in held]
        temperature = probe.calibrate_temperature(scores, val_labels)
        probs = _softmax(scores / temperature)
        val_languages = [detect_language(text) for text in val_texts]
        if any(label in OOS_LABELS for label in val_labels):
            threshold = probe.choose_threshold(probs, val_labels, oos_labels=OOS_LABELS)
            # Chinese confidences run lower than English ones: one shared threshold let half the
            # Chinese out-of-scope messages through, so each language with enough rows gets its own.
            thresholds = probe.choose_language_thresholds(probs, val_labels, val_languages, oos_labels=OOS_LABELS)
        else:
            threshold = _no_oos_threshold(probe, probs, val_labels)
        if multi_scores is not None:
            # The multilingual heads, calibrated the same way on their own out-of-fold scores: the temperature
            # and threshold of a message in a language the training data lacks.
            multi_temperature = IntentClassifier(labels=probe.labels).calibrate_temperature(multi_scores, val_labels)
            multilingual_scale = temperature / multi_temperature
            multi_probs = _softmax(multi_scores / multi_temperature)
            if any(label in OOS_LABELS for label in val_labels):
                multilingual_threshold = IntentClassifier(labels=probe.labels).choose_threshold(
                    multi_probs, val_labels, oos_labels=OOS_LABELS)
            else:
                multilingual_threshold = _no_oos_threshold(probe, multi_probs, val_labels)
            metrics["multilingual_heads"] = {"temperature": round(multi_temperature, 4),
                                             "threshold": round(multilingual_threshold, 4),
                                             "validation_accuracy": round(float(np.mean(
                                                 [probe.labels[i] == t for i, t in
                                                  zip(multi_probs.argmax(axis=1), val_labels, strict=True)])), 4)}
        probe.threshold, probe.thresholds = threshold, thresholds
        metrics["validation"] = _validation_metrics(probe, probs, val_texts, val_labels, val_languages)
    classifier = IntentClassifier(config=config, margin=margin)
    classifier.fit(vectors, texts, labels)
    classifier.temperature = temperature
    classifier.threshold = threshold
    classifier.thresholds = dict(thresholds)
    classifier.multilingual_scale = multilingual_scale
    classifier.multilingual_threshold = multilingual_threshold
    fingerprint = data.fingerprint()
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    return NluModel(version=new_version(fingerprint), classifier=classifier, entity_data=data, metrics=metrics,
                    trained_at=datetime.now(UTC).isoformat(), data_fingerprint=fingerprint)


def _validation_metrics(classifier: IntentClassifier, probs: npt.NDArray[np.float64], texts: list[str],
                        labels: list[str], languages: list[str]) -> dict[str, Any]:
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    confidence = probs.max(axis=1)
    rejected = [p in OOS_LABELS or c < classifier.threshold_for(lang)
                for p, c, lang in zip(predicted, confidence, languages, strict=True)]
    in_scope = [i for i, label in enumerate(labels) if label not in OOS_LABELS]
    oos = [i for i, label in enumerate(labels) if label in OOS_LABELS]
    by_language: dict[str, list[bool]] = {}
    for i in in_scope:
        by_language.setdefault(languages[i], []).append(predicted[i] == labels[i] and not rejected[i])
    oos_by_language: dict[str, list[bool]] = {}
    for i in oos:
        oos_by_language.setdefault(languages[i], []).append(rejected[i])
    return {
        "examples": len(labels),
        "in_scope_accuracy": round(float(np.mean([predicted[i] == labels[i] and not rejected[i]
                                                  for i in in_scope])), 4) if in_scope else None,
        "oos_recall": round(float(np.mean([rejected[i] for i in oos])), 4) if oos else None,
        "accuracy_by_language": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_language.items())},
        "oos_recall_by_language": {k: round(float(np.mean(v)), 4) for k, v in sorted(oos_by_language.items())},
        "threshold": round(classifier.threshold, 4),
        "thresholds_by_language": {k: round(v, 4) for k, v in sorted(classifier.thresholds.items())},
    }

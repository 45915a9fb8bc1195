"""The NLU service: parse a message (intent, entities, language, embedding), train and load models."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.catalog_terms import PRODUCT_INTENT, CatalogEvidence, CatalogVocabulary, rereads_as_products
from nlu.classifier import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ClassifierConfig
from nlu.embedder import MAX_MODEL_CHARS, Embedder, get_embedder
from nlu.entities import Entity, EntityExtractor
from nlu.errors import NluModelMissing
from nlu.language import detect_language
from nlu.model import EmbeddingCache, NluModel, load_model, train_model
from nlu.training_data import TrainingData, load_training_data

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
RANKING_SIZE = 10
CATALOG_EXTRACTOR = "CatalogVocabulary"
_CJK_TEXT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Above this many characters entity extraction leaves the event loop.
_INLINE_ENTITY_CHARS = 1_000


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float

    def to_rasa(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": round(self.confidence, 6)}


@dataclass(frozen=True)
class ParseResult:
    """One parsed message. `intent` is `nlu_fallback` when the message is out of scope and the
    classifier's best guess was below the rejection threshold (Rasa's FallbackClassifier name);
    `out_of_scope` when the model recognised it as such. `embedding` is the Embedder row (896-d)."""

    text: str
    intent: str
    confidence: float
    intent_ranking: tuple[IntentScore, ...]
    entities: tuple[Entity, ...]
    language: str
    embedding: npt.NDArray[np.float32]
    ambiguous: bool = False
    out_of_scope: bool = False
    model_version: str = ""
    reread_from: str | None = None  # the classifier's intent when the catalog's words changed the reading

    def entity_values(self, entity: str) -> list[Any]:
        return [e.value for e in self.entities if e.entity == entity]

    def to_rasa(self, *, include_embedding: bool = False) -> dict[str, Any]:
        """Rasa's /model/parse response shape plus `language` (and the embedding when asked)."""
        out: dict[str, Any] = {
            "text": self.text,
            "intent": {"name": self.intent, "confidence": round(self.confidence, 6)},
            "intent_ranking": [score.to_rasa() for score in self.intent_ranking],
            "entities": [entity.to_rasa() for entity in self.entities],
            "language": self.language,
        }
        if self.reread_from is not None:
            out["reread_from"] = self.reread_from
        if include_embedding:
            out["embedding"] = [round(float(x), 6) for x in self.embedding]
        return out


@dataclass(frozen=True)
class TrainReport:
    version: str
    path: Path
    examples: int
    intents: list[str]
    seconds: float
    metrics: dict[str, Any]
    warnings: list[str]


class NluService:
    """Parses messages with the active model; training or loading swaps the model atomically, and a
    failed training (bad data) leaves the active model serving."""

    def __init__(
        self,
        *,
        models_dir: Path,
        data_paths: Sequence[Path] | None = None,
        embedder: Embedder | None = None,
        default_language: str = "en",
        config: ClassifierConfig | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.data_paths = list(data_paths) if data_paths is not None else [DEFAULT_DATA_DIR]
        self.default_language = default_language
        self.config = config
        self._embedder = embedder
        self._model: NluModel | None = None
        self._extractor = EntityExtractor()
        self._vocabulary: CatalogVocabulary | None = None
        self._swap_lock = threading.Lock()
        self._ensure_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    @property
    def model(self) -> NluModel | None:
        return self._model

    @property
    def extractor(self) -> EntityExtractor:
        return self._extractor

    # ---------- models ----------
    def _activate(self, model: NluModel) -> None:
        with self._swap_lock:
            self._extractor.use_training_data(model.entity_data)
            self._model = model

    def load(self, *, version: str | None = None) -> NluModel:
        """Load the newest saved model (or `version`) and serve it."""
        model = load_model(self.models_dir, version=version)
        self._activate(model)
        return model

    def train(self, *, data_paths: Sequence[Path] | None = None, activate: bool = True,
              data: TrainingData | None = None) -> TrainReport:
        """Train from Rasa YAML files (default: the shipped shop data), save the artifact and serve it.

        Raises TrainingDataError (file, line, problem) without touching the active model."""
        if data is None:
            data = load_training_data(list(data_paths) if data_paths is not None else self.data_paths)
        cache = EmbeddingCache(self.models_dir / "embedding-cache.npz")
        model = train_model(data, embedder=self.embedder, config=self.config, cache=cache)
        path = model.save(self.models_dir)
        if activate:
            self._activate(model)
        return TrainReport(version=model.version, path=path, examples=len(data.examples), intents=model.intents,
                           seconds=float(model.metrics.get("train_seconds", 0.0)), metrics=model.metrics,
                           warnings=list(data.warnings))

    async def train_async(self, *, data_paths: Sequence[Path] | None = None) -> TrainReport:
        return await asyncio.to_thread(self.train, data_paths=data_paths)

    def ensure_model(self) -> NluModel:
        """The active model; loads the newest artifact, or trains one from the shipped data if none exists."""
        if self._model is not None:
            return self._model
        # One loader at a time: concurrent first parses must not train the model twice.
        with self._ensure_lock:
            if self._model is not None:
                return self._model
            try:
                return self.load()
            except NluModelMissing:
                self.train()
                assert self._model is not None
                return self._model

    # ---------- runtime lookup tables ----------
    def set_lookup(self, entity: str, values: Iterable[str] | Mapping[str, str]) -> None:
        """Replace the lookup table of `entity` (e.g. 'product', 'category' from the catalog)."""
        self._extractor.set_lookup(entity, values)

    def add_synonyms(self, synonyms: Mapping[str, str]) -> None:
        self._extractor.add_synonyms(synonyms)

    def set_catalog_vocabulary(self, terms: Iterable[str], *, names: Iterable[str] = ()) -> None:
        """The shop's own words (titles, categories, brands, tags; `names`: the merchant's synonyms, whole names):
        a message made of them is about products, whatever the classifier read (`nlu.catalog_terms`)."""
        self._vocabulary = CatalogVocabulary(terms, names=names)

    @property
    def catalog_vocabulary(self) -> CatalogVocabulary | None:
        return self._vocabulary

    # ---------- parsing ----------
    async def parse(self, text: str) -> ParseResult:
        """Intent, ranking, entities, language and embedding of one message."""
        model = self._model
        if model is None:
            model = await asyncio.to_thread(self.ensure_model)
        embedding = await self.embedder.embed(text)
        if len(text) > _INLINE_ENTITY_CHARS:
            return await asyncio.to_thread(self._finish, model, text, embedding)
        return self._finish(model, text, embedding)

    async def parse_many(self, texts: Sequence[str]) -> list[ParseResult]:
        return list(await asyncio.gather(*(self.parse(text) for text in texts)))

    def parse_sync(self, text: str) -> ParseResult:
        """Blocking parse for scripts and the CLI (no micro-batching)."""
        model = self.ensure_model()
        embedding = self.embedder.encode([text])[0]
        return self._finish(model, text, embedding)

    def parse_batch_sync(self, texts: Sequence[str]) -> list[ParseResult]:
        model = self.ensure_model()
        embeddings = self.embedder.encode(list(texts))
        return self.classify(model, texts, embeddings)

    def classify(self, model: NluModel, texts: Sequence[str],
                 embeddings: npt.NDArray[np.float32]) -> list[ParseResult]:
        """Parse results for texts whose embeddings are already known (used by evaluation)."""
        languages = [detect_language(text, default=self.default_language) for text in texts]
        probs = model.classifier.predict_proba(embeddings, [t[:MAX_MODEL_CHARS] for t in texts], languages)
        return [self._result(model, text, embeddings[i], probs[i], languages[i]) for i, text in enumerate(texts)]

    def _finish(self, model: NluModel, text: str, embedding: npt.NDArray[np.float32]) -> ParseResult:
        language = detect_language(text, default=self.default_language)
        probs = model.classifier.predict_proba(embedding[None, :], [text[:MAX_MODEL_CHARS]], [language])[0]
        return self._result(model, text, embedding, probs, language)

    def _result(self, model: NluModel, text: str, embedding: npt.NDArray[np.float32],
                probs: npt.NDArray[np.float64], language: str) -> ParseResult:
        classifier = model.classifier
        order = np.argsort(-probs)[:RANKING_SIZE]
        ranking = [IntentScore(classifier.labels[i], float(probs[i])) for i in order]
        top = ranking[0]
        second = ranking[1].confidence if len(ranking) > 1 else 0.0
        ambiguous = top.confidence - second < classifier.margin
        if not text.strip():
            # Nothing to understand: Rasa gives no intent; we give the fallback with zero confidence.
            ranking = [IntentScore(FALLBACK_INTENT, 0.0)]
            intent, confidence, out_of_scope, ambiguous = FALLBACK_INTENT, 0.0, True, False
        elif top.name == OUT_OF_SCOPE_INTENT:
            intent, confidence, out_of_scope = top.name, top.confidence, True
        elif top.confidence < (threshold := classifier.threshold_for(language)):
            intent, confidence, out_of_scope = FALLBACK_INTENT, threshold, True
            ranking = [IntentScore(FALLBACK_INTENT, threshold), *ranking[: RANKING_SIZE - 1]]
        else:
            intent, confidence, out_of_scope = top.name, top.confidence, False
        entities = tuple(self._extractor.extract(text, language=language))
        result = ParseResult(
            text=text, intent=intent, confidence=confidence, intent_ranking=tuple(ranking), entities=entities,
            language=language, embedding=embedding, ambiguous=ambiguous, out_of_scope=out_of_scope,
            model_version=model.version,
        )
        vocabulary = self._vocabulary
        return result if vocabulary is None else with_catalog_evidence(result, vocabulary.evidence(text),
                                                                        labels=classifier.labels)


def with_catalog_evidence(result: ParseResult, evidence: CatalogEvidence, *,
                          labels: Iterable[str]) -> ParseResult:
    """The parse with the catalog's words as evidence: each catalog word not already an entity becomes a
    `product` entity, and a message made of them that the classifier read as small talk or noise is a search."""
    if not evidence.names_products:
        return result
    text = result.text
    # A colour inside a longer run of catalog words is part of a product's name, not a colour: 大红 in 大红袍 (a tea),
    # which would otherwise be a red filter and leave "袍" to search for. "大红色" stays a colour.
    kept = tuple(e for e in result.entities
                 if not (e.entity == "colour" and _CJK_TEXT.search(text[e.start:e.end]) is not None
                         and text[e.end:e.end + 1] != "色"
                         and any(m.start <= e.start and e.end <= m.end and m.end - m.start > e.end - e.start
                                 for m in evidence.matches)))
    taken = [(e.start, e.end) for e in kept]
    found = [Entity(entity="product", value=m.term.lower(), start=m.start, end=m.end, text=m.term,
                    confidence=round(evidence.coverage, 4), extractor=CATALOG_EXTRACTOR)
             for m in evidence.matches if not any(s < m.end and m.start < e for s, e in taken)]
    entities = tuple(sorted((*kept, *found), key=lambda e: e.start))
    if not rereads_as_products(result.intent, evidence, labels=labels):
        return replace(result, entities=entities)
    # Confidence grows with the share of the message that is catalog words (all of it: 1.0; half: 0.75).
    confidence = 0.5 + 0.5 * evidence.coverage
    ranking = [IntentScore(PRODUCT_INTENT, confidence),
               *(s for s in result.intent_ranking if s.name not in (PRODUCT_INTENT, FALLBACK_INTENT))]
    return replace(result, intent=PRODUCT_INTENT, confidence=confidence, intent_ranking=tuple(ranking[:RANKING_SIZE]),
                   entities=entities, ambiguous=False, out_of_scope=False, reread_from=result.intent)


_service: NluService | None = None
_service_lock = threading.Lock()


def get_nlu_service() -> NluService:
    """The process-wide service, configured from kit settings (models under <data_dir>/models)."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                from kit.settings import get_settings

                settings = get_settings()
                _service = NluService(models_dir=Path(settings.data_dir) / "models",
                                      default_language=settings.locale.default_locale)
    return _service

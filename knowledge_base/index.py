"""In-memory hybrid FAQ index: faiss (ids per entry row, no rebuilds) fused with BM25."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import faiss
import numpy as np
import numpy.typing as npt

from knowledge_base.text import tokens

MINILM_DIM = 384
DIM = 896
# faiss id = entry_id * SLOTS + row; the last slot is the question+answer row.
SLOTS = 64
ROOT2 = np.float32(math.sqrt(2.0))
DOC_SLOT = SLOTS - 1
Decision = Literal["answer", "suggest", "none"]
Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Weights:
    """Fusion weights and calibration: the dev-split fit of `python bench/kb_retrieval.py --fit` (StackFAQ)."""

    # English to English: MiniLM's share of the dense cosine (the rest is USE); other pairs use USE only.
    english_share: float = 1.0
    document: float = 0.15  # cosine to the question+answer text, added to the best phrasing cosine
    lexical_question: float = 0.0  # saturated BM25 over the phrasings
    lexical_answer: float = 0.3  # saturated BM25 over the answer
    saturation: float = 64.0  # bm25 / (bm25 + saturation)
    # calibrated score = sigmoid(slope * (fused - midpoint)): English pairs (MiniLM) and the rest (USE)
    slope: float = 15.646
    midpoint: float = 0.7489
    multilingual_slope: float = 9.171
    multilingual_midpoint: float = 0.7823
    answer_at: float = 0.7
    suggest_at: float = 0.3


@dataclass(frozen=True)
class IndexedEntry:
    entry_id: int
    group_key: str
    language: str
    questions: tuple[str, ...]
    answer: str
    version: int = 1
    countries: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    def applies_to(self, country: str | None, channel: str | None) -> bool:
        if country and self.countries and country.upper() not in self.countries:
            return False
        return not (channel and self.channels and channel.lower() not in self.channels)


@dataclass(frozen=True)
class Match:
    entry_id: int
    group_key: str
    language: str
    question: str
    answer: str
    score: float
    version: int
    dense: float = 0.0
    lexical: float = 0.0


@dataclass(frozen=True)
class Retrieval:
    decision: Decision
    matches: list[Match]

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None


def document_text(questions: tuple[str, ...] | list[str], answer: str) -> str:
    return f"{questions[0]}\n{answer}"


def texts_to_embed(questions: tuple[str, ...] | list[str], answer: str) -> list[str]:
    """Rows stored per entry: every phrasing, then the question+answer text."""
    return [*questions, document_text(questions, answer)]


def multilingual_query(embedding: Vector) -> Vector:
    """Query row that scores only the USE half, so a dot product is (USE cosine) / sqrt(2)."""
    out = np.zeros(DIM, np.float32)
    use = embedding[MINILM_DIM:]
    norm = float(np.linalg.norm(use)) or 1.0
    out[MINILM_DIM:] = use / norm
    return out


class Scored(NamedTuple):
    score: float  # calibrated
    fused: float
    dense: float
    lexical: float
    entry_id: int
    best_row: int


class Bm25Field:
    """Okapi BM25 with documents added and removed in place."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[int, int]] = {}
        self.lengths: dict[int, int] = {}
        self.total_length = 0

    def add(self, doc: int, terms: list[str]) -> None:
        self.remove(doc)
        counts = Counter(terms)
        for term, tf in counts.items():
            self.postings.setdefault(term, {})[doc] = tf
        self.lengths[doc] = len(terms)
        self.total_length += len(terms)

    def remove(self, doc: int, terms: list[str] | None = None) -> None:
        length = self.lengths.pop(doc, None)
        if length is None:
            return
        self.total_length -= length
        for term in set(terms) if terms is not None else list(self.postings):
            docs = self.postings.get(term)
            if docs is not None and docs.pop(doc, None) is not None and not docs:
                del self.postings[term]

    def scores(self, query: list[str]) -> dict[int, float]:
        n = len(self.lengths)
        if n == 0:
            return {}
        average = self.total_length / n or 1.0
        out: dict[int, float] = {}
        for term in set(query):
            docs = self.postings.get(term)
            if not docs:
                continue
            idf = math.log(1.0 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            for doc, tf in docs.items():
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[doc] / average)
                out[doc] = out.get(doc, 0.0) + idf * tf * (self.k1 + 1) / norm
        return out


@dataclass
class _Stored:
    entry: IndexedEntry
    rows: int
    question_terms: list[str] = field(default_factory=list)
    answer_terms: list[str] = field(default_factory=list)


class HybridIndex:
    """Dense rows in faiss IndexIDMap2(IndexFlatIP) + BM25 over phrasings and answers."""

    def __init__(self, weights: Weights | None = None, *, candidates: int = 100) -> None:
        self.weights = weights or Weights()
        self.candidates = candidates
        self.faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        self.entries: dict[int, _Stored] = {}
        self.groups: dict[str, set[int]] = {}
        self.lexical_questions = Bm25Field()
        self.lexical_answers = Bm25Field()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def version_of(self, entry_id: int) -> int | None:
        stored = self.entries.get(entry_id)
        return None if stored is None else stored.entry.version

    def upsert(self, entry: IndexedEntry, vectors: Vector) -> None:
        """Add or replace an entry; `vectors` has one row per phrasing plus the question+answer row."""
        questions = entry.questions[: SLOTS - 1]
        if vectors.shape != (len(entry.questions) + 1, DIM):
            raise ValueError(f"expected {(len(entry.questions) + 1, DIM)} vectors, got {vectors.shape}")
        self.remove(entry.entry_id)
        base = entry.entry_id * SLOTS
        ids = np.array([base + i for i in range(len(questions))] + [base + DOC_SLOT], dtype=np.int64)
        rows = np.ascontiguousarray(np.vstack([vectors[: len(questions)], vectors[-1:]]), dtype=np.float32)
        self.faiss.add_with_ids(rows, ids)
        question_terms = tokens(" ".join(questions))
        answer_terms = tokens(entry.answer)
        self.lexical_questions.add(entry.entry_id, question_terms)
        self.lexical_answers.add(entry.entry_id, answer_terms)
        self.entries[entry.entry_id] = _Stored(entry, len(questions), question_terms, answer_terms)
        self.groups.setdefault(entry.group_key, set()).add(entry.entry_id)

    def remove(self, entry_id: int) -> None:
        stored = self.entries.pop(entry_id, None)
        if stored is None:
            return
        base = entry_id * SLOTS
        ids = np.array([base + i for i in range(stored.rows)] + [base + DOC_SLOT], dtype=np.int64)
        self.faiss.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
        self.lexical_questions.remove(entry_id, stored.question_terms)
        self.lexical_answers.remove(entry_id, stored.answer_terms)
        group = self.groups.get(stored.entry.group_key)
        if group is not None:
            group.discard(entry_id)
            if not group:
                del self.groups[stored.entry.group_key]

    def memory_bytes(self) -> int:
        """Vector storage only (the dominant part): 4 bytes per dimension per row plus the id."""
        return int(self.faiss.ntotal) * (DIM * 4 + 8)

    # ---------- search ----------
    def _dense_candidates(self, query: Vector, k: int) -> set[int]:
        if self.faiss.ntotal == 0:
            return set()
        _scores, ids = self.faiss.search(query.reshape(1, -1), min(k, int(self.faiss.ntotal)))
        return {int(i) // SLOTS for i in ids[0] if i >= 0}

    def _rows(self, entry_id: int, rows: int) -> Vector:
        base = entry_id * SLOTS
        keys = [base + i for i in range(rows)] + [base + DOC_SLOT]
        return np.vstack([self.faiss.reconstruct(int(key)) for key in keys]).astype(np.float32)

    def score_entries(self, query_text: str, embedding: Vector, *, language: str, country: str | None,
                      channel: str | None) -> list[Scored]:
        """Every candidate entry with its fused and calibrated score."""
        w = self.weights
        embedding = np.asarray(embedding, dtype=np.float32).reshape(-1)
        multilingual = multilingual_query(embedding)
        english_query = embedding[:MINILM_DIM] / (float(np.linalg.norm(embedding[:MINILM_DIM])) or 1.0)
        k = self.candidates * 2
        candidates = self._dense_candidates(embedding, k) | self._dense_candidates(multilingual, k)
        terms = tokens(query_text)
        lexical_q = self.lexical_questions.scores(terms)
        lexical_a = self.lexical_answers.scores(terms)
        for field_scores in (lexical_q, lexical_a):
            candidates.update(sorted(field_scores, key=field_scores.__getitem__, reverse=True)[: self.candidates])
        out: list[Scored] = []
        for entry_id in candidates:
            stored = self.entries.get(entry_id)
            if stored is None or not stored.entry.applies_to(country, channel):
                continue
            rows = self._rows(entry_id, stored.rows)
            # Rows are [MiniLM, USE] / sqrt(2); each half's dot with a unit half is its cosine / sqrt(2).
            use_sims = (rows @ multilingual) * ROOT2
            english = stored.entry.language == language == "en"
            if english:
                minilm_sims = (rows[:, :MINILM_DIM] @ english_query) * ROOT2
                sims = w.english_share * minilm_sims + (1.0 - w.english_share) * use_sims
            else:
                # MiniLM knows little Chinese: compare in the multilingual (USE) space only.
                sims = use_sims
            best_row = int(np.argmax(sims[:-1]))
            dense = float(sims[best_row])
            document = float(sims[-1])
            lq = lexical_q.get(entry_id, 0.0)
            la = lexical_a.get(entry_id, 0.0)
            lexical = (w.lexical_question * lq / (lq + w.saturation)
                       + w.lexical_answer * la / (la + w.saturation))
            fused = dense + w.document * document + lexical
            out.append(Scored(self.calibrate(fused, english=english), fused, dense, lexical, entry_id, best_row))
        return out

    def calibrate(self, fused: float, *, english: bool) -> float:
        """Fused score -> estimated probability that this match is right (fitted on dev data)."""
        w = self.weights
        slope, midpoint = ((w.slope, w.midpoint) if english else (w.multilingual_slope, w.multilingual_midpoint))
        return 1.0 / (1.0 + math.exp(-slope * (fused - midpoint)))

    def search(self, query_text: str, embedding: Vector, *, language: str, country: str | None = None,
               channel: str | None = None, k: int = 5) -> Retrieval:
        """Top-k groups (one match per translation group, in the shopper's language when it exists)."""
        scored = self.score_entries(query_text, embedding, language=language, country=country, channel=channel)
        scored.sort(reverse=True)
        matches: list[Match] = []
        seen_groups: set[str] = set()
        for score, _fused, dense, lexical, entry_id, best_row in scored:
            stored = self.entries[entry_id]
            group = stored.entry.group_key
            if group in seen_groups:
                continue
            seen_groups.add(group)
            served = self._in_language(group, language, country, channel) or stored.entry
            question = stored.entry.questions[best_row] if served is stored.entry else served.questions[0]
            matches.append(Match(entry_id=served.entry_id, group_key=group, language=served.language,
                                 question=question, answer=served.answer, score=round(score, 4),
                                 version=served.version, dense=round(dense, 4), lexical=round(lexical, 4)))
            if len(matches) >= k:
                break
        return Retrieval(decision=self.decide(matches), matches=matches)

    def _in_language(self, group: str, language: str, country: str | None,
                     channel: str | None) -> IndexedEntry | None:
        for entry_id in self.groups.get(group, ()):
            entry = self.entries[entry_id].entry
            if entry.language == language and entry.applies_to(country, channel):
                return entry
        return None

    def decide(self, matches: list[Match]) -> Decision:
        if not matches:
            return "none"
        top = matches[0].score
        if top >= self.weights.answer_at:
            return "answer"
        return "suggest" if top >= self.weights.suggest_at else "none"

"""Ranking pieces of product search: tokens, BM25 and cached product vectors."""
from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]

_LATIN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
STOPWORDS = frozenset("""
a an the and or of for to in on with without do does did you your have has any some is are was be i me my we
our us it its this that these those show find looking look want need get got can could would please pls
something anything thing things under below over above less more than between cheap cheaper from at by
about like what which who how much many recommend suggest buy sell selling there here one ones
size sizes sized colour colours color colors euro euros dollar dollars price priced cost costs
""".split())
CJK_STOPWORDS = frozenset("我的你们有吗呢吧啊想要找买个一些请给看下以上以内的是在和码号色元")


def _stem(word: str) -> str:
    """Plural to singular, the same way for queries and products ("hoodies", "hoodie" -> "hoody")."""
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("ie"):
        word = word[:-2] + "y"
    return word


def tokens(text: str, *, drop_stopwords: bool = False) -> list[str]:
    """Stemmed Latin words plus CJK unigrams and bigrams (no segmenter needed)."""
    lowered = text.lower()
    out = [_stem(w) for w in _LATIN.findall(lowered) if not (drop_stopwords and w in STOPWORDS)]
    for run in _CJK.findall(lowered):
        chars = [c for c in run if not (drop_stopwords and c in CJK_STOPWORDS)] if len(run) > 1 else list(run)
        out.extend(chars)
        out.extend(run[i:i + 2] for i in range(len(run) - 1)
                   if not (drop_stopwords and (run[i] in CJK_STOPWORDS or run[i + 1] in CJK_STOPWORDS)))
    return out


def bm25_scores(query: list[str], documents: list[list[str]], *, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document for the query; documents are small (one product each)."""
    if not documents or not query:
        return [0.0] * len(documents)
    n = len(documents)
    average = sum(len(d) for d in documents) / n or 1.0
    frequency: Counter[str] = Counter()
    for document in documents:
        frequency.update(set(document))
    scores = []
    wanted = Counter(query)
    for document in documents:
        counts = Counter(document)
        score = 0.0
        for term, times in wanted.items():
            tf = counts.get(term, 0)
            if not tf:
                continue
            idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
            score += times * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(document) / average))
        scores.append(score)
    return scores


class VectorCache:
    """Product vectors by (product id, updated_at), computed once per process by the caller's encoder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, str], Vector] = {}

    def vectors(self, keys: list[tuple[int, str]], texts: list[str], encoder: Encoder) -> Vector:
        with self._lock:
            missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            rows = np.asarray(encoder([texts[i] for i in missing]), dtype=np.float32)
            with self._lock:
                for i, row in zip(missing, rows, strict=True):
                    self._rows[keys[i]] = row
        with self._lock:
            return np.stack([self._rows[key] for key in keys]) if keys else np.zeros((0, 1), np.float32)


product_vectors = VectorCache()


@dataclass(frozen=True)
class IndexedProduct:
    """What search knows of one product, in every language it has (plain data: no ORM objects)."""

    product_id: int
    version: str
    titles: list[str]
    tags: list[str]
    brand: str
    category: list[str]
    attributes: list[str]
    descriptions: list[str]


def embedding_text(product: IndexedProduct) -> str:
    return ". ".join([*product.titles, ", ".join(product.tags)])


def _jieba() -> object:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


_segmenter: object | None = None
_segmenter_lock = threading.Lock()


def chinese_words(run: str) -> list[str]:
    """jieba's search-mode words of one CJK run (longer words on top of the bigrams)."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                _segmenter = _jieba()
    words: list[str] = _segmenter.lcut_for_search(run)  # type: ignore[attr-defined]
    return [w for w in words if len(w) > 2]


def search_tokens(text: str, *, query: bool = False) -> list[str]:
    """Index/query terms: `tokens` plus jieba words and the parts and joined form of hyphenated words."""
    out = tokens(text, drop_stopwords=query)
    lowered = text.lower()
    for word in _LATIN.findall(lowered):
        if "-" in word or "'" in word:
            parts = [p for p in re.split(r"[-']", word) if p]
            out.extend(_stem(p) for p in parts if not (query and p in STOPWORDS))
            out.append(_stem("".join(parts)))
    for run in _CJK.findall(lowered):
        if len(run) > 2:
            out.extend(w for w in chinese_words(run) if not (query and all(c in CJK_STOPWORDS for c in w)))
    return out


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _edit_distance(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            current.append(value)
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class RankedProduct:
    product_id: int
    score: float
    lexical: float
    dense: float


@dataclass(frozen=True)
class Weights:
    dense: float = 0.6
    lexical_saturation: float = 3.0
    # Below this cosine a product with no shared word is not shown as a match.
    # (USE-part cosine; 0.35 -> 0.25 took cross-lingual NDCG@10 0.40 -> 0.56 on the labelled set.)
    min_dense: float = 0.25
    # Corrected (typo) and compound-split terms count this much of an exact term.
    fuzzy: float = 0.8


class ProductIndex:
    """In-memory BM25 postings + product vectors, updated per product (no rebuild), safe across threads.

    Typo tolerance: a Latin query word missing from the vocabulary is replaced by vocabulary words at
    edit distance 1 (2 for words of 8+ letters), found through a delete-neighbourhood table, or split
    into two vocabulary words ("powerbank" -> "power" "bank").
    """

    def __init__(self, weights: Weights | None = None) -> None:
        self.weights = weights or Weights()
        self._lock = threading.RLock()
        self._row_of: dict[int, int] = {}
        self._ids: list[int] = []
        self._versions: list[str] = []
        self._lengths: list[int] = []
        self._terms_of: list[Counter[str]] = []
        self._postings: dict[str, dict[int, int]] = {}
        self._deletes: dict[str, set[str]] = {}
        self._multilingual: Vector = np.zeros((0, 0), np.float32)
        self._free: list[int] = []
        self._total_length = 0
        self._cached_arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None

    def _arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Product id per row and the rows in use, rebuilt only after a change (not per query)."""
        if self._cached_arrays is None:
            live = np.zeros(len(self._ids), bool)
            live[list(self._row_of.values())] = True
            self._cached_arrays = (np.asarray(self._ids, np.int64), live)
        return self._cached_arrays

    def __len__(self) -> int:
        return len(self._row_of)

    def version_of(self, product_id: int) -> str | None:
        row = self._row_of.get(product_id)
        return None if row is None else self._versions[row]

    def product_ids(self) -> set[int]:
        return set(self._row_of)

    @staticmethod
    def document_terms(product: IndexedProduct) -> list[str]:
        text = " ".join([*product.titles, *product.titles, *product.tags, product.brand, *product.category,
                         *product.attributes, *product.descriptions])
        return search_tokens(text)

    def _add_term(self, term: str) -> None:
        if term.isascii() and len(term) >= 4 and not term.isdigit():
            for deleted in _deletes(term):
                self._deletes.setdefault(deleted, set()).add(term)
            self._deletes.setdefault(term, set()).add(term)

    def upsert(self, products: Sequence[IndexedProduct], vectors: Vector | None = None) -> None:
        """Add or replace products; `vectors` rows (same order) are their embeddings, if any."""
        prepared = [(p, Counter(self.document_terms(p))) for p in products]
        with self._lock:
            self._cached_arrays = None
            self.remove([p.product_id for p in products])
            for i, (product, counts) in enumerate(prepared):
                row = self._free.pop() if self._free else len(self._ids)
                if row == len(self._ids):
                    self._ids.append(product.product_id)
                    self._versions.append(product.version)
                    self._lengths.append(0)
                    self._terms_of.append(Counter())
                self._ids[row] = product.product_id
                self._versions[row] = product.version
                self._lengths[row] = sum(counts.values())
                self._terms_of[row] = counts
                self._total_length += self._lengths[row]
                self._row_of[product.product_id] = row
                for term, times in counts.items():
                    posting = self._postings.setdefault(term, {})
                    if not posting:
                        self._add_term(term)
                    posting[row] = times
                if vectors is not None:
                    self._set_vector(row, _multilingual(np.asarray(vectors[i], np.float32)))

    def _set_vector(self, row: int, vector: Vector) -> None:
        """Only the multilingual (USE) part is kept: it matches across languages and halves the memory."""
        if self._multilingual.shape[1] not in (0, vector.shape[0]):
            return
        if self._multilingual.shape[0] <= row or not self._multilingual.shape[1]:
            grown = np.zeros((max(row + 1, 2 * self._multilingual.shape[0], 64), vector.shape[0]), np.float32)
            if self._multilingual.shape[1]:
                grown[: self._multilingual.shape[0]] = self._multilingual
            self._multilingual = grown
        self._multilingual[row] = vector

    def remove(self, product_ids: Sequence[int]) -> None:
        with self._lock:
            self._cached_arrays = None
            for product_id in product_ids:
                row = self._row_of.pop(product_id, None)
                if row is None:
                    continue
                for term in self._terms_of[row]:
                    posting = self._postings.get(term)
                    if posting is not None:
                        posting.pop(row, None)
                self._total_length -= self._lengths[row]
                self._terms_of[row] = Counter()
                self._lengths[row] = 0
                if self._multilingual.shape[0] > row:
                    self._multilingual[row] = 0
                self._free.append(row)

    def expand(self, term: str) -> list[tuple[str, float]]:
        """The term itself when known, else typo corrections or a two-word split, with their weights."""
        if self._postings.get(term):
            return [(term, 1.0)]
        if not term.isascii() or len(term) < 4 or term.isdigit():
            return []
        if len(term) < 5:
            return self._split(term)
        limit = 2 if len(term) >= 9 else 1
        candidates: set[str] = set(self._deletes.get(term, ()))
        for deleted in _deletes(term):
            candidates |= self._deletes.get(deleted, set())
            if limit == 2:
                for twice in _deletes(deleted):
                    candidates |= self._deletes.get(twice, set())
        found = [(c, self.weights.fuzzy) for c in sorted(candidates)
                 if self._postings.get(c) and _edit_distance(term, c, limit) <= limit]
        return found or self._split(term)

    def _split(self, term: str) -> list[tuple[str, float]]:
        for cut in range(2, len(term) - 1):
            left, right = _stem(term[:cut]), _stem(term[cut:])
            if self._postings.get(term[:cut]) and self._postings.get(right):
                return [(term[:cut], self.weights.fuzzy), (right, self.weights.fuzzy)]
            if self._postings.get(left) and self._postings.get(right):
                return [(left, self.weights.fuzzy), (right, self.weights.fuzzy)]
        return []

    def lexical(self, query: str, *, extra_terms: Sequence[str] = ()) -> dict[int, float]:
        """BM25 per row over the query's terms (typo-corrected), rows without a term left out."""
        k1, b = 1.2, 0.75
        with self._lock:
            n = len(self._row_of)
            if not n:
                return {}
            average = self._total_length / n or 1.0
            wanted: Counter[str] = Counter()
            weight: dict[str, float] = {}
            for term in [*search_tokens(query, query=True), *extra_terms]:
                for known, w in self.expand(term):
                    wanted[known] += 1
                    weight[known] = max(weight.get(known, 0.0), w)
            scores: dict[int, float] = {}
            # Single Chinese characters only count where they cover half the query's characters (or a word
            # matched too): otherwise "飞行汽车" would find anything with 车 or 行.
            chars = {t for t in wanted if len(t) == 1 and _CJK.fullmatch(t)}
            char_hits: Counter[int] = Counter()
            word_rows: set[int] = set()
            for term, times in wanted.items():
                posting = self._postings.get(term) or {}
                df = len(posting)
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5)) * weight[term] * times
                for row, tf in posting.items():
                    if term in chars:
                        char_hits[row] += 1
                    else:
                        word_rows.add(row)
                    scores[row] = scores.get(row, 0.0) + idf * tf * (k1 + 1) / (
                        tf + k1 * (1 - b + b * self._lengths[row] / average))
            if chars:
                scores = {row: score for row, score in scores.items()
                          if row in word_rows or 2 * char_hits[row] >= len(chars)}
            return scores

    def dense(self, embedding: Vector) -> Vector:
        """Cosine of every row's multilingual vector with the query's (896-d or 512-d) embedding."""
        with self._lock:
            rows = len(self._ids)
            query = _multilingual(np.asarray(embedding, np.float32).reshape(-1))
            if not rows or self._multilingual.shape[1] != query.shape[0]:
                return np.zeros(rows, np.float32)
            out: Vector = self._multilingual[:rows] @ query
            return out

    def rank(self, query: str, *, embedding: Vector | None = None, mode: str = "hybrid", limit: int = 50,
             allowed: set[int] | None = None, extra_terms: Sequence[str] = ()) -> list[RankedProduct]:
        """Best products for the query (all products, unranked order by id, when the query has no words)."""
        return self.rank_window(query, embedding=embedding, mode=mode, limit=limit, allowed=allowed,
                                extra_terms=extra_terms)[0]

    def rank_window(self, query: str, *, embedding: Vector | None = None, mode: str = "hybrid", limit: int = 50,
                    allowed: set[int] | None = None, extra_terms: Sequence[str] = ()
                    ) -> tuple[list[RankedProduct], int]:
        """The best `limit` products and how many products match in all. The order of the first N never
        depends on `limit`, so a caller can widen the window and only look at the new tail."""
        w = self.weights
        has_words = bool(search_tokens(query, query=True) or extra_terms)
        with self._lock:
            if not has_words:
                ids = sorted(i for i in self._row_of if allowed is None or i in allowed)
                return [RankedProduct(product_id=i, score=0.0, lexical=0.0, dense=0.0) for i in ids[:limit]], \
                    len(ids)
            lexical = self.lexical(query, extra_terms=extra_terms) if mode != "dense" else {}
            use_dense = mode != "lexical" and embedding is not None and np.asarray(embedding).size > 0
            cosines = self.dense(np.asarray(embedding)) if use_dense and embedding is not None else None
            if cosines is not None and not cosines.any():
                cosines = None
            rows = len(self._ids)
            id_of, live_rows = self._arrays()
            if allowed is None:
                usable = live_rows
            else:
                usable = np.zeros(rows, bool)
                usable[[self._row_of[i] for i in allowed if i in self._row_of]] = True
            lex = np.zeros(rows, np.float64)
            if lexical:
                lex[list(lexical)] = list(lexical.values())
            saturated = lex / (lex + w.lexical_saturation)
            candidates = lex > 0
            if cosines is not None:
                cos = np.asarray(cosines[:rows], np.float64)
                candidates |= cos >= w.min_dense
                scores = w.dense * cos + (1 - w.dense) * saturated
            else:
                cos = np.zeros(rows, np.float64)
                scores = saturated
            # Vectorised: only the best `limit` candidates become objects (100k products stay fast).
            found = np.flatnonzero(candidates & usable)
            matching = int(found.size)
            if len(found) > limit:
                found = found[np.argpartition(-scores[found], limit - 1)[:limit]]
            found = found[np.lexsort((id_of[found], -np.round(scores[found], 6)))]
            return [RankedProduct(product_id=int(id_of[r]), score=round(float(scores[r]), 6),
                                  lexical=round(float(lex[r]), 6), dense=round(float(cos[r]), 6)) for r in found], \
                matching


MINILM_DIM = 384


def _multilingual(rows: Vector) -> Vector:
    """The USE half of 896-d rows, renormalised (same as nlu.embedder.Embedder.multilingual_part)."""
    part = rows[..., MINILM_DIM:] if rows.shape[-1] > MINILM_DIM else rows
    norm = np.linalg.norm(part, axis=-1, keepdims=True)
    return np.asarray(part / np.where(norm == 0, 1, norm), np.float32)

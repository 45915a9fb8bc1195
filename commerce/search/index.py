"""Ranking pieces of product search: tokens, BM25 and cached product vectors."""
from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kit.text import CJK_RUN, Bm25, Ids, Scores, Tokenizer, plural_stem, sum_scores

Vector = npt.NDArray[np.float32]
Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]

STOPWORDS = frozenset("""
a an the and or of for to in on with without do does did you your have has any some is are was be i me my we
our us it its this that these those show find looking look want need get got can could would please pls
something anything thing things under below over above less more than between cheap cheaper from at by
about like what which who how much many recommend suggest buy sell selling there here one ones
size sizes sized colour colours color colors euro euros dollar dollars price priced cost costs
""".split())
CJK_STOPWORDS = frozenset("我的你们有吗呢吧啊想要找买个一些请给看下以上以内的是在和码号色元")
# Index and query terms: plural-stemmed Latin words (hyphenated ones also split and joined), CJK characters and
# bigrams, jieba words of 3+ characters; stop words are dropped from queries only.
search_tokens = Tokenizer(words=re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*"), stem=plural_stem, stopwords=STOPWORDS,
                          cjk_stopwords=CJK_STOPWORDS, compounds=True, cjk_grams=True, segment="runs")


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


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Edits between two words, two adjacent letters swapped counting as one ("kettel" is one from "kettle"; the
    optimal string alignment distance)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, before[j - 2] + 1)
            current.append(value)
        before, previous = previous, current
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
    # A query word found in what the product IS (title, tags, brand, category, options) scores this much more, on
    # top of its BM25 over all its text: "sneakers" ranks sneakers above socks "cushioned for sneakers" (the loose
    # neighbour then falls under STRONG_MATCH and is shown as an alternative). Chosen on the tuning parts only.
    identity: float = 1.0
    # A query word's translation learnt from the catalog's own bilingual titles (`TitleTranslations`: "拖鞋" ->
    # "slipper") counts this much of the word: an English-only product is found by a Chinese query by its words,
    # not only by its vector. Set a priori (not tuned); 0 = off.
    translation: float = 0.5


def _title_terms(titles: Sequence[str]) -> tuple[set[str], set[str]]:
    """The Latin and the Chinese terms of a product's titles (words of 3+ letters; CJK words and bigrams)."""
    terms = search_tokens(" ".join(titles), query=True)
    latin = {t for t in terms if t.isascii() and len(t) >= 3 and not t.isdigit()}
    cjk = {t for t in terms if len(t) >= 2 and CJK_RUN.fullmatch(t)}
    return latin, cjk


class TitleTranslations:
    """Word translations between English and Chinese learnt from the products whose titles have both: a Chinese
    term and an English term are translations when they mostly occur in the same bilingual titles (Dice
    coefficient of their title counts at least `MIN_DICE`, together in at least `MIN_TOGETHER` titles). Counts are
    kept per product, so an upsert or a removal updates them without a rebuild."""

    MIN_DICE = 0.6
    MIN_TOGETHER = 3
    BEST = 2  # translations kept per term

    def __init__(self) -> None:
        self._of: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        self._count: Counter[str] = Counter()
        self._together: dict[str, Counter[str]] = {}

    def _change(self, latin: frozenset[str], cjk: frozenset[str], step: int) -> None:
        for term in (*latin, *cjk):
            self._count[term] += step
            if self._count[term] <= 0:
                del self._count[term]
        for z in cjk:
            for e in latin:
                for a, b in ((z, e), (e, z)):
                    row = self._together.setdefault(a, Counter())
                    row[b] += step
                    if row[b] <= 0:
                        del row[b]
                        if not row:
                            del self._together[a]

    def add(self, product_id: int, terms: tuple[set[str], set[str]]) -> None:
        """Count a product's title terms (`_title_terms`, computed by the caller outside any lock)."""
        self.remove(product_id)
        latin, cjk = terms
        if latin and cjk:
            self._of[product_id] = (frozenset(latin), frozenset(cjk))
            self._change(self._of[product_id][0], self._of[product_id][1], 1)

    def remove(self, product_id: int) -> None:
        known = self._of.pop(product_id, None)
        if known is not None:
            self._change(known[0], known[1], -1)

    def of(self, term: str) -> list[str]:
        """The term's translations, best first (none for a term that is not in a bilingual title)."""
        row = self._together.get(term)
        if not row:
            return []
        count = self._count[term]
        scored = sorted(((2 * together / (count + self._count[other]), other) for other, together in row.items()
                         if together >= self.MIN_TOGETHER), reverse=True)
        return [other for dice, other in scored[:self.BEST] if dice >= self.MIN_DICE]


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
        self._bm25 = Bm25(k1=1.2, b=0.75, dtype=np.float64)  # documents are rows
        self._identity = Bm25(k1=1.2, b=0.75, dtype=np.float64)  # titles, tags, brand, category, options only
        self._deletes: dict[str, set[str]] = {}
        self._multilingual: Vector = np.zeros((0, 0), np.float32)
        self._free: list[int] = []
        self._cached_arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None
        self.translations = TitleTranslations()

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

    @staticmethod
    def identity_terms(product: IndexedProduct) -> list[str]:
        return search_tokens(" ".join([*product.titles, *product.tags, product.brand, *product.category,
                                       *product.attributes]))

    def _add_term(self, term: str) -> None:
        if term.isascii() and len(term) >= 4 and not term.isdigit():
            for deleted in _deletes(term):
                self._deletes.setdefault(deleted, set()).add(term)
            self._deletes.setdefault(term, set()).add(term)

    def upsert(self, products: Sequence[IndexedProduct], vectors: Vector | None = None) -> None:
        """Add or replace products; `vectors` rows (same order) are their embeddings, if any."""
        prepared = [(p, self.document_terms(p), self.identity_terms(p), _title_terms(p.titles)) for p in products]
        with self._lock:
            self._cached_arrays = None
            self.remove([p.product_id for p in products])
            for i, (product, terms, identity, title_terms) in enumerate(prepared):
                row = self._free.pop() if self._free else len(self._ids)
                if row == len(self._ids):
                    self._ids.append(product.product_id)
                    self._versions.append(product.version)
                self._ids[row] = product.product_id
                self._versions[row] = product.version
                self._row_of[product.product_id] = row
                for term in self._bm25.add(row, terms):
                    self._add_term(term)
                self._identity.add(row, identity)
                self.translations.add(product.product_id, title_terms)
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
                self._bm25.remove(row)
                self._identity.remove(row)
                self.translations.remove(product_id)
                if self._multilingual.shape[0] > row:
                    self._multilingual[row] = 0
                self._free.append(row)

    def expand(self, term: str) -> list[tuple[str, float]]:
        """The term itself when known, else typo corrections or a two-word split, with their weights."""
        known = self._bm25.postings
        if term in known:
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
                 if c in known and _edit_distance(term, c, limit) <= limit]
        return found or self._split(term)

    def _split(self, term: str) -> list[tuple[str, float]]:
        known = self._bm25.postings
        for cut in range(2, len(term) - 1):
            left, right = plural_stem(term[:cut]), plural_stem(term[cut:])
            if term[:cut] in known and right in known:
                return [(term[:cut], self.weights.fuzzy), (right, self.weights.fuzzy)]
            if left in known and right in known:
                return [(left, self.weights.fuzzy), (right, self.weights.fuzzy)]
        return []

    def lexical(self, query: str, *, extra_terms: Sequence[str] = ()) -> tuple[Ids, Scores]:
        """(sorted rows, BM25) over the query's terms (typo-corrected), rows without a term left out. A term counts
        as often as the query has it, a corrected one less."""
        with self._lock:
            wanted: Counter[str] = Counter()
            weight: dict[str, float] = {}
            terms = [*search_tokens(query, query=True), *extra_terms]
            for term in terms:
                for known, w in self.expand(term):
                    wanted[known] += 1
                    weight[known] = max(weight.get(known, 0.0), w)
            if self.weights.translation:
                # Each translation once, at the translation weight; a word the query has itself keeps its own.
                for translated in dict.fromkeys(t for term in terms for t in self.translations.of(term)):
                    if translated not in wanted and translated in self._bm25.postings:
                        wanted[translated] = 1
                        weight[translated] = self.weights.translation
            parts = {term: self._bm25.term_scores(term, weight[term] * times) for term, times in wanted.items()}
            rows, scores = sum_scores(list(parts.values()))
            # Single Chinese characters only count where they cover half the query's characters (or a word
            # matched too): otherwise "飞行汽车" would find anything with 车 or 行.
            chars = [t for t in wanted if len(t) == 1 and CJK_RUN.fullmatch(t)]
            if chars and len(rows):
                char_hits = np.zeros(len(rows), np.int64)
                word_hit = np.zeros(len(rows), bool)
                for term, (hit, _scores) in parts.items():
                    where = np.searchsorted(rows, hit)
                    if term in chars:
                        char_hits[where] += 1
                    else:
                        word_hit[where] = True
                keep = word_hit | (2 * char_hits >= len(chars))
                rows, scores = rows[keep], scores[keep]
            if self.weights.identity and len(rows):
                # Only rows already found count (identity terms are a part of each document's terms).
                found, extra = sum_scores([self._identity.term_scores(term, weight[term] * times)
                                           for term, times in wanted.items()])
                where = np.searchsorted(rows, found)
                inside = (where < len(rows)) & (rows[np.minimum(where, len(rows) - 1)] == found)
                scores = scores.copy()
                scores[where[inside]] += self.weights.identity * extra[inside]
            return rows, scores

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
            lexical_rows, lexical_scores = self.lexical(query, extra_terms=extra_terms) if mode != "dense" else _NO_ROWS
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
            lex[lexical_rows] = lexical_scores
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
_NO_ROWS = (np.zeros(0, np.int64), np.zeros(0, np.float64))


def _multilingual(rows: Vector) -> Vector:
    """The USE half of 896-d rows, renormalised (same as nlu.embedder.Embedder.multilingual_part)."""
    part = rows[..., MINILM_DIM:] if rows.shape[-1] > MINILM_DIM else rows
    norm = np.linalg.norm(part, axis=-1, keepdims=True)
    return np.asarray(part / np.where(norm == 0, 1, norm), np.float32)

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

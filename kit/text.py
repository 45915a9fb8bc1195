"""Text for search: normalising, tokenising (Latin words, CJK characters and bigrams, jieba words), BM25, e-mail.

Product search and the FAQ index each configure one `Tokenizer` and one `Bm25` with their own choices.
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

# CJK ideographs (unified, extension A, compatibility).
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

# An e-mail address as a whole value (use `fullmatch`): something, @, something with a dot, no spaces.
EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EMAIL_ADDRESS_PATTERN = rf"^{EMAIL_ADDRESS.pattern}$"  # the same, for pydantic's `pattern=`
# An e-mail address inside a sentence (use `finditer`): stricter about its characters and top-level domain, so
# the words around it stay out; everything it finds is an `EMAIL_ADDRESS`.
EMAIL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def is_email_address(text: str) -> bool:
    return EMAIL_ADDRESS.fullmatch(text) is not None


def has_cjk(text: str) -> bool:
    return CJK_RUN.search(text) is not None


def fold(text: str) -> str:
    """NFKC and case folding: full-width letters, ligatures and case do not matter."""
    return unicodedata.normalize("NFKC", text).casefold()


def plural_stem(word: str) -> str:
    """Plural to singular, the same way for queries and documents ("hoodies", "hoodie" -> "hoody")."""
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("ie"):
        word = word[:-2] + "y"
    return word


def suffix_stem(word: str) -> str:
    """Light English stemming, so "returns" / "returned" / "returning" meet "return"."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + keep
    return word


_segmenter: Any = None
_segmenter_lock = threading.Lock()


def jieba_words(text: str) -> list[str]:
    """jieba's search-mode words (longer words and the shorter words inside them); jieba loads on first use."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _segmenter = jieba
    words: list[str] = _segmenter.lcut_for_search(text)
    return words


@dataclass(frozen=True)
class Tokenizer:
    """Terms of a text for BM25: stemmed Latin words, then CJK characters and bigrams and/or jieba words.

    `segment`: "runs" = jieba over each CJK run of 3+ characters, words of 3+ characters kept (the shorter ones
    are among the grams), a word made only of `cjk_stopwords` characters is a stop word; "text" = jieba over the
    whole text, words holding CJK kept, a word in `cjk_stopwords` is a stop word; None = no jieba.
    Stop words are dropped from queries, and from documents too when `stop_in_documents`.
    """

    words: re.Pattern[str]  # Latin words of the normalised text
    stem: Callable[[str], str]
    stopwords: frozenset[str] = frozenset()
    cjk_stopwords: frozenset[str] = frozenset()
    normalise: Callable[[str], str] = str.lower
    stop_in_documents: bool = False
    compounds: bool = False  # a hyphenated word (or one with an apostrophe) also gives its parts and joined form
    cjk_grams: bool = False  # every CJK run gives its characters and bigrams
    segment: Literal["runs", "text"] | None = None

    def __call__(self, text: str, *, query: bool = False) -> list[str]:
        drop = query or self.stop_in_documents
        text = self.normalise(text)
        words = self.words.findall(text)
        out = [self.stem(w) for w in words if not (drop and w in self.stopwords)]
        if self.cjk_grams:
            for run in CJK_RUN.findall(text):
                out.extend(self._grams(run, drop))
        if self.compounds:
            for word in words:
                if "-" in word or "'" in word:
                    parts = [p for p in re.split(r"[-']", word) if p]
                    out.extend(self.stem(p) for p in parts if not (drop and p in self.stopwords))
                    out.append(self.stem("".join(parts)))
        if self.segment == "runs":
            for run in CJK_RUN.findall(text):
                if len(run) > 2:
                    out.extend(w for w in jieba_words(run) if len(w) > 2
                               and not (drop and all(c in self.cjk_stopwords for c in w)))
        elif self.segment == "text" and has_cjk(text):
            for word in jieba_words(text):
                word = word.strip()
                if word and has_cjk(word) and not (drop and word in self.cjk_stopwords):
                    out.append(word)
        return out

    def _grams(self, run: str, drop: bool) -> list[str]:
        stop = self.cjk_stopwords if drop else frozenset()
        chars = [c for c in run if c not in stop] if len(run) > 1 else list(run)
        return chars + [run[i:i + 2] for i in range(len(run) - 1) if run[i] not in stop and run[i + 1] not in stop]


Ids = npt.NDArray[np.int64]
Scores = npt.NDArray[np.floating[Any]]


class Bm25:
    """Okapi BM25 over documents added and removed in place (postings per term; no rebuild).

    A query reads numpy arrays of its terms' postings only, built on first use after a change. `dtype` is the
    precision of the scores (float32 halves the arrays; float64 for scores rounded and compared later).
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75, *, dtype: type[np.floating[Any]] = np.float32) -> None:
        self.k1, self.b, self.dtype = k1, b, dtype
        self.postings: dict[str, dict[int, int]] = {}  # term -> {document: term frequency}
        self.lengths: dict[int, int] = {}
        self.terms_of: dict[int, tuple[str, ...]] = {}
        self.total_length = 0
        self._arrays: dict[str, tuple[Ids, Scores, Scores]] = {}  # term -> (documents, frequencies, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, doc: int, terms: Iterable[str]) -> list[str]:
        """Index (or re-index) a document; returns the terms no other document holds."""
        self.remove(doc)
        counts = Counter(terms)
        new = []
        for term, tf in counts.items():
            docs = self.postings.get(term)
            if docs is None:
                docs = self.postings[term] = {}
                new.append(term)
            docs[doc] = tf
            self._arrays.pop(term, None)
        length = sum(counts.values())
        self.lengths[doc] = length
        self.terms_of[doc] = tuple(counts)
        self.total_length += length
        return new

    def remove(self, doc: int) -> None:
        length = self.lengths.pop(doc, None)
        if length is None:
            return
        self.total_length -= length
        for term in self.terms_of.pop(doc, ()):
            docs = self.postings.get(term)
            if docs is not None and docs.pop(doc, None) is not None:
                self._arrays.pop(term, None)
                if not docs:
                    del self.postings[term]

    def _posting(self, term: str) -> tuple[Ids, Scores, Scores] | None:
        arrays = self._arrays.get(term)
        if arrays is None:
            docs = self.postings.get(term)
            if not docs:
                return None
            ids = np.fromiter(docs.keys(), np.int64, len(docs))
            tfs = np.fromiter(docs.values(), self.dtype, len(docs))
            lengths = np.fromiter((self.lengths[d] for d in docs), self.dtype, len(docs))
            arrays = self._arrays[term] = (ids, tfs, lengths)
        return arrays

    def term_scores(self, term: str, weight: float = 1.0) -> tuple[Ids, Scores]:
        """(documents holding the term, their BM25 share for it x `weight`), in no particular order."""
        posting = self._posting(term)
        if posting is None:
            return np.zeros(0, np.int64), np.zeros(0, self.dtype)
        docs, tfs, lengths = posting
        n = len(self.lengths)
        average = self.total_length / n or 1.0
        idf = math.log(1.0 + (n - len(docs) + 0.5) / (len(docs) + 0.5)) * weight
        norm = tfs + self.k1 * (1.0 - self.b + self.b * lengths / average)
        return docs, ((idf * (self.k1 + 1.0)) * tfs / norm).astype(self.dtype)

    def scores(self, query: Iterable[str] | dict[str, float]) -> tuple[Ids, Scores]:
        """(sorted documents, their BM25 scores) for the documents holding a query term. A dict gives each term a
        weight (its count, a typo's discount); terms of a plain query count once."""
        weights = query if isinstance(query, dict) else dict.fromkeys(set(query), 1.0)
        found = [self.term_scores(term, weight) for term, weight in weights.items()]
        return sum_scores(found, self.dtype)

    def as_dict(self, query: Iterable[str] | dict[str, float]) -> dict[int, float]:
        docs, values = self.scores(query)
        return {int(d): float(v) for d, v in zip(docs, values, strict=True)}


def sum_scores(parts: list[tuple[Ids, Scores]], dtype: type[np.floating[Any]] = np.float64) -> tuple[Ids, Scores]:
    """Per-term (documents, scores) summed per document: (sorted documents, totals)."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, dtype)
    if len(parts) == 1:
        order = np.argsort(parts[0][0])
        return parts[0][0][order], parts[0][1][order].astype(dtype)
    unique, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    return unique, np.bincount(inverse, weights=np.concatenate([p[1] for p in parts])).astype(dtype)

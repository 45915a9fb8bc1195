"""In-memory hybrid FAQ index: faiss (ids per entry row, no rebuilds) fused with BM25.

Rows stored per entry (faiss id = entry id * SLOTS + slot): one per phrasing (slots 0..61), the mean of
the answer's paragraph embeddings (slot 62) and the question+answer text (slot 63). Small indexes keep
exact float32 rows in `IndexIDMap2(IndexFlatIP)`; from `ann_from_rows` rows on, the rows move once into
an `IndexIVFScalarQuantizer` (8-bit codes, inverted lists with a hashtable direct map), which adds,
replaces and removes ids in place like the flat one. Scoring is numpy over the candidates' rows only.
"""
# Over 500 lines: the vector rows, their move to IVF and the fused scoring share one id layout (entry x SLOTS).
from __future__ import annotations

import asyncio
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import faiss
import numpy as np
import numpy.typing as npt

from kit.text import Bm25
from knowledge_base.text import tokens

MINILM_DIM = 384
DIM = 896
# faiss id = entry_id * SLOTS + row; the last two slots are the answer and the question+answer rows.
SLOTS = 64
ROOT2 = np.float32(math.sqrt(2.0))
ANSWER_SLOT = SLOTS - 2
DOC_SLOT = SLOTS - 1
MAX_PHRASINGS = SLOTS - 2
MAX_PARAGRAPHS = 16
EXTRA_ROWS = 2  # stored per entry after the phrasings: answer (paragraph mean), question+answer
COPY_CHUNK_ROWS = 2_048  # rows copied per event-loop turn when a serving index moves to IVF (~7 MB)
Decision = Literal["answer", "suggest", "none"]
Vector = npt.NDArray[np.float32]
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Each call touches a few hundred rows: OpenMP threads cost more than they bring (on a busy 2-core box an
# IVF add took ~57 ms with the default threads, well under 1 ms with one). faiss is only used here.
faiss.omp_set_num_threads(int(os.environ.get("SHOPTALK_FAISS_THREADS", "1")))
_FAISS: Any = faiss


@dataclass(frozen=True)
class Weights:
    """Fusion weights and calibration.

    English fusion (document, answer, lexical, k1, b, saturation): chosen on the StackFAQ dev split (30 % of
    the queries, seed 13) by `python bench/kb_retrieval.py --fit` (lowest dev softmax cross-entropy).
    The multilingual fusion, both phrasing means, the translation agreement, the calibration and the
    answer/suggest thresholds: fitted by the same command on the demo FAQ's dev paraphrases
    (bench/data/kb_dev_*.json; best dev MRR, then P@1), never on the held-out files.
    """

    # English to English: MiniLM's share of the dense cosine (the rest is USE); other pairs use USE only.
    english_share: float = 1.0
    document: float = 0.1  # cosine to the question+answer row, added to the phrasing cosine
    answer: float = 0.3  # mean cosine to the answer's paragraphs
    lexical: float = 0.7  # saturated BM25 over phrasings + answer
    k1: float = 0.6
    b: float = 0.75
    saturation: float = 64.0  # bm25 / (bm25 + saturation)
    # phrasing cosine = (1 - phrasing_mean) * best phrasing + phrasing_mean * mean over the phrasings
    # (demo dev paraphrases: StackFAQ entries have one phrasing, so it cannot choose this)
    phrasing_mean: float = 0.25
    # The same weights for every other pair (USE cosines; Chinese and cross-lingual questions),
    # chosen on the demo FAQ's dev paraphrases (StackFAQ is English only).
    multilingual_document: float = 0.0
    multilingual_answer: float = 0.1
    multilingual_lexical: float = 0.5
    multilingual_saturation: float = 16.0
    multilingual_phrasing_mean: float = 0.4
    # A translation group's score: its best entry's fused score less this share of the gap to its next
    # translation (translations that agree are more evidence); a group with one applicable entry: its score.
    translation_agreement: float = 0.5
    # calibrated score = sigmoid(slope * (fused - midpoint) + margin_slope * (fused - next group's fused))
    slope: float = 8.137
    midpoint: float = 0.8223
    multilingual_slope: float = 5.396
    multilingual_midpoint: float = 0.9024
    margin_slope: float = 15.762
    margin_cap: float = 0.3  # margins above this count as this
    lone_margin: float = 0.15  # a match with no other group to compare (tiny FAQ): half the cap, no evidence
    answer_at: float = 0.44  # lowest threshold with dev answer precision >= 0.95
    suggest_at: float = 0.08


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


def answer_paragraphs(answer: str) -> list[str]:
    """The answer split at blank lines (at most MAX_PARAGRAPHS; the rest joins the last one)."""
    parts = [p.strip() for p in _PARAGRAPH_BREAK.split(answer) if p.strip()] or [answer]
    if len(parts) > MAX_PARAGRAPHS:
        parts = [*parts[: MAX_PARAGRAPHS - 1], "\n\n".join(parts[MAX_PARAGRAPHS - 1:])]
    return parts


def texts_to_embed(questions: tuple[str, ...] | list[str], answer: str) -> list[str]:
    """Texts embedded per entry: every phrasing, each answer paragraph, then the question+answer text."""
    return [*questions[:MAX_PHRASINGS], *answer_paragraphs(answer), document_text(questions, answer)]


def fold_rows(rows: Vector, questions: int) -> Vector:
    """Embeddings of `texts_to_embed` -> stored rows: phrasings, paragraph mean, question+answer."""
    questions = min(questions, MAX_PHRASINGS)
    if rows.ndim != 2 or rows.shape[1] != DIM or rows.shape[0] < questions + 2:
        raise ValueError(f"expected at least {questions + 2} rows of {DIM}, got {rows.shape}")
    answer = rows[questions:-1].mean(axis=0, keepdims=True)
    return np.ascontiguousarray(np.vstack([rows[:questions], answer, rows[-1:]]), dtype=np.float32)


def stored_rows(questions: int) -> int:
    return min(questions, MAX_PHRASINGS) + EXTRA_ROWS


def multilingual_query(embedding: Vector) -> Vector:
    """Query row that scores only the USE half, so a dot product is (USE cosine) / sqrt(2)."""
    out = np.zeros(DIM, np.float32)
    use = embedding[MINILM_DIM:]
    norm = float(np.linalg.norm(use)) or 1.0
    out[MINILM_DIM:] = use / norm
    return out


def group_scores(fused: npt.NDArray[np.float64], group: npt.NDArray[np.int64],
                 agreement: float) -> npt.NDArray[np.float64]:
    """Per entry, its group's score: the group's best fused score less `agreement` x (best - next best)."""
    if len(fused) == 0:
        return fused
    order = np.lexsort((-fused, group))  # by group, best first
    in_order = group[order]
    lead = np.ones(len(order), bool)
    lead[1:] = in_order[1:] != in_order[:-1]
    best = np.zeros(int(group.max()) + 1)
    best[in_order[lead]] = fused[order[lead]]
    out: npt.NDArray[np.float64] = best[group]
    if agreement:
        runner = np.flatnonzero(~lead)
        runner = runner[lead[runner - 1]]  # the second entry of each group that has one
        gap = np.zeros_like(best)
        gap[in_order[runner]] = best[in_order[runner]] - fused[order[runner]]
        out = out - agreement * gap[group]
    return out


class Scored(NamedTuple):
    score: float  # calibrated
    fused: float
    dense: float
    lexical: float
    entry_id: int
    best_row: int


@dataclass
class _Stored:
    entry: IndexedEntry
    rows: int  # phrasings stored
    ids: npt.NDArray[np.int64]  # faiss ids: phrasings, answer, question+answer
    english: bool
    scoped: bool  # has countries or channels


class IvfBuild:
    """A move to IVF-SQ8 under way: a copy of the flat rows taken in chunks, and the changes made since it began
    (replayed onto the new index at the end)."""

    def __init__(self, ids: npt.NDArray[np.int64], *, nlist: int, nprobe: int, train_rows: int) -> None:
        self.ids = ids
        self.rows: Vector = np.empty((len(ids), DIM), np.float32)
        self.copied = np.zeros(len(ids), bool)
        self.nlist, self.nprobe, self.train_rows = nlist, nprobe, train_rows
        self.journal: list[tuple[Vector | None, npt.NDArray[np.int64]]] = []  # (rows, ids) adds; (None, ids) removals
        self.removed: set[int] = set()

    def build(self) -> Any:
        """Train and fill the IVF index from the copy; touches no shared state (runs on a worker thread)."""
        rows, ids = self.rows[self.copied], self.ids[self.copied]
        sample = rows[np.random.default_rng(0).permutation(len(rows))[: self.train_rows]]
        nlist = max(1, min(self.nlist, len(sample) // 39))  # faiss wants ~39 training rows per list
        ivf: Any = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(DIM), DIM, nlist,
                                                 faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        ivf.train(sample)
        ivf.set_direct_map_type(_FAISS.DirectMap.Hashtable)  # removals and reconstruct by id
        ivf.nprobe = min(self.nprobe, nlist)
        ivf.add_with_ids(rows, ids)
        return ivf


class VectorRows:
    """faiss rows by id: exact flat storage, moved once to IVF + 8-bit codes when it grows large.

    With `build_inline` (scripts, tests) the move happens inside the `add` that crosses `ann_from_rows`;
    without it (a serving process) that `add` only sets `ivf_due`, and the owner runs `HybridIndex.move_to_ivf`:
    `begin_ivf`, `copy_rows` in chunks (on the event loop), `IvfBuild.build` (on a worker thread) and
    `finish_ivf` (replays the changes made meanwhile, swaps the index in one assignment). Exact search
    serves until the swap.
    """

    def __init__(self, *, ann_from_rows: int = 30_000, nlist: int = 256, nprobe: int = 24,
                 train_rows: int = 16_384, build_inline: bool = True) -> None:
        self.ann_from_rows, self.nlist, self.nprobe, self.train_rows = ann_from_rows, nlist, nprobe, train_rows
        self.build_inline = build_inline
        self.index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))  # SWIG objects: typed loosely
        self.approximate = False
        self.building: IvfBuild | None = None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def ivf_due(self) -> bool:
        return not self.approximate and self.building is None and self.ntotal >= self.ann_from_rows

    def add(self, rows: Vector, ids: npt.NDArray[np.int64]) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.index.add_with_ids(rows, ids)
        if self.building is not None:
            self.building.journal.append((rows.copy(), ids.copy()))
        if self.build_inline and self.ivf_due:
            self.to_ivf()

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
        if self.building is not None:
            self.building.journal.append((None, ids.copy()))
            self.building.removed.update(int(i) for i in ids)

    def reconstruct(self, ids: npt.NDArray[np.int64]) -> Vector:
        out: Vector = self.index.reconstruct_batch(ids)
        return out

    def search(self, queries: Vector, k: int) -> npt.NDArray[np.int64]:
        if self.ntotal == 0:
            return np.zeros((len(queries), 0), np.int64)
        _scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, self.ntotal))
        found: npt.NDArray[np.int64] = ids
        return found

    def begin_ivf(self) -> IvfBuild:
        """Start a move: note the ids now stored and journal every change from here on."""
        if self.approximate or self.building is not None:
            raise RuntimeError("the move to IVF has already started")
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        self.building = IvfBuild(ids, nlist=self.nlist, nprobe=self.nprobe, train_rows=self.train_rows)
        return self.building

    def copy_rows(self, build: IvfBuild, start: int, stop: int) -> None:
        """Copy rows [start, stop) of the ids noted at the start (those removed since are skipped: the flat
        index keeps changing and serving between chunks; the journal carries the changes)."""
        ids = build.ids[start:stop]
        keep = ~np.isin(ids, np.fromiter(build.removed, np.int64, len(build.removed))) if build.removed else \
            np.ones(len(ids), bool)
        if keep.any():
            build.rows[start:stop][keep] = self.index.reconstruct_batch(np.ascontiguousarray(ids[keep]))
        build.copied[start:stop] = keep

    def finish_ivf(self, build: IvfBuild, ivf: Any) -> None:
        """Replay the changes made during the build onto `ivf`, then serve from it."""
        if build is not self.building:
            raise RuntimeError("this IVF build is not the one under way")
        for rows, ids in build.journal:
            ivf.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
            if rows is not None:
                ivf.add_with_ids(rows, ids)
        self.index, self.approximate, self.building = ivf, True, None

    def abandon_ivf(self) -> None:
        self.building = None

    def to_ivf(self) -> None:
        """The whole move at once (blocks the caller for the build: seconds at 30,000 rows)."""
        build = self.begin_ivf()
        self.copy_rows(build, 0, len(build.ids))
        self.finish_ivf(build, build.build())

    def memory_bytes(self) -> int:
        """Vector storage: codes (4 bytes a dimension flat, 1 in IVF-SQ8) plus the id and its map entry."""
        per_row = (DIM if self.approximate else DIM * 4) + 8 + 16
        centroids = self.nlist * DIM * 4 if self.approximate else 0
        return self.ntotal * per_row + centroids


class HybridIndex:
    """Dense rows in faiss (see VectorRows) + BM25 over each entry's phrasings and answer."""

    def __init__(self, weights: Weights | None = None, *, candidates: int = 100,
                 ann_from_rows: int = 30_000, build_inline: bool = True) -> None:
        self.weights = weights or Weights()
        self.candidates = candidates
        self.vectors = VectorRows(ann_from_rows=ann_from_rows, build_inline=build_inline)
        self.entries: dict[int, _Stored] = {}
        self.groups: dict[str, set[int]] = {}
        self.lexical = Bm25(self.weights.k1, self.weights.b)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def version_of(self, entry_id: int) -> int | None:
        stored = self.entries.get(entry_id)
        return None if stored is None else stored.entry.version

    def upsert(self, entry: IndexedEntry, vectors: Vector) -> None:
        """Add or replace an entry; `vectors` = `fold_rows(...)`: phrasings, answer row, question+answer row."""
        questions = entry.questions[:MAX_PHRASINGS]
        if vectors.shape != (stored_rows(len(entry.questions)), DIM):
            raise ValueError(f"expected {(stored_rows(len(entry.questions)), DIM)} vectors, got {vectors.shape}")
        self.remove(entry.entry_id)
        base = entry.entry_id * SLOTS
        ids = np.array([base + i for i in range(len(questions))] + [base + ANSWER_SLOT, base + DOC_SLOT],
                       dtype=np.int64)
        self.vectors.add(vectors, ids)
        self.lexical.add(entry.entry_id, tokens(" ".join(questions) + "\n" + entry.answer))
        self.entries[entry.entry_id] = _Stored(entry, len(questions), ids, entry.language == "en",
                                               bool(entry.countries or entry.channels))
        self.groups.setdefault(entry.group_key, set()).add(entry.entry_id)

    def remove(self, entry_id: int) -> None:
        stored = self.entries.pop(entry_id, None)
        if stored is None:
            return
        self.vectors.remove(stored.ids)
        self.lexical.remove(entry_id)
        group = self.groups.get(stored.entry.group_key)
        if group is not None:
            group.discard(entry_id)
            if not group:
                del self.groups[stored.entry.group_key]

    def memory_bytes(self) -> int:
        return self.vectors.memory_bytes()

    async def move_to_ivf(self) -> None:
        """The one-off move to IVF-SQ8 without blocking the event loop: the build runs on a worker thread
        (faiss releases the GIL) while exact search serves and edits go on; the index swaps when done."""
        build = self.vectors.begin_ivf()
        try:
            for start in range(0, len(build.ids), COPY_CHUNK_ROWS):  # the copy in chunks, between other work
                self.vectors.copy_rows(build, start, start + COPY_CHUNK_ROWS)
                await asyncio.sleep(0)
            ivf = await asyncio.to_thread(build.build)
        except BaseException:
            self.vectors.abandon_ivf()
            raise
        self.vectors.finish_ivf(build, ivf)

    # ---------- search ----------
    def _candidates(self, queries: Vector, lexical_ids: npt.NDArray[np.int64], lexical: Vector) -> set[int]:
        """Entries near the query (faiss rows, best BM25) and every translation of their groups."""
        found = self.vectors.search(queries, self.candidates * 2)
        out = {int(i) // SLOTS for i in found.reshape(-1) if i >= 0}
        if len(lexical_ids) > self.candidates:
            top = np.argpartition(-lexical, self.candidates)[: self.candidates]
            out.update(int(i) for i in lexical_ids[top])
        else:
            out.update(int(i) for i in lexical_ids)
        for entry_id in list(out):  # a group's score reads all its translations
            stored = self.entries.get(entry_id)
            if stored is not None:
                out.update(self.groups.get(stored.entry.group_key, ()))
        return out

    def score_arrays(self, query_text: str, embedding: Vector, *, language: str, country: str | None,
                     channel: str | None) -> dict[str, npt.NDArray[Any]]:
        """Every candidate entry (that applies) with its score parts, as arrays aligned on `entry_id`.

        `dense` / `dense_mean`: best / mean phrasing cosine; `bm25`: raw BM25; `fused`: the entry's score;
        `group_fused`: its translation group's score (see Weights.translation_agreement); `group`: group index.
        """
        embedding = np.asarray(embedding, dtype=np.float32).reshape(-1)
        multilingual = multilingual_query(embedding)
        lexical_ids, lexical_scores = self.lexical.scores(tokens(query_text))
        candidates = self._candidates(np.vstack([embedding, multilingual]), lexical_ids, lexical_scores)
        stored = [s for s in (self.entries.get(c) for c in sorted(candidates))
                  if s is not None and (not s.scoped or s.entry.applies_to(country, channel))]
        if not stored:
            empty_f = np.zeros(0, np.float64)
            empty_i = np.zeros(0, np.int64)
            return {"entry_id": empty_i, "best_row": empty_i, "fused": empty_f, "group_fused": empty_f,
                    "group": empty_i, "score": empty_f, "dense": empty_f, "dense_mean": empty_f,
                    "document": empty_f, "answer": empty_f, "lexical": empty_f, "bm25": empty_f, "english": empty_i}
        parts = self._dense_parts(stored, embedding, multilingual, language)
        entry_ids = np.array([s.entry.entry_id for s in stored], np.int64)
        bm25 = np.zeros(len(stored), np.float64)
        if len(lexical_ids):
            at = np.minimum(np.searchsorted(lexical_ids, entry_ids), len(lexical_ids) - 1)
            bm25 = np.where(lexical_ids[at] == entry_ids, lexical_scores[at].astype(np.float64), 0.0)
        english = parts["english"].astype(bool)
        fused, lexical = self.fuse(parts["dense"], parts["dense_mean"], parts["document"], parts["answer"], bm25,
                                   english)
        group = np.unique([s.entry.group_key for s in stored], return_inverse=True)[1].astype(np.int64)
        group_fused = group_scores(fused, group, self.weights.translation_agreement)
        score = self.calibrate_many(group_fused, english)
        return {**parts, "entry_id": entry_ids, "fused": fused, "group_fused": group_fused, "group": group,
                "score": score, "lexical": lexical, "bm25": bm25}

    def _dense_parts(self, stored: list[_Stored], embedding: Vector, multilingual: Vector,
                     language: str) -> dict[str, npt.NDArray[Any]]:
        """Cosines of the candidates' rows: best and mean phrasing, answer row, question+answer row."""
        w = self.weights
        counts = np.array([s.rows + EXTRA_ROWS for s in stored], np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = self.vectors.reconstruct(np.concatenate([s.ids for s in stored]))
        # Rows are [MiniLM, USE] / sqrt(2); each half's dot with a unit half is its cosine / sqrt(2).
        # einsum, not `@`: numpy's BLAS spreads a gemv over its threads, which cost ~3x the CPU here.
        sims = np.einsum("ij,j->i", rows, multilingual) * ROOT2
        english = np.array([s.english for s in stored]) & (language == "en")
        if english.any() and w.english_share > 0:
            english_query = embedding[:MINILM_DIM] / (float(np.linalg.norm(embedding[:MINILM_DIM])) or 1.0)
            minilm = np.einsum("ij,j->i", rows[:, :MINILM_DIM], english_query) * ROOT2
            row_english = np.repeat(english, counts)
            sims = np.where(row_english, w.english_share * minilm + (1.0 - w.english_share) * sims, sims)
        sims = sims.astype(np.float64)
        phrasing = np.ones(len(sims), bool)
        phrasing[starts + counts - 1] = False
        phrasing[starts + counts - 2] = False
        masked = np.where(phrasing, sims, -np.inf)
        dense = np.maximum.reduceat(masked, starts)
        dense_mean = np.add.reduceat(np.where(phrasing, sims, 0.0), starts) / (counts - EXTRA_ROWS)
        segment = np.repeat(np.arange(len(stored)), counts)
        hits = np.flatnonzero(masked == dense[segment])
        _first, first = np.unique(segment[hits], return_index=True)
        best_row = hits[first] - starts
        return {"dense": dense, "dense_mean": dense_mean, "answer": sims[starts + counts - 2],
                "document": sims[starts + counts - 1], "best_row": best_row.astype(np.int64),
                "english": english.astype(np.int64)}

    def fuse(self, dense: npt.NDArray[np.float64], dense_mean: npt.NDArray[np.float64],
             document: npt.NDArray[np.float64], answer: npt.NDArray[np.float64], bm25: npt.NDArray[np.float64],
             english: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(fused score, saturated BM25) per entry: English pairs with the English weights, others multilingual."""
        w = self.weights
        saturation = np.where(english, w.saturation, w.multilingual_saturation)
        lexical = bm25 / (bm25 + saturation)
        mean_share = np.where(english, w.phrasing_mean, w.multilingual_phrasing_mean)
        fused = ((1.0 - mean_share) * dense + mean_share * dense_mean
                 + np.where(english, w.document, w.multilingual_document) * document
                 + np.where(english, w.answer, w.multilingual_answer) * answer
                 + np.where(english, w.lexical, w.multilingual_lexical) * lexical)
        return fused, lexical

    def score_entries(self, query_text: str, embedding: Vector, *, language: str, country: str | None,
                      channel: str | None) -> list[Scored]:
        """Every candidate entry with its fused and calibrated score (no margin term: that needs groups)."""
        a = self.score_arrays(query_text, embedding, language=language, country=country, channel=channel)
        return [Scored(float(s), float(f), float(d), float(x), int(e), int(b)) for s, f, d, x, e, b in
                zip(a["score"], a["fused"], a["dense"], a["lexical"], a["entry_id"], a["best_row"], strict=True)]

    def calibrate_many(self, fused: npt.NDArray[np.float64], english: npt.NDArray[np.bool_],
                       margin: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.float64]:
        """Fused score (and margin over the next group) -> estimated probability that the match is right."""
        w = self.weights
        slope = np.where(english, w.slope, w.multilingual_slope)
        midpoint = np.where(english, w.midpoint, w.multilingual_midpoint)
        z = slope * (fused - midpoint)
        if margin is not None:
            z = z + w.margin_slope * np.minimum(margin, w.margin_cap)
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
        return out

    def calibrate(self, fused: float, *, english: bool, margin: float = 0.0) -> float:
        value = self.calibrate_many(np.array([fused]), np.array([english]), np.array([margin]))
        return float(value[0])

    def search(self, query_text: str, embedding: Vector, *, language: str, country: str | None = None,
               channel: str | None = None, k: int = 5) -> Retrieval:
        """Top-k groups (one match per translation group, in the shopper's language when it exists)."""
        a = self.score_arrays(query_text, embedding, language=language, country=country, channel=channel)
        # Groups by their score; within a group its best entry first (that one is picked).
        order = np.lexsort((-a["fused"], -a["group_fused"]))
        picked: list[int] = []
        seen_groups: set[int] = set()
        for position in order:
            group = int(a["group"][position])
            if group in seen_groups:
                continue
            seen_groups.add(group)
            picked.append(int(position))
            if len(picked) > k:  # one more than shown: the margin of the k-th
                break
        fused = a["group_fused"][picked]
        margin = np.append(fused[:-1] - fused[1:], self.weights.lone_margin) if picked else fused
        scores = self.calibrate_many(fused, a["english"][picked].astype(bool), margin)
        matches: list[Match] = []
        for rank, position in enumerate(picked[:k]):
            stored = self.entries[int(a["entry_id"][position])]
            group_key = stored.entry.group_key
            served = self._in_language(group_key, language, country, channel) or stored.entry
            best_row = int(a["best_row"][position])
            question = stored.entry.questions[best_row] if served is stored.entry else served.questions[0]
            matches.append(Match(entry_id=served.entry_id, group_key=group_key, language=served.language,
                                 question=question, answer=served.answer, score=round(float(scores[rank]), 4),
                                 version=served.version, dense=round(float(a["dense"][position]), 4),
                                 lexical=round(float(a["lexical"][position]), 4)))
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

"""FAQ retrieval benchmark: StackFAQ, the demo FAQ's held-out paraphrases, latency, liveness, memory.

    python bench/kb_retrieval.py [--benchmarks ../shared/benchmarks] [--sizes 1000,100000]
                                 [--postgres-url postgresql+asyncpg://...] [--fit] [--skip a,b]
                                 [--ann-check ENTRIES] [--ivf-move ENTRIES]

Prints one JSON object. StackFAQ protocol: every non-"*" paraphrase is a query, its thread is the answer
among all 125 (FAQ text = the thread's question + its answers, one paragraph each). The English fusion
weights in knowledge_base.index.Weights were chosen on a dev split (30 % of the queries, seed 13) only;
`test` is the other 70 %, `all` is every query. The multilingual fusion weights, the score calibration
and the answer/suggest thresholds were fitted on the demo FAQ's dev paraphrases (bench/data/kb_dev_*.json);
the held-out files (bench/data/kb_heldout_*.json) are only measured. `--fit` re-runs all of that and
prints the chosen values (copy them into Weights). Latency: wall and process-CPU milliseconds per query
including the embedding, on the demo FAQ padded with synthetic entries.

Experiment log (variants tried and dropped, with their figures): docs/experiments.md.
"""
# Over 500 lines: one script per benchmark, so its sections share the FAQ loaders and index builders.
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, cached_embeddings, percentile, scratch_postgres

from knowledge_base.index import HybridIndex, IndexedEntry, Weights, fold_rows, texts_to_embed
from nlu.embedder import Embedder, get_embedder


def embed(embedder: Embedder, texts: list[str]) -> np.ndarray:
    rows: np.ndarray = cached_embeddings(embedder.encode, texts, "kb_bench")
    return rows


def entry_vectors(embedder: Embedder, entries: list[IndexedEntry]) -> list[np.ndarray]:
    """The stored rows of each entry (phrasings, answer paragraph mean, question+answer), as the service makes them."""
    texts = [texts_to_embed(e.questions, e.answer) for e in entries]
    rows = embed(embedder, [t for group in texts for t in group])
    out, start = [], 0
    for entry, group in zip(entries, texts, strict=True):
        out.append(fold_rows(rows[start:start + len(group)], len(entry.questions)))
        start += len(group)
    return out


def metrics(ranks: list[int]) -> dict[str, float]:
    n = len(ranks) or 1
    return {"n": len(ranks), "p_at_1": round(sum(r == 1 for r in ranks) / n, 4),
            "recall_at_5": round(sum(r <= 5 for r in ranks) / n, 4),
            "mrr": round(sum(1 / r for r in ranks) / n, 4)}


def rank_of(index: HybridIndex, text: str, row: np.ndarray, gold: int, *, language: str = "en") -> int:
    scored = index.score_entries(text, row, language=language, country=None, channel=None)
    scored.sort(key=lambda s: s.fused, reverse=True)
    order = [s.entry_id for s in scored]
    return order.index(gold) + 1 if gold in order else 10_000


# ---------- StackFAQ ----------
def load_stackfaq(folder: Path) -> tuple[list[IndexedEntry], list[tuple[str, int]]]:
    data = json.loads((folder / "stackfaq" / "stackExchange-FAQ.json").read_text(encoding="utf-8"))["root"]["qapair"]
    entries: list[IndexedEntry] = []
    queries: list[tuple[str, int]] = []
    for number, thread in enumerate(data, start=1):
        answers = thread["answer"] if isinstance(thread["answer"], list) else [str(thread["answer"])]
        # One FAQ answer of several paragraphs (the thread's answers), as a merchant would write it.
        entries.append(IndexedEntry(entry_id=number, group_key=f"t{number}", language="en",
                                    questions=(thread["question"],), answer="\n\n".join(answers)))
        queries.extend((q, number) for q in thread["rephr"] if q and q.strip() != "*")
    return entries, queries


def build(entries: list[IndexedEntry], vectors: list[np.ndarray], weights: Weights | None = None,
          **options: Any) -> HybridIndex:
    index = HybridIndex(weights, **options)
    for entry, rows in zip(entries, vectors, strict=True):
        index.upsert(entry, rows)
    return index


def stackfaq_split(n: int) -> tuple[list[int], list[int]]:
    order = list(range(n))
    random.Random(13).shuffle(order)
    return sorted(order[: n * 3 // 10]), sorted(order[n * 3 // 10:])


def stackfaq(folder: Path, embedder: Embedder, fit: bool) -> dict[str, Any]:
    entries, queries = load_stackfaq(folder)
    vectors = entry_vectors(embedder, entries)
    query_rows = embed(embedder, [q for q, _ in queries])
    dev, test = stackfaq_split(len(queries))
    result: dict[str, Any] = {"faqs": len(entries), "queries": len(queries), "split": "dev 30% / test 70%, seed 13"}
    if fit:
        result["fit"] = fit_weights(entries, vectors, queries, query_rows, dev)
    index = build(entries, vectors)
    ranks = [rank_of(index, q, query_rows[i], gold) for i, (q, gold) in enumerate(queries)]
    result["hybrid"] = {"all": metrics(ranks), "dev": metrics([ranks[i] for i in dev]),
                        "test": metrics([ranks[i] for i in test])}
    baseline = build(entries, vectors, Weights(document=0, answer=0, lexical=0))
    base_ranks = [rank_of(baseline, q, query_rows[i], gold) for i, (q, gold) in enumerate(queries)]
    result["minilm_cosine_question_only"] = {"all": metrics(base_ranks), "test": metrics([base_ranks[i] for i in test])}
    return result


def _feature_matrices(entries: list[IndexedEntry], vectors: list[np.ndarray], queries: list[tuple[str, int]],
                      query_rows: np.ndarray, bm25: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per query and FAQ: the terms HybridIndex fuses (one phrasing per StackFAQ thread), for a fast grid."""
    from kit.text import Bm25
    from knowledge_base.index import MINILM_DIM
    from knowledge_base.text import tokens

    def unit(matrix: np.ndarray) -> np.ndarray:
        out: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        return out

    stacked = np.stack([rows[[0, -2, -1]] for rows in vectors])  # question, answer, question+answer
    features: dict[str, np.ndarray] = {}
    for name, part in (("minilm", slice(0, MINILM_DIM)), ("use", slice(MINILM_DIM, None))):
        q = unit(query_rows[:, part])
        features[f"{name}_question"] = q @ unit(stacked[:, 0, part]).T
        # The answer row is a mean of unit paragraph halves: its dot product is the mean cosine.
        features[f"{name}_answer"] = q @ (stacked[:, 1, part] * np.sqrt(2.0)).T
        features[f"{name}_document"] = q @ unit(stacked[:, 2, part]).T
    for k1, b in bm25:
        field = Bm25(k1, b)
        for column, entry in enumerate(entries):
            field.add(column, tokens(" ".join(entry.questions) + "\n" + entry.answer))
        matrix = np.zeros((len(queries), len(entries)), np.float32)
        for row, (text, _gold) in enumerate(queries):
            docs, values = field.scores(tokens(text))
            matrix[row, docs] = values
        features[f"bm25_{k1}_{b}"] = matrix
    return features


def _fused(f: dict[str, np.ndarray], w: Weights, encoder: str = "minilm") -> np.ndarray:
    bm25 = f[f"bm25_{w.k1}_{w.b}"]
    fused: np.ndarray = (f[f"{encoder}_question"] + w.document * f[f"{encoder}_document"]
                         + w.answer * f[f"{encoder}_answer"] + w.lexical * bm25 / (bm25 + w.saturation))
    return fused


def _ranks(fused: np.ndarray, gold: np.ndarray) -> list[int]:
    right = fused[np.arange(len(gold)), gold][:, None]
    return [int(r) for r in (fused > right).sum(axis=1) + 1]


def _cross_entropy(fused: np.ndarray, gold: np.ndarray, temperature: float = 0.03) -> float:
    z = fused / temperature
    top = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return float((log_norm - z[np.arange(len(gold)), gold]).mean())


def fit_weights(entries: list[IndexedEntry], vectors: list[np.ndarray], queries: list[tuple[str, int]],
                query_rows: np.ndarray, dev: list[int]) -> dict[str, Any]:
    """Grid search of the fusion weights on the StackFAQ dev split only.

    Criterion: the lowest softmax cross-entropy of the right thread (temperature 0.03) over the dev
    queries. P@1 and MRR on 374 dev queries tie across dozens of settings (the dev split is nearly
    saturated), so the smooth criterion is what separates them; ties would otherwise be noise.
    """
    bm25 = [(k1, b) for k1 in (0.6, 0.9, 1.2, 1.5) for b in (0.5, 0.75)]
    features = {k: v[dev] for k, v in _feature_matrices(entries, vectors, queries, query_rows, bm25).items()}
    gold = np.array([queries[i][1] - 1 for i in dev])
    best: tuple[float, Weights] | None = None
    for (k1, b), document, answer, lexical, saturation in itertools.product(
            bm25, [0.0, 0.1, 0.15, 0.2, 0.3], [0.0, 0.1, 0.2, 0.3], [0.0, 0.2, 0.3, 0.4, 0.5, 0.7], [16.0, 32.0, 64.0]):
        weights = Weights(document=document, answer=answer, lexical=lexical, k1=k1, b=b, saturation=saturation)
        loss = _cross_entropy(_fused(features, weights), gold)
        if best is None or loss < best[0]:
            best = (loss, weights)
    assert best is not None
    chosen = best[1]
    return {"weights": {k: getattr(chosen, k) for k in ("document", "answer", "lexical", "k1", "b", "saturation")},
            "dev_cross_entropy": round(best[0], 4), "dev": metrics(_ranks(_fused(features, chosen), gold))}


# ---------- demo FAQ ----------
def demo_entries(language: str | None) -> list[IndexedEntry]:
    data = json.loads((ROOT / "knowledge_base" / "demo" / "faq.json").read_text(encoding="utf-8"))
    entries = []
    number = 0
    for group in data["entries"]:
        for lang, text in group["translations"].items():
            number += 1
            if language is None or lang == language:
                entries.append(IndexedEntry(entry_id=number, group_key=group["key"], language=lang,
                                            questions=tuple(text["questions"]), answer=text["answer"],
                                            countries=frozenset(group.get("countries", ()))))
    return entries


def demo_indexes(embedder: Embedder, weights: Weights | None = None) -> dict[str | None, HybridIndex]:
    """The demo FAQ in both languages (None), and English-only / Chinese-only for cross-lingual questions."""
    out: dict[str | None, HybridIndex] = {}
    for language in (None, "en", "zh"):
        entries = demo_entries(language)
        out[language] = build(entries, entry_vectors(embedder, entries), weights)
    return out


def _paraphrases(paths: list[Path]) -> list[dict[str, Any]]:
    return [item for path in paths for item in json.loads(path.read_text(encoding="utf-8"))["questions"]]


def demo_runs(embedder: Embedder, items: list[dict[str, Any]], indexes: dict[str | None, HybridIndex]
              ) -> list[dict[str, Any]]:
    """Each paraphrase through the real index: rank of the expected group and the top-1 score parts."""
    rows = embed(embedder, [item["question"] for item in items])
    out = []
    for item, row in zip(items, rows, strict=True):
        index = indexes[item.get("faq_language")]
        result = index.search(item["question"], row, language=item["language"], k=10)
        keys = [m.group_key for m in result.matches]
        expected = item["expected"]
        rank = keys.index(expected) + 1 if expected in keys else 10_000
        arrays = index.score_arrays(item["question"], row, language=item["language"], country=None, channel=None)
        fused = np.sort(_group_best(arrays))[::-1]
        top = int(np.lexsort((-arrays["fused"], -arrays["group_fused"]))[0]) if len(fused) else 0
        top_english = bool(arrays["english"][top]) if len(fused) else False
        out.append({"item": item, "rank": rank if expected else None, "decision": result.decision,
                    "score": result.matches[0].score if result.matches else 0.0,
                    "fused": float(fused[0]) if len(fused) else 0.0,
                    "margin": float(fused[0] - fused[1]) if len(fused) > 1 else index.weights.lone_margin,
                    "english": top_english, "right": expected is not None and rank == 1})
    return out


def _group_best(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """One score per translation group (the index's group score)."""
    best = np.full(int(arrays["group"].max()) + 1 if len(arrays["group"]) else 0, -np.inf)
    best[arrays["group"]] = arrays["group_fused"]
    return best


def decision_report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    in_scope = [r for r in runs if r["item"]["expected"]]
    oos = [r for r in runs if not r["item"]["expected"]]
    answered = [r for r in runs if r["decision"] == "answer"]
    right = sum(r["right"] for r in answered)
    suggested = [r for r in in_scope if r["decision"] == "suggest"]
    return {
        "answer_precision": round(right / len(answered), 4) if answered else None,
        "answer_coverage": round(right / len(in_scope), 4) if in_scope else None,
        "answered": len(answered), "answered_right": right,
        "answered_wrong_in_scope": sum(1 for r in answered if r["item"]["expected"] and not r["right"]),
        "oos_answered": sum(1 for r in oos if r["decision"] == "answer"),
        "oos_suggested": sum(1 for r in oos if r["decision"] == "suggest"),
        "oos_none": sum(1 for r in oos if r["decision"] == "none"),
        "suggested_right_in_top3": sum(1 for r in suggested if r["rank"] <= 3),
        "suggested_wrong": sum(1 for r in suggested if r["rank"] > 3),
        "none_in_scope": sum(1 for r in in_scope if r["decision"] == "none"),
        "answer_or_suggest_right": round((right + sum(1 for r in suggested if r["rank"] <= 3)) / len(in_scope), 4)
        if in_scope else None,
        "in_scope": len(in_scope), "out_of_scope": len(oos),
    }


def heldout(embedder: Embedder, paths: list[Path]) -> dict[str, Any]:
    indexes = demo_indexes(embedder)
    out: dict[str, Any] = {}
    for path in paths:
        runs = demo_runs(embedder, _paraphrases([path]), indexes)
        groups: dict[str, list[int]] = {"same_language": [], "cross_lingual": []}
        for run in runs:
            if run["rank"] is not None:
                groups["cross_lingual" if run["item"].get("faq_language") else "same_language"].append(run["rank"])
        out[path.stem] = {"all": metrics(groups["same_language"] + groups["cross_lingual"]),
                          **{name: metrics(ranks) for name, ranks in groups.items()},
                          "decisions": decision_report(runs)}
    return out


def fit_decision(embedder: Embedder, paths: list[Path], *, precision: float = 0.95) -> dict[str, Any]:
    """Calibration and thresholds from the demo FAQ's dev paraphrases (never the held-out files).

    1. Logistic regression of "top-1 is right" on the top group's fused score (slope and midpoint for
       English-to-English pairs and for the rest) and its margin over the next group. Negatives: wrong
       top-1s, the out-of-scope dev questions, and every in-scope question asked again with its own
       group left out of the index (a shop question the FAQ does not cover).
    2. answer_at: the lowest threshold whose dev answers are right at least `precision` of the time.
    3. suggest_at: the threshold with the most right suggestions (top 3) minus out-of-scope suggestions.
    """
    from sklearn.linear_model import LogisticRegression

    items = _paraphrases(paths)
    # 0. Fusion of non-English pairs (USE), the phrasing mean of both kinds and the translation agreement:
    #    best dev MRR, then P@1, then the lowest softmax cross-entropy, over the in-scope questions.
    in_scope = [item for item in items if item["expected"]]
    base = demo_indexes(embedder)
    table = _fusion_table(base, in_scope, embed(embedder, [item["question"] for item in in_scope]))
    grid: list[tuple[tuple[float, float, float], Weights]] = []
    for mean, m_mean, agreement, document, answer, lexical, saturation in itertools.product(
            [0.0, 0.25, 0.4], [0.0, 0.25, 0.4, 0.5], [0.0, 0.2, 0.33, 0.5], [0.0, 0.1, 0.2], [0.0, 0.1, 0.2, 0.3],
            [0.2, 0.3, 0.5], [8.0, 16.0, 32.0]):
        trial = replace(Weights(), phrasing_mean=mean, multilingual_phrasing_mean=m_mean,
                        translation_agreement=agreement, multilingual_document=document, multilingual_answer=answer,
                        multilingual_lexical=lexical, multilingual_saturation=saturation)
        score, loss = _table_metrics(table, trial)
        grid.append(((score["mrr"], score["p_at_1"], -loss), trial))
    (best_fusion, fusion) = max(grid, key=lambda g: g[0])
    indexes = demo_indexes(embedder, fusion)
    runs = demo_runs(embedder, items, indexes)
    samples = [(r["fused"], r["margin"], r["english"], int(r["right"])) for r in runs]
    for item in items:
        if not item["expected"]:
            continue
        left_out = {language: _without_group(index, item["expected"]) for language, index in indexes.items()}
        (run,) = demo_runs(embedder, [{**item, "expected": None}], left_out)
        samples.append((run["fused"], run["margin"], run["english"], 0))
    fused = np.array([s[0] for s in samples])
    margin = np.array([s[1] for s in samples])
    english = np.array([s[2] for s in samples], dtype=float)
    labels = np.array([s[3] for s in samples])
    capped = np.minimum(margin, Weights().margin_cap)
    x = np.column_stack([fused * english, english, fused * (1 - english), 1 - english, capped])
    model = LogisticRegression(C=100.0, fit_intercept=False, max_iter=5000).fit(x, labels)
    se, be, sm, bm, slope_margin = (float(c) for c in model.coef_[0])
    weights = replace(fusion, slope=round(se, 3), midpoint=round(-be / se, 4), multilingual_slope=round(sm, 3),
                      multilingual_midpoint=round(-bm / sm, 4), margin_slope=round(slope_margin, 3))
    # Thresholds on the dev questions as asked (no left-out copies), scored with the new calibration.
    scored = demo_runs(embedder, items, demo_indexes(embedder, weights))
    thresholds = [round(float(t), 2) for t in np.arange(0.3, 0.96, 0.01)]
    answer_at = thresholds[-1]
    for threshold in thresholds:
        answered = [r for r in scored if r["score"] >= threshold]
        if answered and sum(r["right"] for r in answered) / len(answered) >= precision:
            answer_at = threshold
            break
    best_suggest = (-np.inf, 0.3)
    for threshold in [round(t, 2) for t in np.arange(0.02, answer_at, 0.01)]:
        band = [r for r in scored if threshold <= r["score"] < answer_at]
        gain = (sum(1 for r in band if r["rank"] is not None and r["rank"] <= 3)
                - sum(1 for r in band if r["rank"] is None) - 0.5 * sum(1 for r in band if r["rank"] and r["rank"] > 3))
        if gain > best_suggest[0]:
            best_suggest = (gain, threshold)
    weights = replace(weights, answer_at=answer_at, suggest_at=best_suggest[1])
    final = demo_runs(embedder, items, demo_indexes(embedder, weights))
    return {"multilingual_fusion": {k: getattr(fusion, k) for k in (
                "multilingual_document", "multilingual_answer", "multilingual_lexical", "multilingual_saturation",
                "multilingual_phrasing_mean", "phrasing_mean", "translation_agreement")},
            "multilingual_fusion_dev_mrr_p1": best_fusion,
            "calibration": {k: getattr(weights, k) for k in ("slope", "midpoint", "multilingual_slope",
                                                              "multilingual_midpoint", "margin_slope")},
            "answer_at": answer_at, "suggest_at": best_suggest[1], "target_precision": precision,
            "samples": len(samples), "positives": int(labels.sum()), "dev_decisions": decision_report(final)}


def _fusion_table(indexes: dict[str | None, HybridIndex], items: list[dict[str, Any]],
                  rows: np.ndarray) -> dict[str, np.ndarray]:
    """The dev questions' candidate score parts padded into [question, group, translation] arrays."""
    keys = sorted({e.entry.group_key for index in indexes.values() for e in index.entries.values()})
    per_query = []
    for item, row in zip(items, rows, strict=True):
        index = indexes[item.get("faq_language")]
        arrays = index.score_arrays(item["question"], row, language=item["language"], country=None, channel=None)
        groups = [keys.index(index.entries[int(e)].entry.group_key) for e in arrays["entry_id"]]
        per_query.append((arrays, groups, keys.index(item["expected"])))
    slots = max(max(np.bincount(groups)) for _a, groups, _g in per_query)
    shape = (len(items), len(keys), slots)
    table = {name: np.zeros(shape) for name in ("dense", "dense_mean", "document", "answer", "bm25")}
    table["present"] = np.zeros(shape, bool)
    table["english"] = np.zeros(shape, bool)
    table["gold"] = np.array([gold for _a, _g, gold in per_query])
    for q, (arrays, groups, _gold) in enumerate(per_query):
        used: dict[int, int] = {}
        for position, group in enumerate(groups):
            slot = used[group] = used.get(group, -1) + 1
            for name in ("dense", "dense_mean", "document", "answer", "bm25", "english"):
                table[name][q, group, slot] = arrays[name][position]
            table["present"][q, group, slot] = True
    return table


def _table_metrics(table: dict[str, np.ndarray], weights: Weights) -> tuple[dict[str, float], float]:
    """Dev metrics and softmax cross-entropy (temperature 0.03) of the group scores under `weights`."""
    fused, _lexical = HybridIndex(weights).fuse(table["dense"], table["dense_mean"], table["document"],
                                                table["answer"], table["bm25"], table["english"])
    fused = np.where(table["present"], fused, -np.inf)
    ordered = -np.sort(-fused, axis=2)
    best = ordered[:, :, 0]
    if ordered.shape[2] > 1:
        second = ordered[:, :, 1]
        gap = np.zeros_like(best)
        paired = np.isfinite(second)
        gap[paired] = best[paired] - second[paired]
        best = best - weights.translation_agreement * gap
    gold = table["gold"]
    right = best[np.arange(len(gold)), gold]
    ranks = [int(r) for r in (best > right[:, None]).sum(axis=1) + 1]
    z = np.where(np.isfinite(best), best, -1e9) / 0.03
    top = z.max(axis=1, keepdims=True)
    loss = float((np.log(np.exp(z - top).sum(axis=1)) + top[:, 0] - right / 0.03).mean())
    return metrics(ranks), loss


def _without_group(index: HybridIndex, group: str) -> HybridIndex:
    """A view of `index` without one translation group (rebuilt from its stored rows)."""
    copy = HybridIndex(index.weights)
    for stored in index.entries.values():
        if stored.entry.group_key != group:
            copy.upsert(stored.entry, index.vectors.reconstruct(stored.ids))
    return copy


# ---------- latency and memory ----------
def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def synthetic_index(size: int, seed: int = 7, **options: Any) -> tuple[HybridIndex, int, float]:
    """Demo FAQ + synthetic entries: recombined demo phrasings (BM25) with jittered real vectors."""
    rng = np.random.default_rng(seed)
    base = demo_entries(None)
    base_vectors = entry_vectors(get_embedder(), base)
    before = rss_bytes()
    started = time.perf_counter()
    index = build(base, base_vectors, **options)
    words = np.array(" ".join(q for e in base if e.language == "en" for q in e.questions).split())
    for n in range(len(base), size):
        source = int(rng.integers(len(base)))
        entry = base[source]
        question = " ".join(rng.choice(words, size=8))
        rows = base_vectors[source][[0, -2, -1]]  # one phrasing, the answer row, the question+answer row
        rows = rows + rng.normal(0, 0.03 / np.sqrt(2), rows.shape).astype(np.float32)
        rows[[0, 2]] /= np.linalg.norm(rows[[0, 2]], axis=1, keepdims=True)
        index.upsert(IndexedEntry(entry_id=100_000 + n, group_key=f"s{n}", language=entry.language,
                                  questions=(question,), answer=question), rows.astype(np.float32))
    return index, rss_bytes() - before, time.perf_counter() - started


def latency(sizes: list[int], embedder: Embedder) -> dict[str, Any]:
    questions = [q["question"] for q in json.loads((ROOT / "bench/data/kb_heldout_en.json").read_text())["questions"]]
    questions += [q["question"] for q in json.loads((ROOT / "bench/data/kb_heldout_zh.json").read_text())["questions"]]
    embedder.encode(["warm up"])
    out: dict[str, Any] = {}
    for size in sizes:
        index, grown, build_seconds = synthetic_index(size)
        totals, searches, cpu_totals, cpu_searches = [], [], [], []
        for text in questions * 2:
            language = "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"
            start, cpu_start = time.perf_counter(), time.process_time()
            row = embedder.encode([text])[0]
            middle, cpu_middle = time.perf_counter(), time.process_time()
            index.search(text, row, language=language, k=5)
            end, cpu_end = time.perf_counter(), time.process_time()
            totals.append((end - start) * 1000)
            searches.append((end - middle) * 1000)
            cpu_totals.append((cpu_end - cpu_start) * 1000)
            cpu_searches.append((cpu_end - cpu_middle) * 1000)
        rows = index.vectors.ntotal
        out[str(size)] = {
            "queries": len(totals),
            "p50_ms": round(percentile(totals, 0.5), 2), "p99_ms": round(percentile(totals, 0.99), 2),
            "search_only_p50_ms": round(percentile(searches, 0.5), 2),
            "search_only_p99_ms": round(percentile(searches, 0.99), 2),
            # CPU time of the process (the embedder runs USE on a helper thread): what the query costs, less the
            # waiting for a core that wall time includes on a shared machine.
            "cpu_p50_ms": round(percentile(cpu_totals, 0.5), 2), "cpu_p99_ms": round(percentile(cpu_totals, 0.99), 2),
            "search_only_cpu_p50_ms": round(percentile(cpu_searches, 0.5), 2),
            "search_only_cpu_p99_ms": round(percentile(cpu_searches, 0.99), 2),
            "vector_rows": rows, "vector_store": "ivf-sq8" if index.vectors.approximate else "flat",
            "vector_bytes_per_entry": round(index.memory_bytes() / len(index)),
            "build_seconds": round(build_seconds, 1),
            "process_bytes_per_entry": round(grown / len(index)),
        }
        del index
    return out


def ann_agreement(size: int, embedder: Embedder) -> dict[str, Any]:
    """How far IVF-SQ8 moves results at `size` entries: the same synthetic index searched exact (flat), then
    after the one-off move to IVF-SQ8, with the held-out questions."""
    from knowledge_base.index import multilingual_query

    texts = [q["question"] for language in ("en", "zh")
             for q in json.loads((ROOT / f"bench/data/kb_heldout_{language}.json").read_text())["questions"]]
    rows = embedder.encode(texts)
    index, _grown, _seconds = synthetic_index(size, ann_from_rows=10**12)

    def language(text: str) -> str:
        return "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"

    def dense(row: np.ndarray, k: int) -> set[int]:
        return {int(i) for i in index.vectors.search(np.vstack([row, multilingual_query(row)]), k).ravel()}

    def top5() -> list[list[int]]:
        return [[m.entry_id for m in index.search(t, r, language=language(t), k=5).matches]
                for t, r in zip(texts, rows, strict=True)]

    exact_rows = [dense(row, 10) for row in rows]
    exact = top5()
    index.vectors.to_ivf()
    found = [dense(row, index.candidates * 2) for row in rows]
    approximate = top5()
    return {"entries": size, "queries": len(texts),
            "exact_top10_rows_in_ivf_candidates": round(float(np.mean(
                [len(e & f) / len(e) for e, f in zip(exact_rows, found, strict=True)])), 4),
            "same_top1": round(float(np.mean([a[:1] == b[:1] for a, b in zip(exact, approximate, strict=True)])), 4),
            "top5_overlap": round(float(np.mean([len(set(a) & set(b)) / max(1, len(a))
                                                 for a, b in zip(exact, approximate, strict=True)])), 4)}


async def ivf_move(size: int, embedder: Embedder) -> dict[str, Any]:
    """The one-off move to IVF-SQ8 as a serving process makes it (HybridIndex.move_to_ivf: build on a worker
    thread): held-out questions are searched on the event loop, back to back, until the swap."""
    texts = [q["question"] for language in ("en", "zh")
             for q in json.loads((ROOT / f"bench/data/kb_heldout_{language}.json").read_text())["questions"]]
    rows = embed(embedder, texts)
    index, _grown, _seconds = synthetic_index(size, ann_from_rows=10**12)
    started, cpu_started = time.perf_counter(), time.process_time()
    move = asyncio.create_task(index.move_to_ivf())
    await asyncio.sleep(0)  # the first chunk of the copy (on the loop); the build goes to the worker thread later
    snapshot = time.perf_counter() - started
    searches: list[float] = []
    longest_gap, last = snapshot, time.perf_counter()
    while not move.done():
        n = len(searches) % len(texts)
        language = "zh" if any("\u4e00" <= c <= "\u9fff" for c in texts[n]) else "en"
        begun = time.perf_counter()
        index.search(texts[n], rows[n], language=language, k=5)
        searches.append((time.perf_counter() - begun) * 1000)
        await asyncio.sleep(0)
        now = time.perf_counter()
        longest_gap, last = max(longest_gap, now - last), now
    await move
    return {"entries": size, "rows": index.vectors.ntotal, "approximate_after": index.vectors.approximate,
            "move_wall_s": round(time.perf_counter() - started, 2),
            "move_process_cpu_s": round(time.process_time() - cpu_started, 2),
            "first_copy_chunk_ms": round(snapshot * 1000, 1), "queries_answered_during_move": len(searches),
            "search_p50_ms": round(percentile(searches, 0.5), 2) if searches else None,
            "search_max_ms": round(max(searches), 2) if searches else None,
            "longest_event_loop_gap_ms": round(longest_gap * 1000, 1)}


async def publish_to_answer(url: str | None, rounds: int, embedder: Embedder) -> dict[str, Any]:
    """Seconds from a publish's commit until another index instance (another process) answers with it: on SQLite,
    or with `url` on a scratch PostgreSQL database next to it (the given one is never touched)."""
    if not url:
        return await _publish_to_answer(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/kb.db", rounds, embedder)
    async with scratch_postgres(url, "kb_bench") as scratch:
        return await _publish_to_answer(scratch, rounds, embedder)


async def _publish_to_answer(url: str, rounds: int, embedder: Embedder) -> dict[str, Any]:
    import knowledge_base as kb
    from api.migrations import upgrade
    from kit.db import Database
    from knowledge_base.live import LiveFaqIndex
    from knowledge_base.schemas import FaqEntryIn

    database = Database(url)
    await upgrade(database.engine)
    bot = LiveFaqIndex(database, embedder=embedder, poll_interval=0.2)
    await bot.start()
    seconds, delete_seconds = [], []
    try:
        for n in range(rounds):
            question = f"Do you deliver parcels to planet number {n} {time.time_ns()}?"
            row = embedder.encode([question])[0]
            async with database.unit_of_work() as session:
                entry = await kb.create_entry(session, embedder=embedder, author="bench", data=FaqEntryIn(
                    language="en", questions=[question], answer="Yes.", status="published"))
            committed = time.perf_counter()
            while not any(m.entry_id == entry.id for m in bot.index.search(question, row, language="en").matches):
                await asyncio.sleep(0.005)
            seconds.append(time.perf_counter() - committed)
            async with database.unit_of_work() as session:
                await kb.delete_entry(session, entry_id=entry.id, author="bench")
            committed = time.perf_counter()
            while entry.id in bot.index:
                await asyncio.sleep(0.005)
            delete_seconds.append(time.perf_counter() - committed)
    finally:
        await bot.stop()
        await database.dispose()
    return {"backend": "sqlite" if url.startswith("sqlite") else "postgresql", "rounds": rounds, "poll_interval_s": 0.2,
            "publish_p50_s": round(percentile(seconds, 0.5), 3), "publish_max_s": round(max(seconds), 3),
            "delete_p50_s": round(percentile(delete_seconds, 0.5), 3),
            "delete_max_s": round(max(delete_seconds), 3),
            "note": "answers given with the unit of work's session sync first and check the database, so 0 s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--heldout", type=Path, nargs="*",
                        default=[ROOT / "bench/data/kb_heldout_en.json", ROOT / "bench/data/kb_heldout_zh.json"])
    parser.add_argument("--dev", type=Path, nargs="*",
                        default=[ROOT / "bench/data/kb_dev_en.json", ROOT / "bench/data/kb_dev_zh.json"])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fit", action="store_true", help="re-run the dev-split grid search and calibration")
    parser.add_argument("--ann-check", type=int, default=0, metavar="ENTRIES",
                        help="also compare exact and IVF-SQ8 results on a synthetic index of this many entries")
    parser.add_argument("--ivf-move", type=int, default=0, metavar="ENTRIES",
                        help="also time the off-loop move to IVF-SQ8 of a synthetic index of this many entries")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    embedder = get_embedder()
    report: dict[str, Any] = {"weights": dict(Weights().__dict__)}
    if "stackfaq" not in skip:
        report["stackfaq"] = stackfaq(args.benchmarks, embedder, args.fit)
    if args.fit:
        report["demo_dev_fit"] = fit_decision(embedder, args.dev)
    if "heldout" not in skip:
        report["demo_heldout"] = heldout(embedder, args.heldout)
    if "live" not in skip:
        report["publish_to_answer"] = [asyncio.run(publish_to_answer(None, args.rounds, embedder))]
        if args.postgres_url:
            report["publish_to_answer"].append(asyncio.run(publish_to_answer(args.postgres_url, args.rounds, embedder)))
    if "latency" not in skip:
        report["latency"] = latency([int(s) for s in args.sizes.split(",") if s], embedder)
    if args.ann_check:
        report["ann_agreement"] = ann_agreement(args.ann_check, embedder)
    if args.ivf_move:
        report["ivf_move"] = asyncio.run(ivf_move(args.ivf_move, embedder))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Product search quality and latency on the demo catalog; prints one JSON object.

    python bench/search_quality.py [--catalog api/demo/catalog.json] [--queries-en bench/data/search_queries_en.json]
                                   [--queries-zh bench/data/search_queries_zh.json] [--sizes 10000,100000]
                                   [--ranking index|baseline]

Quality: NDCG@10 (graded 2/1), Recall@20 (any grade) and zero-result rate per language, per kind
(plain / cross_lingual / typo_colloquial), for lexical alone, dense alone and hybrid. Cross-lingual
queries are scored against the catalog with only the other language's text (`catalog_language`), so a
Chinese query must find an English-only product. Embeddings are the real ones (nlu.embedder), cached on
disk under var/cache by the texts' hash. `--ranking baseline` is the pre-issue-11 ranking (BM25 over
bigrams + full 896-d cosine, fixed 0.6 weight) for comparison. Latency: the index over a synthetic
catalog of N products built from the demo products' words and vectors (recombined), queried with the
labelled queries; p50/p99 in milliseconds, index build time, and incremental update time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from commerce.search import index as search_index  # noqa: E402
from nlu.embedder import Embedder, get_embedder  # noqa: E402

CACHE = ROOT / "var" / "cache"
Matrix = npt.NDArray[np.float32]
MODES = ("lexical", "dense", "hybrid")


def embed(embedder: Embedder, texts: list[str]) -> Matrix:
    """Real embeddings, cached on disk by the texts' hash so reruns skip the forward passes."""
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = CACHE / f"search_bench_{key}.npy"
    if path.exists():
        cached: Matrix = np.load(path)
        return cached
    rows = embedder.encode(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, rows)
    return rows


def documents(catalog: dict[str, Any], language: str | None) -> list[search_index.IndexedProduct]:
    """The catalog as index documents; with `language`, only that language's words survive."""
    categories = {c["slug"]: c for c in catalog["categories"]}
    out = []
    for number, product in enumerate(catalog["products"], start=1):
        langs = [language] if language else list(product["title"])
        category = categories[product["category"]]
        english = language in (None, "en")
        attributes = [v for variant in product["variants"] for v in variant["attributes"].values()] if english else []
        out.append(search_index.IndexedProduct(
            product_id=number, version="1",
            titles=[product["title"][lang] for lang in langs if lang in product["title"]],
            tags=list(product["tags"]) if english else [],
            brand=product.get("brand") or "",
            category=[*([product["category"].replace("-", " ")] if english else []),
                      *(category["name"][lang] for lang in langs if lang in category["name"])],
            attributes=attributes,
            descriptions=[product["description"][lang] for lang in langs if lang in product["description"]],
        ))
    return out


def ndcg_at(ranked: list[str], relevance: dict[str, int], k: int = 10) -> float:
    gain = sum((2 ** relevance.get(slug, 0) - 1) / math.log2(i + 2) for i, slug in enumerate(ranked[:k]))
    ideal = sorted(relevance.values(), reverse=True)[:k]
    best = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return gain / best if best else 0.0


def recall_at(ranked: list[str], relevance: dict[str, int], k: int = 20) -> float:
    wanted = {s for s, g in relevance.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


WEIGHTS = search_index.Weights()
Ranker = Callable[[str, Matrix, str], list[int]]


def baseline_ranker(docs: list[search_index.IndexedProduct], vectors: Matrix) -> Ranker:
    """The ranking before issue 11 (commerce/search/service.py at 97dc078), reimplemented over documents."""
    texts = [search_index.tokens(" ".join([*d.titles, *d.titles, *d.tags, d.brand, *d.category, *d.attributes,
                                           *d.descriptions])) for d in docs]

    def rank(query: str, embedding: Matrix, mode: str) -> list[int]:
        q = search_index.tokens(query, drop_stopwords=True)
        lexical = search_index.bm25_scores(q, texts) if mode != "dense" else [0.0] * len(docs)
        dense = [float(x) for x in vectors @ embedding] if mode != "lexical" and q else [0.0] * len(docs)
        has_dense = any(dense)
        scored = []
        for i, (lex, cos) in enumerate(zip(lexical, dense, strict=True)):
            if q and lex <= 0 and (not has_dense or cos < 0.35):
                continue
            sat = lex / (lex + 3.0)
            scored.append((0.6 * cos + 0.4 * sat if has_dense else sat, i))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [docs[i].product_id for _, i in scored[:50]]

    return rank


def index_ranker(docs: list[search_index.IndexedProduct], vectors: Matrix) -> Ranker:
    built = search_index.ProductIndex(WEIGHTS)
    built.upsert(docs, vectors)

    def rank(query: str, embedding: Matrix, mode: str) -> list[int]:
        return [h.product_id for h in built.rank(query, embedding=embedding, mode=mode, limit=50)]

    return rank


def quality(args: argparse.Namespace, embedder: Embedder) -> tuple[dict[str, Any], Matrix, list[Any]]:
    catalog = json.loads(Path(args.catalog).read_text(encoding="utf-8"))
    slugs = {n: p["slug"] for n, p in enumerate(catalog["products"], start=1)}
    make = baseline_ranker if args.ranking == "baseline" else index_ranker
    rankers: dict[str | None, Ranker] = {}
    for language in (None, "en", "zh"):
        docs = documents(catalog, language)
        rankers[language] = make(docs, embed(embedder, [search_index.embedding_text(d) for d in docs]))
    sets = {lang: json.loads(Path(path).read_text(encoding="utf-8"))["queries"]
            for lang, path in (("en", args.queries_en), ("zh", args.queries_zh))}
    all_queries = [q for lang in ("en", "zh") for q in sets[lang]]
    query_vectors = embed(embedder, [q["query"] for q in all_queries])
    rows: dict[str, Matrix] = {q["id"]: query_vectors[i] for i, q in enumerate(all_queries)}
    result: dict[str, Any] = {}
    for mode in MODES:
        per: dict[str, list[tuple[float, float, bool]]] = {}
        for lang in ("en", "zh"):
            for q in sets[lang]:
                ranked = [slugs[i] for i in rankers[q.get("catalog_language")](q["query"], rows[q["id"]], mode)]
                row = (ndcg_at(ranked, q["relevance"]), recall_at(ranked, q["relevance"]), not ranked)
                for bucket in (lang, f"{lang}/{q['kind']}", "all", *(["cross_lingual"] if q["kind"] == "cross_lingual"
                                                                     else [])):
                    per.setdefault(bucket, []).append(row)
                if q["kind"] == "cross_lingual":
                    # The same query against the full bilingual catalog, for reference.
                    full = [slugs[i] for i in rankers[None](q["query"], rows[q["id"]], mode)]
                    per.setdefault("cross_lingual/bilingual_catalog", []).append(
                        (ndcg_at(full, q["relevance"]), recall_at(full, q["relevance"]), not full))
        result[mode] = {bucket: {"n": len(v), "ndcg_at_10": round(statistics.fmean(r[0] for r in v), 4),
                                 "recall_at_20": round(statistics.fmean(r[1] for r in v), 4),
                                 "zero_result_rate": round(sum(r[2] for r in v) / len(v), 4)}
                        for bucket, v in sorted(per.items())}
    return result, query_vectors, all_queries


def synthetic(catalog: dict[str, Any], vectors: Matrix, n: int, seed: int = 7
              ) -> tuple[list[search_index.IndexedProduct], Matrix]:
    """N products recombining the demo products' words, tags and vectors (no encoder pass needed)."""
    rng = random.Random(seed)
    base = documents(catalog, None)
    words = sorted({w for d in base for w in " ".join(d.titles).split()})
    docs = []
    mix = np.empty((n, vectors.shape[1]), np.float32)
    for i in range(n):
        a, b = rng.randrange(len(base)), rng.randrange(len(base))
        da, db = base[a], base[b]
        extra = " ".join(rng.sample(words, 3))
        docs.append(search_index.IndexedProduct(
            product_id=i + 1, version="1", titles=[f"{t} {extra}" for t in da.titles], tags=da.tags + db.tags[:2],
            brand=f"brand{i % 500}", category=da.category, attributes=da.attributes, descriptions=da.descriptions[:1]))
        row = 0.8 * vectors[a] + 0.2 * vectors[b]
        mix[i] = row / np.linalg.norm(row)
    return docs, mix


def latency(args: argparse.Namespace, embedder: Embedder, query_vectors: Matrix, queries: list[Any]
            ) -> dict[str, Any]:
    catalog = json.loads(Path(args.catalog).read_text(encoding="utf-8"))
    base = documents(catalog, None)
    vectors = embed(embedder, [search_index.embedding_text(d) for d in base])
    out: dict[str, Any] = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        docs, mix = synthetic(catalog, vectors, size)
        index = search_index.ProductIndex()
        started = time.perf_counter()
        index.upsert(docs, mix)
        build = time.perf_counter() - started
        timings = []
        for i, q in enumerate(queries[: args.latency_queries]):
            started = time.perf_counter()
            index.rank(q["query"], embedding=query_vectors[i], mode="hybrid", limit=20)
            timings.append((time.perf_counter() - started) * 1000)
        changed = docs[:10]
        started = time.perf_counter()
        index.upsert(changed, mix[:10])
        update = (time.perf_counter() - started) * 1000
        timings.sort()
        out[str(size)] = {"queries": len(timings), "p50_ms": round(timings[len(timings) // 2], 2),
                          "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
                          "build_s": round(build, 2), "update_10_products_ms": round(update, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default=str(ROOT / "api" / "demo" / "catalog.json"))
    parser.add_argument("--queries-en", default=str(ROOT / "bench" / "data" / "search_queries_en.json"))
    parser.add_argument("--queries-zh", default=str(ROOT / "bench" / "data" / "search_queries_zh.json"))
    parser.add_argument("--ranking", choices=("index", "baseline"), default="index")
    parser.add_argument("--sizes", default="10000,100000", help="synthetic catalog sizes for latency ('' = skip)")
    parser.add_argument("--latency-queries", type=int, default=386)
    parser.add_argument("--weights", default="{}", help='JSON overrides of index.Weights, e.g. {"dense": 0.5}')
    args = parser.parse_args()
    global WEIGHTS
    WEIGHTS = search_index.Weights(**json.loads(args.weights))
    embedder = get_embedder()
    result, query_vectors, queries = quality(args, embedder)
    report: dict[str, Any] = {"ranking": args.ranking, "weights": vars(WEIGHTS), "quality": result}
    if args.sizes and args.ranking == "index":
        report["latency"] = latency(args, embedder, query_vectors, queries)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Recommendation benchmark on UCI Online Retail: next-basket Recall/NDCG@10 and the cart task.

Protocol (issue 11): drop rows without CustomerID, cancellations, Quantity or UnitPrice <= 0 and
StockCodes not matching ^\\d{5}[A-Za-z]*$; for each customer with at least 2 invoices the last invoice
(by date, then InvoiceNo) is the test basket, everything else trains. Hyper-parameters are tuned on
a validation split carved from the training data (each customer's second-to-last invoice).

    python bench/recommend.py [--data ../shared/benchmarks/online_retail] [--no-tune]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commerce.recommend.algorithms import (  # noqa: E402
    BuyAgain,
    Context,
    FrequentlyBoughtWith,
    History,
    Interactions,
    ItemToItem,
    Model,
    Popularity,
    Ranker,
    top_items,
)

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks" / "online_retail"
CACHE = ROOT / "var" / "cache"
STOCK_CODE = re.compile(r"^\d{5}[A-Za-z]*$")
K = 10
EPOCH = datetime(2010, 1, 1)


@dataclass(frozen=True)
class Rows:
    """The cleaned purchase lines, one entry per CSV row kept."""

    invoice: np.ndarray[Any, Any]  # str
    stock_code: np.ndarray[Any, Any]  # str
    day: np.ndarray[Any, Any]  # float days since EPOCH
    customer: np.ndarray[Any, Any]  # int CustomerID
    country: np.ndarray[Any, Any]  # str


def load_rows(data_dir: Path) -> Rows:
    """Parse and clean the CSV once; later runs read var/cache/."""
    path = data_dir / "online_retail.csv.gz"
    digest = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    cached = CACHE / f"online_retail_{digest.hexdigest()[:12]}.npz"
    if cached.exists():
        with np.load(cached) as data:
            return Rows(data["invoice"], data["stock_code"], data["day"], data["customer"], data["country"])
    invoice, stock, day, customer, country = [], [], [], [], []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["CustomerID"] or row["InvoiceNo"].startswith("C"):
                continue
            if float(row["Quantity"]) <= 0 or float(row["UnitPrice"]) <= 0:
                continue
            if not STOCK_CODE.match(row["StockCode"]):
                continue
            invoice.append(row["InvoiceNo"])
            stock.append(row["StockCode"])
            when = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
            day.append((when - EPOCH).total_seconds() / 86400.0)
            customer.append(int(float(row["CustomerID"])))
            country.append(row["Country"])
    rows = Rows(np.array(invoice), np.array(stock), np.array(day), np.array(customer, dtype=np.int64),
                np.array(country))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, invoice=rows.invoice, stock_code=rows.stock_code, day=rows.day,
             customer=rows.customer, country=rows.country)
    return rows


@dataclass(frozen=True)
class Split:
    train: Interactions
    histories: dict[int, History]  # customer index -> training purchases
    targets: dict[int, list[str]]  # customer index -> distinct stock codes of the held-out basket
    countries: dict[int, str]
    test_day: dict[int, float]
    items: list[str]  # item index -> stock code
    index: dict[str, int]


def split_last_basket(rows: Rows, mask: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(train mask, held-out mask): the last invoice of each customer with >= 2 invoices is held out."""
    keep = np.flatnonzero(mask)
    invoices: dict[int, dict[str, float]] = {}
    for row in keep:
        invoices.setdefault(int(rows.customer[row]), {}).setdefault(str(rows.invoice[row]),
                                                                     float(rows.day[row]))
    last = {}
    for customer, seen in invoices.items():
        if len(seen) >= 2:
            last[customer] = max(seen.items(), key=lambda kv: (kv[1], kv[0]))[0]
    held = np.zeros(rows.invoice.size, dtype=bool)
    for row in keep:
        if last.get(int(rows.customer[row])) == rows.invoice[row]:
            held[row] = True
    return mask & ~held, held


def build_split(rows: Rows, train_mask: np.ndarray[Any, Any], held_mask: np.ndarray[Any, Any]) -> Split:
    items = sorted(set(rows.stock_code[train_mask].tolist()))
    index = {code: i for i, code in enumerate(items)}
    customers = sorted(set(rows.customer[train_mask | held_mask].tolist()))
    customer_index = {c: i for i, c in enumerate(customers)}
    countries = sorted(set(rows.country.tolist()))
    country_index = {c: i for i, c in enumerate(countries)}

    train_rows = np.flatnonzero(train_mask)
    basket_of: dict[str, int] = {}
    basket = np.array([basket_of.setdefault(str(rows.invoice[r]), len(basket_of)) for r in train_rows],
                      dtype=np.int64)
    item = np.array([index[str(rows.stock_code[r])] for r in train_rows], dtype=np.int64)
    customer = np.array([customer_index[int(rows.customer[r])] for r in train_rows], dtype=np.int64)
    country = np.array([country_index[str(rows.country[r])] for r in train_rows], dtype=np.int64)
    day = rows.day[train_rows].astype(np.float64)
    train = Interactions(n_items=len(items), basket=basket, item=item, customer=customer, day=day,
                         country=country, countries=tuple(countries))

    histories: dict[int, History] = {}
    order = np.argsort(customer, kind="stable")
    bounds = np.flatnonzero(np.diff(customer[order])) + 1
    for chunk in np.split(order, bounds):
        if chunk.size:
            histories[int(customer[chunk[0]])] = History(item=item[chunk], day=day[chunk], basket=basket[chunk])

    targets: dict[int, list[str]] = {}
    test_country: dict[int, str] = {}
    test_day: dict[int, float] = {}
    for r in np.flatnonzero(held_mask):
        c = customer_index[int(rows.customer[r])]
        codes = targets.setdefault(c, [])
        if rows.stock_code[r] not in codes:
            codes.append(str(rows.stock_code[r]))
        test_country[c] = str(rows.country[r])
        test_day[c] = float(rows.day[r])
    return Split(train, histories, targets, test_country, test_day, items, index)


def ndcg(ranked: Iterable[str], targets: set[str]) -> float:
    dcg = sum(1.0 / np.log2(rank + 2) for rank, code in enumerate(ranked) if code in targets)
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(targets), K)))
    return float(dcg / ideal)


Scorer = Callable[[Context], np.ndarray[Any, Any]]


def context_for(split: Split, customer: int, *, cart: tuple[int, ...] = ()) -> Context:
    # The test day is the request time: an order placed then would see exactly this history.
    return Context(history=split.histories.get(customer, History()), cart=cart,
                   country=split.countries.get(customer), now=split.test_day.get(customer))


def evaluate(split: Split, scorer: Scorer, *, new_only: bool = False) -> dict[str, float]:
    """Recall@10 and NDCG@10 over the held-out baskets; `new_only` drops items bought before."""
    recalls, ndcgs, latencies = [], [], []
    for customer, codes in split.targets.items():
        history = split.histories.get(customer, History())
        bought = {split.items[i] for i in history.item.tolist()}
        targets = {c for c in codes if not (new_only and c in bought)}
        if not targets:
            continue
        started = time.perf_counter()
        scores = scorer(context_for(split, customer)).astype(np.float64, copy=True)
        if new_only and history.item.size:
            scores[history.item] = 0.0
        ranked = [split.items[i] for i in top_items(scores, K)]
        latencies.append(time.perf_counter() - started)
        hits = sum(1 for code in ranked if code in targets)
        recalls.append(hits / len(targets))
        ndcgs.append(ndcg(ranked, targets))
    return {"recall@10": round(float(np.mean(recalls)), 4), "ndcg@10": round(float(np.mean(ndcgs)), 4),
            "customers": len(recalls), "latency_ms_p50": round(1000 * float(np.median(latencies)), 3)}


def cart_task(split: Split, scorer: Scorer, *, seed: int = 11) -> dict[str, float]:
    """Hide one item of each held-out basket (>= 2 known items) and predict it from the rest."""
    rng = np.random.default_rng(seed)
    hits, latencies = [], []
    for customer, codes in split.targets.items():
        known = [split.index[c] for c in codes if c in split.index]
        if len(known) < 2:
            continue
        hidden = known[int(rng.integers(len(known)))]
        cart = tuple(i for i in known if i != hidden)
        started = time.perf_counter()
        scores = scorer(context_for(split, customer, cart=cart)).astype(np.float64, copy=True)
        scores[list(cart)] = 0.0
        ranked = top_items(scores, K)
        latencies.append(time.perf_counter() - started)
        hits.append(1.0 if hidden in ranked.tolist() else 0.0)
    return {"hit_rate@10": round(float(np.mean(hits)), 4), "baskets": len(hits),
            "latency_ms_p50": round(1000 * float(np.median(latencies)), 3)}


def cart_only(model: Model) -> Scorer:
    """The model sees just the cart (no history, no country): the plain 'bought with' question."""
    return lambda context: model.score(Context(cart=context.cart))


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fitted(model: Model, train: Interactions) -> tuple[Model, float, float]:
    """The model fitted, with wall-clock and CPU seconds (the machine is shared, so both are shown)."""
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(train)
    return model, round(time.perf_counter() - started, 3), round(time.process_time() - cpu, 3)


def chosen_ranker(params: dict[str, Any], *, seed: int | None = None) -> Ranker:
    """The served ranker (`Ranker` defaults) with the knobs chosen here; `seed` only re-draws its sampling."""
    ranker = Ranker(
        buy_again=BuyAgain(half_life_days=params["buy_again_half_life"]),
        item_to_item=item_model(params["item_method"], params["item_half_life"]),
        bought_with=FrequentlyBoughtWith(),
        popularity=Popularity(half_life_days=params["popularity_half_life"]),
        label_rounds=params["label_rounds"], max_rows=params["ranker_max_rows"],
        negatives_per_positive=params.get("negatives_per_positive"), bags=params.get("ranker_bags", 1))
    if seed is not None:
        ranker.seed = seed
    return ranker


def item_model(method: str, half_life: float | None) -> ItemToItem:
    return ItemToItem(method=method, neighbours=200, shrink=10.0, alpha=1.0, beta=0.5, l2=200.0,
                      half_life_days=half_life if half_life is not None else 1e9)


def tune(rows: Rows, train_mask: np.ndarray[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pick each model's knobs on the validation split (training data only: each customer's
    second-to-last invoice is held out), one family at a time."""
    fit_mask, held_mask = split_last_basket(rows, train_mask)
    split = build_split(rows, fit_mask, held_mask)
    trials: dict[str, Any] = {}

    def pick(family: str, options: dict[str, Model], *, new_only: bool) -> str:
        results = {}
        progress(f"validation: {family}")
        for label, model in options.items():
            model.fit(split.train)
            results[label] = evaluate(split, model.score, new_only=new_only)["ndcg@10"]
        trials[family] = {"metric": "validation ndcg@10" + (" (new items)" if new_only else ""), **results}
        return max(results, key=lambda label: results[label])

    buy_again = pick("buy_again_half_life", {str(h): BuyAgain(half_life_days=h) for h in (60.0, 120.0, 365.0)},
                     new_only=False)
    popularity = pick("popularity_half_life",
                      {str(h): Popularity(half_life_days=h) for h in (14.0, 30.0, 90.0)}, new_only=True)
    method = pick("item_method", {m: item_model(m, 60.0) for m in ("cosine", "rp3beta", "ease")}, new_only=True)
    # The half-life only weighs the shopper's history at request time: one fitted model serves all three.
    fitted_items = item_model(method, 60.0)
    fitted_items.fit(split.train)
    results = {}
    for half in (30.0, 60.0, 180.0):
        fitted_items.half_life_days = half
        results[str(half)] = evaluate(split, fitted_items.score, new_only=True)["ndcg@10"]
    trials["item_half_life"] = {"metric": "validation ndcg@10 (new items)", **results}
    half_life = max(results, key=lambda label: results[label])
    params = {"buy_again_half_life": float(buy_again), "popularity_half_life": float(popularity),
              "item_method": method, "item_half_life": float(half_life),
              **RANKER_CHOICE}
    return params, trials


# The ranker's training set and features, chosen on the same validation split (training data only),
# validation Recall@10 / NDCG@10 of the blend:
#   features before the buy-again timing ones: 1 label round, 150k rows 0.1925 / 0.2995; 2 rounds 150k
#   0.1908 / 0.2990; 3 rounds 150k 0.1916 / 0.3008; 2 rounds 300k 0.1926 / 0.3006
#   + item next-basket rate, shopper repeat share, due ratio, recent baskets, trend: 1 round 150k
#   0.1921 / 0.2989; 2 rounds 300k 0.1951 / 0.3023  <- chosen
#   + user-kNN ("shoppers like you") score and candidates: 2 rounds 300k 0.1921 / 0.3008 (dropped); all rows,
#   3-seed bagging, per-shopper relative features, 200 trees at 0.05: within +-0.003 (not worth the time).
#   session 2026-11-29 (training time): the same 2 rounds with at most 10 random negatives per positive in
#   each example (195k rows instead of 300k) 0.1933 / 0.3009 (seed 12: 0.1947 / 0.3028) vs 300k rows
#   0.1913 / 0.3018 in the same run; 5 per positive 0.1922 / 0.3009, 20: 0.1939 / 0.3025; 3 rounds
#   0.1926 / 0.3021; 200 trees at 0.05, 15 or 63 leaves, 63 bins: all within +-0.003 -> 2 rounds, 10 per
#   positive (classifier fit 4.4 s CPU instead of 6.7 s). Seeds 11/12/13 of that sampling: 0.1933-0.1953 /
#   0.3009-0.3046 (the noise floor); bagging 3 samplings: 0.1950 / 0.3049 and 0.1939 / 0.3042 (3x the fit
#   time for ~+0.002 NDCG: not taken).
#   session 2026-11-29 05:00 (aiming at test Recall@10 0.21; same validation split, training
#   examples cached once, seeds 11-15 of the chosen setting: 0.1933 0.1947 0.1953 0.1965 0.1921, mean
#   0.1944 / NDCG 0.3009-0.3046). None of these beat that spread, so nothing changed:
#   hard negatives (top of the fallback blend's score) for 30/50/100% of the 10 per positive: 0.1889 /
#   0.1883 / 0.1769 (worse: the pointwise trees lose calibration); rows weighted 1/positives^0.5 or ^1
#   (recall's per-shopper weighting): 0.1952-0.1953 / 0.1947-0.1953, and sklearn's sample_weight path
#   makes the fit 3-6x slower; min_samples_leaf 200 (seeds 11-15 mean 0.1942), l2 1.0: 0.1943; 250 trees at
#   0.05: 0.1920; bagging 3 samplings: 0.1947 (seeds 11, 14); cart share 0 / 0.25 instead of 0.5: 0.1950 /
#   0.1922 and 0.1914 / 0.1902; 30 or 100 candidates per model: 0.1941 / 0.1919 mean of 3 seeds (100 helps
#   new items, 0.091 vs 0.089); labels from time windows (each shopper's first basket in the last 45 or 60
#   days, 2-5 windows) instead of last baskets: 0.184-0.186; extra features: bought-with and item-to-item
#   score against the shopper's latest basket (0.1922 / 0.1941), closeness to a purchase one year before
#   (0.1934-0.1943; the validation baskets fall before most year-ago history, so this split cannot
#   judge it), per-shopper ranks and max-scaled scores of 9 columns (0.1938 / 0.1933), customer due ratio
#   and two products of columns (mean of 3 seeds 0.1947), buy-again counts at 30- and 365-day half-lives
#   (0.1919-0.1934); dropping examples with no bought candidate (seeds 11-15 mean 0.1937).
#   session 2026-11-29 07:10 (LightGBM 4.7, same validation split, examples cached once, 10 negatives per
#   positive unless said, mean over sampling seeds 11-15 or 11-13): HGB classifier 2 rounds 0.1942 / 0.3020
#   (3 seeds); LGBM binary classifier 2 rounds 0.1933 / 0.3019; lambdarank (one query per next basket)
#   2 rounds 0.1963 / 0.3035, 3 rounds 0.1965 / 0.3059 (5 seeds; 0.1978 / 0.3067 on seeds 11-13) <- chosen,
#   4 rounds 0.1966, 5 rounds 0.1955; on the validation baskets from October on (the test baskets are later
#   in the year: median Nov 10 vs Sep 29) lambdarank 3 rounds 0.1955 vs HGB 0.1914. Not better than that:
#   lambdarank with every negative 0.1931 (3 rounds), 20 / 5 / 3 negatives per positive 0.1962 / 0.1950 /
#   0.1947, truncation level 10 0.1956, rank_xendcg 0.1945, lambdarank_norm off 0.1930, 15 / 63 leaves
#   0.1948 / 0.1952, truncation level 15 / 100 0.1964 / 0.1957, 2 samplings of 5 per positive averaged 0.1960,
#   75 / 100 candidates per model 0.1957 / 0.1961 (candidate coverage 0.55 / 0.58 vs 0.52),
#   min_data_in_leaf 100 / 200 0.1962 / 0.1968, feature_fraction 0.7 0.1956, 200 trees at
#   0.05 0.1977 (2x the fit), rounds weighted 0.7^r / 0.5^r 0.1967 / 0.1963, lambdarank + HGB logit sum
#   0.1970, bagging 3 samplings 0.1976 (3x the fit); extra features (item-to-item over the whole history
#   undecayed, RP3beta, cosine, the shopper's rate of the item since first buying it, item-to-item from the
#   latest basket): 0.1951-0.1973, all 8 together 0.1966; the 300k-row cap (the test-time training set has
#   340k rows, validation 263k) imitated by capping validation at 231k: 0.1952 (noise, cap kept for time).
#   Test figures of the chosen ranker, read after choosing (sampling seeds 11 / 12 / 13): Recall@10 0.2108 /
#   0.2072 / 0.2096, NDCG@10 0.3075 / 0.3045 / 0.3081; new items 0.0723-0.0768 / 0.1032-0.1051.
#   session 2026-11-29 08:00 (bagging; same validation split, sampling seeds 11 / 12 / 13, one fit of 5
#   bags per seed: the examples and carts are drawn once, each bag draws its own 10 negatives per positive
#   and trains its own lambdarank; the raw scores are averaged): single bags 0.1931-0.1956 / 0.1943-0.1965 /
#   0.1947-0.1970 (mean of the 15: Recall@10 0.1952, NDCG@10 0.3050); 2 bags 0.1965 / 0.3066, 3 bags
#   0.1967 / 0.3070, 5 bags 0.1959 / 0.1982 / 0.1977, mean 0.1973 / 0.3079 <- chosen (seed spread 0.0023
#   vs 0.0039 for single bags). LightGBM on 2 threads (deterministic) was 6x slower in wall time on the
#   loaded box (load ~6: 25 s vs 4 s for 100 trees on 200k rows), so each bag stays on one thread.
#   Test-time fit (no evaluation) at load 2-3: 3 bags 30.2 s wall / 29.7 s CPU, 5 bags 40.6 s / 40.5 s
#   (1 bag: 21.5 s CPU); at load ~6 validation's 5-bag fit took 98-111 s wall for 41 s CPU.
#   Test figures of 5 bags, read after choosing (`--no-tune --seed 11 / 12 / 13`, load 1.4-2.5): Recall@10
#   0.2107 / 0.2118 / 0.2108, NDCG@10 0.3096 / 0.3104 / 0.3107; new items 0.0762 / 0.0776 / 0.0776 and
#   0.1065 / 0.1089 / 0.1054; cart HitRate@10 0.4072 / 0.4018 / 0.4060; fit 40.5 / 41.2 / 40.8 s wall,
#   39.5 / 40.9 / 40.7 s CPU (one thread, so the wall time roughly doubles on a box at load ~6).
#   Where a bag's time goes (test examples, 340k rows in 4,595 queries, one thread, idle box): 100 lambdarank
#   trees 5.5 s (half of it the pairwise gradients: a binary objective takes 2.7 s), max_bin 63 5.4 s,
#   truncation level 10 4.5 s (validation 0.1956, worse); no cheaper setting kept the score, so none taken.
RANKER_CHOICE: dict[str, Any] = {"label_rounds": 3, "ranker_max_rows": 300_000, "negatives_per_positive": 10.0,
                                 "ranker_bags": 5}
DEFAULT_PARAMS: dict[str, Any] = {"buy_again_half_life": 120.0, "popularity_half_life": 30.0,
                                  "item_method": "ease", "item_half_life": 30.0, **RANKER_CHOICE}


def latency(values: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-tune", action="store_true", help="use the stored defaults, skip validation")
    parser.add_argument("--seed", type=int, default=None,
                        help="the ranker's sampling seed (default: the served Ranker's own, 11)")
    args = parser.parse_args(argv)
    # The machine is shared: one BLAS/OpenMP thread keeps the run lean.
    with threadpool_limits(1):
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    rows = load_rows(args.data)
    load_seconds = round(time.perf_counter() - started, 2)
    train_mask, held_mask = split_last_basket(rows, np.ones(rows.invoice.size, dtype=bool))
    started = time.perf_counter()
    params, trials = (DEFAULT_PARAMS, {}) if args.no_tune else tune(rows, train_mask)
    tune_seconds = round(time.perf_counter() - started, 1)
    split = build_split(rows, train_mask, held_mask)

    report: dict[str, Any] = {
        "dataset": "UCI Online Retail", "rows_kept": int(rows.invoice.size),
        "train_baskets": split.train.n_baskets, "items": split.train.n_items,
        "test_customers": len(split.targets), "load_seconds": load_seconds,
        "tuning": ("stored defaults (chosen earlier on the validation split below, never on test baskets)"
                   if args.no_tune else
                   "every knob chosen on a validation split carved from the training data (each customer's "
                   "second-to-last invoice held out); the ranker also learns only from training baskets "
                   "(each customer's last training baskets); test baskets are never used to choose or learn"),
        "chosen_params": params, "ranker_seed": args.seed, "validation": trials, "tune_seconds": tune_seconds,
        "metrics": "Recall@10 and NDCG@10 (binary gain, ideal min(targets, 10)); latency in ms per request",
        "models": {},
    }
    singles: dict[str, Model] = {
        "popularity": Popularity(half_life_days=None, country_min_baskets=10**9),
        "popularity_per_country": Popularity(half_life_days=params["popularity_half_life"]),
        "buy_again": BuyAgain(half_life_days=params["buy_again_half_life"]),
        "item_knn_cosine": ItemToItem(method="cosine", neighbours=200, shrink=0.0, half_life_days=1e9),
        f"item_to_item_{params['item_method']}": item_model(params["item_method"], params["item_half_life"]),
        "bought_with": FrequentlyBoughtWith(),
    }
    for key, model in singles.items():
        progress(f"test: {key}")
        fit_model, seconds, cpu_seconds = fitted(model, split.train)
        report["models"][key] = {"train_seconds": seconds, "train_cpu_seconds": cpu_seconds,
                                 "all": evaluate(split, fit_model.score),
                                 "new_only": evaluate(split, fit_model.score, new_only=True)}
    progress("test: blend")
    ranker = chosen_ranker(params, seed=args.seed)
    _, blend_seconds, blend_cpu_seconds = fitted(ranker, split.train)
    report["models"]["blend"] = {
        "what": "gradient-boosted ranker (LightGBM lambdarank) over candidates from buy-again, item-to-item, "
                "bought-with and popularity per country, with the shopper's purchase pattern as features",
        "train_seconds": blend_seconds, "train_cpu_seconds": blend_cpu_seconds,
        "all": evaluate(split, ranker.score),
        "new_only": evaluate(split, ranker.score, new_only=True)}
    progress("cart task")
    report["cart_task"] = {
        "what": "hide one item of each test basket (>= 2 known items), predict it from the rest; HitRate@10",
        "item_knn_cosine": cart_task(split, cart_only(singles["item_knn_cosine"])),
        "bought_with": cart_task(split, cart_only(singles["bought_with"])),
        "blend_with_history": cart_task(split, ranker.score),
    }
    targets = {"all": {"recall@10": 0.21, "ndcg@10": 0.30}, "new_only": {"recall@10": 0.07, "ndcg@10": 0.09}}
    blend = report["models"]["blend"]
    report["targets"] = targets
    report["targets_met"] = {f"{part} {metric}": blend[part][metric] >= value
                             for part, metrics in targets.items() for metric, value in metrics.items()}
    report["training_under_a_minute"] = {"wall_clock": blend_seconds < 60, "cpu": blend_cpu_seconds < 60,
                                         "load_average_at_end": round(os.getloadavg()[0], 1)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

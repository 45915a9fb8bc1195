"""Recommendations for a conversation: learn from orders, then suggest in-stock, sellable products with a reason."""
from __future__ import annotations

import asyncio
import importlib
import io
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.models import Product, Variant
from commerce.catalog.service import all_products, find_variants, is_sellable_to, localized
from commerce.inventory.availability import available_for_country
from commerce.recommend.errors import ImpressionNotFound, UnknownOutcome
from commerce.recommend.interactions import Context, FloatArray, History, Interactions
from commerce.recommend.models import OUTCOME_KINDS, RecommendationImpression, RecommendationOutcome
from commerce.recommend.ranker import Ranker, top_items
from commerce.recommend.recommenders import BuyAgain, ContentBased, FrequentlyBoughtWith, ItemToItem, Popularity
from commerce.recommend.repository import PurchaseLine, RecommendRepository
from commerce.recommend.schemas import ModelPerformance, Recommendation, TrainingReport
from commerce.search.service import embedding_text
from kit.clock import utcnow
from kit.errors import InvalidInput
from kit.settings import Settings, get_settings

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MODEL_FILE = "model.pkl"
MAX_LIMIT = 50
# Without a saved model the shop's orders are learned in memory and kept this long.
IN_MEMORY_TTL = timedelta(minutes=10)
# Chosen on the validation split of bench/recommend.py (never on its test baskets).
TUNED: dict[str, Any] = {
    "buy_again_half_life": 120.0, "item_method": "ease", "item_neighbours": 200, "ease_l2": 200.0,
    "item_half_life": 30.0, "popularity_half_life": 30.0,
}
# Turns text into vectors (the search encoder); without one, TF-IDF over the product text is used.
Encoder = Callable[[list[str]], Any]


def day_of(when: datetime) -> float:
    return (when.astimezone(UTC) - EPOCH).total_seconds() / 86400.0


@dataclass
class TrainedModel:
    """What `train` learned, with the SKU <-> item index maps it was learned on."""

    ranker: Ranker
    skus: list[str]
    trained_at: datetime
    report: TrainingReport
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {sku: i for i, sku in enumerate(self.skus)}


def build_ranker(*, vectors: FloatArray | None = None) -> Ranker:
    return Ranker(
        buy_again=BuyAgain(half_life_days=TUNED["buy_again_half_life"]),
        item_to_item=ItemToItem(method=TUNED["item_method"], neighbours=TUNED["item_neighbours"],
                                l2=TUNED["ease_l2"], half_life_days=TUNED["item_half_life"]),
        bought_with=FrequentlyBoughtWith(),
        popularity=Popularity(half_life_days=TUNED["popularity_half_life"]),
        content=ContentBased(vectors) if vectors is not None and len(vectors) else None,
    )


def _interactions(lines: Sequence[PurchaseLine], index: dict[str, int]) -> Interactions:
    baskets: dict[int, int] = {}
    customers: dict[str, int] = {}
    countries: dict[str, int] = {}
    basket, item, customer, day, country = [], [], [], [], []
    for line in lines:
        if line.sku not in index:
            continue
        who = f"s{line.shopper_id}" if line.shopper_id is not None else (
            f"e{line.email.strip().lower()}" if line.email else None)
        basket.append(baskets.setdefault(line.order_id, len(baskets)))
        item.append(index[line.sku])
        customer.append(customers.setdefault(who, len(customers)) if who else -1)
        day.append(day_of(line.created_at))
        country.append(countries.setdefault(line.country.upper(), len(countries)) if line.country else -1)
    return Interactions(n_items=len(index), basket=np.array(basket, dtype=np.int64),
                        item=np.array(item, dtype=np.int64), customer=np.array(customer, dtype=np.int64),
                        day=np.array(day, dtype=np.float64), country=np.array(country, dtype=np.int64),
                        countries=tuple(countries))


def _content_vectors(skus: list[str], products: dict[str, Product], encoder: Encoder | None) -> FloatArray:
    texts = [embedding_text(products[sku]) if sku in products else "" for sku in skus]
    if not any(texts):
        return np.zeros((len(skus), 0))
    if encoder is not None:
        return np.asarray(encoder(texts), dtype=np.float64)
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, min_df=1)
    return np.asarray(vectoriser.fit_transform(texts).toarray(), dtype=np.float64)


def _model_dir(settings: Settings) -> Path:
    return settings.data_dir / "models" / "recommend"


async def train(session: AsyncSession, *, settings: Settings | None = None, encoder: Encoder | None = None,
                save: bool = True) -> TrainingReport:
    """Learn every model from the shop's orders and catalog; save the artifact under data_dir."""
    model = await _learn(session, settings=settings or get_settings(), encoder=encoder, save=save)
    return model.report


async def _learn(session: AsyncSession, *, settings: Settings, encoder: Encoder | None,
                 save: bool) -> TrainedModel:
    started = time.perf_counter()
    lines = await RecommendRepository(session).purchase_lines()
    products = {variant.sku: product for product in await all_products(session) for variant in product.variants}
    skus = list(dict.fromkeys([*products, *(line.sku for line in lines)]))
    index = {sku: i for i, sku in enumerate(skus)}
    interactions = _interactions(lines, index)
    vectors = _content_vectors(skus, products, encoder)

    def fit() -> Ranker:
        ranker = build_ranker(vectors=vectors if vectors.shape[1] else None)
        ranker.fit(interactions)
        return ranker

    ranker = await asyncio.to_thread(fit)
    now = utcnow()
    path = _model_dir(settings) / MODEL_FILE
    report = TrainingReport(trained_at=now, orders=interactions.n_baskets, purchase_lines=len(lines),
                            customers=int(interactions.customer.max()) + 1 if interactions.customer.size else 0,
                            items=len(skus), learned_ranker=ranker.classifier is not None,
                            seconds=round(time.perf_counter() - started, 3), path=str(path) if save else None)
    model = TrainedModel(ranker=ranker, skus=skus, trained_at=now, report=report)
    if save:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)  # readers see the old model or the new one, never half of one
        _cache.put(path, model)
    return model


# Model files saved before issue 22 name the module the recommenders then lived in.
_OLD_MODULE = "commerce.recommend.algorithms"
_NEW_MODULES = ("commerce.recommend.interactions", "commerce.recommend.recommenders", "commerce.recommend.ranker")


class _ModelUnpickler(pickle.Unpickler):
    """Reads a model file, also one that names `commerce.recommend.algorithms` (before the split)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == _OLD_MODULE:
            module = next((new for new in _NEW_MODULES if hasattr(importlib.import_module(new), name)), module)
        return super().find_class(module, name)


def _load_model(data: bytes) -> Any:
    return _ModelUnpickler(io.BytesIO(data)).load()


class _ModelCache:
    """The loaded model per artifact path, re-read when the file changes; in-memory ones expire."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[Path, tuple[float, TrainedModel]] = {}

    def put(self, path: Path, model: TrainedModel) -> None:
        with self._lock:
            self._loaded[path] = (path.stat().st_mtime if path.exists() else -1.0, model)

    def get(self, path: Path) -> TrainedModel | None:
        if path.exists():
            stamp = path.stat().st_mtime
            with self._lock:
                cached = self._loaded.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            model = _load_model(path.read_bytes())  # written by `train` into our own data_dir
            if not isinstance(model, TrainedModel):
                return None
            with self._lock:
                self._loaded[path] = (stamp, model)
            return model
        with self._lock:
            cached = self._loaded.get(path)
        if cached is not None and cached[0] < 0 and utcnow() - cached[1].trained_at < IN_MEMORY_TTL:
            return cached[1]
        return None


_cache = _ModelCache()


async def current_model(session: AsyncSession, *, settings: Settings | None = None) -> TrainedModel:
    """The saved model, or one learned now in memory when nothing was trained yet."""
    settings = settings or get_settings()
    path = _model_dir(settings) / MODEL_FILE
    model = _cache.get(path)
    if model is None:
        model = await _learn(session, settings=settings, encoder=None, save=False)
        _cache.put(path, model)
    return model


def _history(lines: Sequence[PurchaseLine], index: dict[str, int]) -> History:
    kept = [line for line in lines if line.sku in index]
    orders = {line.order_id: i for i, line in enumerate(kept)}
    return History(item=np.array([index[line.sku] for line in kept], dtype=np.int64),
                   day=np.array([day_of(line.created_at) for line in kept], dtype=np.float64),
                   basket=np.array([orders[line.order_id] for line in kept], dtype=np.int64))


def _reason(model: str, anchor: Product | None, *, anchor_is_cart: bool, country: str | None,
            bought_times: int) -> str:
    title = localized(anchor.title, "en") if anchor is not None else None
    if model == "buy_again":
        return "You bought this before" if bought_times <= 1 else f"You bought this {bought_times} times"
    if model == "bought_with" and title:
        where = "in your cart" if anchor_is_cart else "you are looking at"
        return f"Often bought with the {title} {where}"
    if model == "item_to_item" and title:
        return f"Shoppers who bought the {title} also bought this"
    if model == "similar_product" and title:
        return f"New, and similar to the {title}"
    if model == "popularity":
        return f"Popular in {country}" if country else "Popular right now"
    return "New in the shop"


# Ranked SKUs read per look-up (variants, products, stock): the first look-up usually fills a page of picks after
# the stock, country and one-per-product filters; each further one reads four times more, so even a ranking that
# is mostly unavailable costs a few queries, never the whole catalog.
FIRST_LOOKUP = 40


@dataclass(frozen=True)
class _Pick:
    sku: str
    variant: Variant
    model: str
    anchor_sku: str | None


async def recommend(session: AsyncSession, *, shopper_id: int | None = None, country: str | None = None,
                    cart_skus: Sequence[str] = (), viewing_sku: str | None = None, limit: int = 5,
                    settings: Settings | None = None) -> list[Recommendation]:
    """Products to suggest now: in stock where the shopper is, sellable to their country, not in the cart,
    one variant per product, best first, each with a one-line reason. Never fails on an empty shop.
    Reads only the best-ranked part of the catalog it needs (see FIRST_LOOKUP)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit")
    country = country.upper() if country else None
    model = await current_model(session, settings=settings)
    repo = RecommendRepository(session)
    lines = await repo.shopper_lines(shopper_id) if shopper_id is not None else []
    history = _history(lines, model.index)
    cart = tuple(model.index[sku] for sku in dict.fromkeys(cart_skus) if sku in model.index)
    viewing = model.index.get(viewing_sku) if viewing_sku else None
    context = Context(history=history, cart=cart, viewing=viewing, country=country, now=day_of(utcnow()))
    scores = model.ranker.score(context) if model.skus else np.zeros(0)
    in_cart = set(cart_skus)
    excluded_products = {v.product_id for v in (await find_variants(
        session, skus=[*in_cart, *([viewing_sku] if viewing_sku else [])])).values()}
    shown_products: set[int] = set()

    async def available(skus: list[str], stop: int) -> list[Variant]:
        """The variants of `skus` a shopper here may be offered, in order, one per product, at most `stop`."""
        found = await find_variants(session, skus=[sku for sku in skus if sku not in in_cart])
        stock = await available_for_country(session, skus=list(found), country=country)
        kept: list[Variant] = []
        for sku in skus:
            variant = found.get(sku)
            if (variant is None or not variant.active or stock.get(sku, 0) <= 0
                    or not is_sellable_to(variant.product, country)
                    or variant.product_id in excluded_products or variant.product_id in shown_products):
                continue
            kept.append(variant)
            shown_products.add(variant.product_id)
            if len(kept) == stop:
                break
        return kept

    ranked = [model.skus[i] for i in top_items(scores, scores.size).tolist()]
    picks: list[_Pick] = []
    start, size = 0, FIRST_LOOKUP
    while start < len(ranked) and len(picks) < limit:
        for variant in await available(ranked[start:start + size], limit - len(picks)):
            name, anchor_item = model.ranker.explain(context, model.index[variant.sku])
            anchor_sku = model.skus[anchor_item] if anchor_item is not None and name != "buy_again" else None
            picks.append(_Pick(variant.sku, variant, name, anchor_sku))
        start, size = start + size, size * 4
    if len(picks) < limit:
        # A new shop has no sales to learn from (and products added since training are unknown to the model):
        # the newest products in stock still make a sensible list.
        scored = set(ranked)
        newest = [v.sku for p in reversed(await all_products(session)) for v in p.variants if v.sku not in scored]
        picks += [_Pick(v.sku, v, "new_in_shop", None) for v in await available(newest, limit - len(picks))]
    anchors = await find_variants(session, skus=[p.anchor_sku for p in picks if p.anchor_sku])
    bought = {sku: len({line.order_id for line in lines if line.sku == sku}) for sku in {ln.sku for ln in lines}}
    out = []
    for pick in picks:
        product = pick.variant.product
        if pick.model == "new_in_shop":
            out.append(Recommendation(sku=pick.sku, product_id=product.id, score=0.0, model="new_in_shop",
                                      reason="New in the shop", reason_code="new_in_shop"))
            continue
        anchor = anchors[pick.anchor_sku].product if pick.anchor_sku in anchors else None
        reason = _reason(pick.model, anchor, anchor_is_cart=pick.anchor_sku in in_cart, country=country,
                         bought_times=bought.get(pick.sku, 0))
        out.append(Recommendation(
            sku=pick.sku, product_id=product.id, score=round(float(scores[model.index[pick.sku]]), 6),
            model=pick.model, reason=reason, reason_code=pick.model, anchor_sku=pick.anchor_sku,
            anchor_title=localized(anchor.title, "en") if anchor is not None else None))
    return out


async def record_impressions(session: AsyncSession, *, recommendations: Sequence[Recommendation],
                             shopper_id: int | None, channel: str) -> list[int]:
    """Remember what was shown (for click-through and conversion per model); returns the impression ids."""
    now = utcnow()
    rows = [RecommendationImpression(model=r.model, sku=r.sku, product_id=r.product_id, shopper_id=shopper_id,
                                     channel=channel[:20], position=position, reason=r.reason[:300], shown_at=now)
            for position, r in enumerate(recommendations)]
    RecommendRepository(session).add_impressions(rows)
    await session.flush()
    return [row.id for row in rows]


async def record_outcome(session: AsyncSession, *, impression_id: int, kind: str,
                         order_id: int | None = None) -> bool:
    """Note a click, add-to-cart or purchase on a shown recommendation; False when it was already noted."""
    if kind not in OUTCOME_KINDS:
        raise UnknownOutcome(f"{kind!r} is not an outcome; expected one of {', '.join(OUTCOME_KINDS)}.")
    repo = RecommendRepository(session)
    if await repo.impression(impression_id) is None:
        raise ImpressionNotFound(f"No recommendation impression {impression_id}.")
    if await repo.outcome(impression_id, kind) is not None:
        return False
    session.add(RecommendationOutcome(impression_id=impression_id, kind=kind, order_id=order_id,
                                      occurred_at=utcnow()))
    await session.flush()
    return True


def _performance(model: str, channel: str | None, row: dict[str, int]) -> ModelPerformance:
    shown = row.get("impressions", 0)
    clicks, purchases = row.get("click", 0), row.get("purchase", 0)
    return ModelPerformance(model=model, channel=channel, impressions=shown, clicks=clicks, purchases=purchases,
                            added_to_cart=row.get("add_to_cart", 0),
                            click_through=round(clicks / shown, 4) if shown else 0.0,
                            conversion=round(purchases / shown, 4) if shown else 0.0)


async def performance(session: AsyncSession, *, since: datetime | None = None,
                      per_channel: bool = False) -> list[ModelPerformance]:
    """Click-through and conversion per model (and per channel with `per_channel`), most shown first.

    A click is a product card opened or added to the cart from a recommendation; a conversion is an order
    holding it (counted once per impression)."""
    counts = await RecommendRepository(session).counts(since, per_channel=per_channel)
    result = [_performance(model, channel if per_channel else None, row) for (model, channel), row in counts.items()]
    return sorted(result, key=lambda p: (-p.impressions, p.model, p.channel or ""))


async def channel_performance(session: AsyncSession, *, since: datetime | None = None) -> list[ModelPerformance]:
    """Click-through and conversion per channel over every model (model "all"), most shown first."""
    totals: dict[str, dict[str, int]] = {}
    for (_, channel), row in (await RecommendRepository(session).counts(since, per_channel=True)).items():
        total = totals.setdefault(channel, {})
        for kind, value in row.items():
            total[kind] = total.get(kind, 0) + value
    result = [_performance("all", channel, row) for channel, row in totals.items()]
    return sorted(result, key=lambda p: (-p.impressions, p.channel or ""))

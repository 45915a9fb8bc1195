"""The recommenders combined: `Blender` (fixed weights) and `Ranker` (LightGBM lambdarank over their scores and
the shopper's purchase pattern), both answering with `Scored` items."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from commerce.recommend.interactions import (
    _EMPTY_FLOAT,
    _EMPTY_INT,
    Context,
    FloatArray,
    History,
    IntArray,
    Interactions,
    Model,
    NextBasket,
    _next_basket_rate,
    _now,
    carve_last_baskets,
)
from commerce.recommend.recommenders import BuyAgain, ContentBased, FrequentlyBoughtWith, ItemToItem, Popularity


@dataclass(frozen=True)
class Scored:
    item: int
    score: float
    model: str  # the model that contributed most
    anchor: int | None  # the context item behind it, when there is one


class Blender:
    """Weighted sum of each model's scores scaled to [0, 1] for this request."""

    def __init__(self, models: Sequence[Model], weights: Mapping[str, float]) -> None:
        self.models = list(models)
        self.weights = dict(weights)

    def fit(self, interactions: Interactions) -> None:
        for model in self.models:
            model.fit(interactions)

    def parts(self, context: Context) -> dict[str, FloatArray]:
        parts: dict[str, FloatArray] = {}
        for model in self.models:
            weight = self.weights.get(model.name, 0.0)
            if weight <= 0:
                continue
            scores = model.score(context)
            top = float(scores.max()) if scores.size else 0.0
            parts[model.name] = weight * scores / top if top > 0 else scores
        return parts

    def score(self, context: Context) -> FloatArray:
        parts = list(self.parts(context).values())
        if not parts:
            return np.zeros(0)
        return np.asarray(np.sum(parts, axis=0), dtype=np.float64)

    def recommend(self, context: Context, *, limit: int,
                  exclude: npt.NDArray[np.bool_] | None = None) -> list[Scored]:
        """The best `limit` items with a positive score, each with the model and anchor that explain it.

        `exclude` masks items that must not be shown (out of stock, in the cart, ...)."""
        parts = self.parts(context)
        if not parts or limit <= 0:
            return []
        names = list(parts)
        stacked = np.stack([parts[name] for name in names])
        total = stacked.sum(axis=0)
        if exclude is not None:
            total = np.where(exclude[: total.size], 0.0, total)
        for item in context.cart:
            if 0 <= item < total.size:
                total[item] = 0.0
        top = top_items(total, limit)
        models = {model.name: model for model in self.models}
        result = []
        for item in top:
            name = names[int(np.argmax(stacked[:, item]))]
            result.append(Scored(int(item), float(total[item]), name, models[name].anchor(context, int(item))))
        return result


def top_items(scores: FloatArray, limit: int) -> IntArray:
    """Indices of the `limit` highest positive scores, best first (ties: lower index first)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0 or limit <= 0:
        return _EMPTY_INT
    if positive.size > limit:
        part = np.argpartition(-scores[positive], limit - 1)[:limit]
        positive = positive[part]
    order = np.lexsort((positive, -scores[positive]))
    return positive[order].astype(np.int64)


def _sample_negatives(positive: npt.NDArray[np.bool_], per_positive: float,
                      rng: np.random.Generator) -> IntArray:
    """Row indices to keep: every positive and at most `per_positive` random negatives for each
    (as many as for one positive when there is none), in their original order."""
    positives = np.flatnonzero(positive)
    negatives = np.flatnonzero(~positive)
    wanted = int(per_positive * max(positives.size, 1))
    if negatives.size > wanted:
        negatives = rng.choice(negatives, size=wanted, replace=False)
    return np.sort(np.concatenate([positives, negatives])).astype(np.int64)


FEATURES = (
    "buy_again", "bought_times", "bought_share", "days_since_item", "customer_baskets", "days_since_last",
    "item_to_item", "item_to_item_norm", "item_to_item_rank", "bought_with", "bought_with_norm",
    "popularity", "popularity_country", "item_customers", "item_repeat_rate", "cart_size",
    "baskets_ago", "customer_interval", "item_interval", "sold_last_week", "sold_last_month",
    "sold_year_ago", "customer_basket_size",
    # Buy-again timing and habits: is the item due, does it come back, does this shopper repeat?
    "item_next_rate", "customer_repeat_share", "due_ratio", "bought_recently", "item_trend",
)
WEEK = 7.0


class Bagged:
    """LightGBM rankers averaged: the mean of their raw scores."""

    def __init__(self, boosters: Sequence[Any]) -> None:
        self.boosters = list(boosters)

    def predict(self, features: FloatArray) -> FloatArray:
        return np.asarray(np.mean([booster.predict(features) for booster in self.boosters], axis=0),
                          dtype=np.float64)


class Ranker:
    """Learned blend: candidates from every model, ranked by gradient-boosted trees (LightGBM lambdarank,
    one query per next basket) on the models' scores and the shopper's own purchase pattern (buy-again
    timing: days since the item, the item's own interval and how due it is, how often it comes back in the
    next basket, how much this shopper repeats). Taught on each customer's last three baskets, each
    predicted from what came before (half of them with part of that basket in the cart, so it learns the
    cart question too). Five rankers, each on its own random negatives of those examples, are averaged:
    steadier than one sampling (validation Recall@10 0.1973 vs 0.1952, seed means; see bench/recommend.py)."""

    name = "blend"

    def __init__(self, *, buy_again: BuyAgain, item_to_item: ItemToItem, bought_with: FrequentlyBoughtWith,
                 popularity: Popularity, content: ContentBased | None = None, cold_start_weight: float = 0.05,
                 candidates_per_model: int = 50, cart_share: float = 0.5, min_examples: int = 30,
                 max_rows: int = 300_000, trees: int = 100, label_rounds: int = 3,
                 negatives_per_positive: float | None = 10.0, bags: int = 5, seed: int = 11) -> None:
        self.buy_again = buy_again
        self.item_to_item = item_to_item
        self.bought_with = bought_with
        self.popularity = popularity
        self.content = content
        self.cold_start_weight = cold_start_weight
        self.candidates_per_model = candidates_per_model
        self.cart_share = cart_share
        self.min_examples = min_examples
        self.max_rows = max_rows
        self.trees = trees
        self.label_rounds = label_rounds  # how many last baskets per customer to learn from
        # Negatives kept per positive in each example (random, at least this many when none is bought);
        # None keeps every candidate. Fewer rows make the trees ~2x cheaper at the same validation score.
        self.negatives_per_positive = negatives_per_positive
        # Rankers averaged, each on its own random negatives of the same examples (features are built once).
        self.bags = bags
        self.seed = seed
        self.classifier: Bagged | None = None
        self.n_items = 0
        self.last_day = 0.0
        self.item_customers: FloatArray = _EMPTY_FLOAT
        self.item_repeat_rate: FloatArray = _EMPTY_FLOAT
        self.item_next_rate: FloatArray = _EMPTY_FLOAT  # P(item again in the same shopper's next basket)
        self.first_day = 0.0
        self.weekly_sales: FloatArray = np.zeros((0, 1))  # items x weeks: baskets sold before the week
        self.fallback = Blender(self.models, {"buy_again": 1.0, "item_to_item": 0.3, "bought_with": 0.5,
                                              "popularity": 0.05, "similar_product": cold_start_weight})

    @property
    def models(self) -> list[Model]:
        models: list[Model] = [self.buy_again, self.item_to_item, self.bought_with, self.popularity]
        return models + ([self.content] if self.content is not None else [])

    def _fit_models(self, interactions: Interactions) -> None:
        for model in self.models:
            model.fit(interactions)
        self.n_items = interactions.n_items
        self.last_day = interactions.last_day
        counts = interactions.customer_item_matrix()
        if counts.shape[0]:
            per_item = counts.tocsc()
            buyers = np.diff(per_item.indptr).astype(np.float64)
            repeaters = np.asarray((per_item >= 2).sum(axis=0), dtype=np.float64).ravel()
        else:
            buyers = repeaters = np.zeros(self.n_items)
        self.item_customers = np.log1p(buyers)
        self.first_day = float(interactions.day.min()) if interactions.day.size else 0.0
        _, rows = np.unique(np.stack([interactions.basket, interactions.item]), axis=1, return_index=True)
        weeks = ((interactions.day[rows] - self.first_day) // WEEK).astype(np.int64)
        n_weeks = int(weeks.max()) + 1 if weeks.size else 1
        weekly = np.zeros((self.n_items, n_weeks + 1))
        np.add.at(weekly, (interactions.item[rows], weeks + 1), 1.0)
        self.weekly_sales = np.cumsum(weekly, axis=1)
        self.item_repeat_rate = (repeaters + 0.1) / (buyers + 1.0)
        self.item_next_rate = _next_basket_rate(interactions)

    def fit(self, interactions: Interactions) -> None:
        self.classifier = None
        rng = np.random.default_rng(self.seed)
        blocks: list[list[FloatArray]] = [[] for _ in range(max(self.bags, 1))]
        answers: list[list[npt.NDArray[np.bool_]]] = [[] for _ in blocks]
        remaining = interactions
        for _ in range(self.label_rounds):
            learn_from, labels = carve_last_baskets(remaining)
            if len(labels) < self.min_examples:
                break
            self._fit_models(learn_from)
            self._examples(learn_from, labels, rng, blocks, answers)
            remaining = learn_from
        boosters = [self._fit_ranking(bag_blocks, bag_answers, rng, seed=self.seed + bag)
                    for bag, (bag_blocks, bag_answers) in enumerate(zip(blocks, answers, strict=True)) if bag_blocks]
        fitted = [booster for booster in boosters if booster is not None]
        self.classifier = Bagged(fitted) if fitted else None
        self._fit_models(interactions)

    def _examples(self, interactions: Interactions, labels: list[NextBasket], rng: np.random.Generator,
                  blocks: list[list[FloatArray]], answers: list[list[npt.NDArray[np.bool_]]]) -> None:
        histories = interactions.histories()
        for label in labels:
            wanted = label.items[label.items < self.n_items]
            cart: tuple[int, ...] = ()
            if wanted.size >= 2 and rng.random() < self.cart_share:
                shuffled = rng.permutation(wanted)
                size = int(rng.integers(1, wanted.size))
                cart, wanted = tuple(int(i) for i in shuffled[:size]), shuffled[size:]
            context = Context(history=histories.get(label.customer, History()), cart=cart,
                              country=label.country, now=label.day)
            candidates, features, _ = self.features(context)
            bought = np.isin(candidates, wanted)
            for bag_blocks, bag_answers in zip(blocks, answers, strict=True):
                keep = np.arange(bought.size) if self.negatives_per_positive is None else \
                    _sample_negatives(bought, self.negatives_per_positive, rng)
                bag_blocks.append(features[keep])
                bag_answers.append(bought[keep])

    def _fit_ranking(self, blocks: list[FloatArray], answers: list[npt.NDArray[np.bool_]],
                     rng: np.random.Generator, *, seed: int) -> Any:
        """LightGBM lambdarank: each example's candidates form one query, the bought ones rank first."""
        import lightgbm

        x, y = np.concatenate(blocks), np.concatenate(answers)
        if not y.any() or y.all():
            return None
        query = np.repeat(np.arange(len(blocks)), [block.shape[0] for block in blocks])
        if x.shape[0] > self.max_rows:
            # Keep every positive; sample the negatives.
            negatives = np.flatnonzero(~y)
            keep_negatives = rng.choice(negatives, size=max(self.max_rows - int(y.sum()), 1), replace=False)
            rows = np.sort(np.concatenate([np.flatnonzero(y), keep_negatives]))
            x, y, query = x[rows], y[rows], query[rows]
        sizes = np.bincount(query)
        data = lightgbm.Dataset(x, label=y.astype(np.int64), group=sizes[sizes > 0])
        params = {"objective": "lambdarank", "learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 40,
                  "num_threads": 1, "seed": seed, "verbosity": -1}
        return lightgbm.train(params, data, num_boost_round=self.trees)

    def features(self, context: Context) -> tuple[IntArray, FloatArray, dict[str, FloatArray]]:
        """Candidate items, their feature rows and each model's scores over all items."""
        n = self.n_items
        now = _now(context, self.last_day)
        scores = {model.name: model.score(context) for model in self.models}
        history = context.history
        keep = (history.item >= 0) & (history.item < n)
        h_item, h_day, h_basket = history.item[keep], history.day[keep], history.basket[keep]
        pool = [np.unique(h_item)]
        for name in ("item_to_item", "bought_with", "popularity"):
            pool.append(top_items(scores[name], self.candidates_per_model))
        candidates = np.unique(np.concatenate(pool)).astype(np.int64)
        if context.cart:
            candidates = candidates[~np.isin(candidates, np.array(context.cart, dtype=np.int64))]
        bought_times = np.zeros(n)
        last_bought = np.full(n, -np.inf)
        if h_item.size:
            pairs, first = np.unique(np.stack([h_basket, h_item]), axis=1, return_index=True)
            np.add.at(bought_times, pairs[1], 1.0)
            np.maximum.at(last_bought, h_item, h_day)
        customer_baskets = float(np.unique(h_basket).size)
        days_since_last = now - float(h_day.max()) if h_day.size else 3650.0
        i2i = scores["item_to_item"]
        i2i_top = float(i2i.max()) if i2i.size else 0.0
        i2i_rank = np.full(n, 1000.0)
        ranked = top_items(i2i, 1000)
        i2i_rank[ranked] = np.arange(ranked.size)
        fbt = scores["bought_with"]
        fbt_top = float(fbt.max()) if fbt.size else 0.0
        country_pop = self.popularity.by_country.get(context.country or "", self.popularity.overall)
        c = candidates
        basket_days = np.unique(h_day) if h_day.size else h_day
        customer_interval = float(np.diff(basket_days).mean()) if basket_days.size > 1 else 365.0
        baskets_ago = np.full(c.size, 100.0)
        item_interval = np.full(c.size, 365.0)
        bought_recently = np.zeros(c.size)
        repeat_share = np.nan  # unknown until the shopper has a second basket
        due_ratio = np.full(c.size, np.nan)
        if h_item.size:
            baskets, row_basket = np.unique(h_basket, return_inverse=True)
            basket_day = np.full(baskets.size, -np.inf)
            np.maximum.at(basket_day, row_basket, h_day)
            # 0 for the latest basket, 1 for the one before, ...
            age_rank = np.empty(baskets.size)
            age_rank[np.lexsort((-baskets, -basket_day))] = np.arange(baskets.size)
            item_age = np.full(n, 100.0)
            np.minimum.at(item_age, h_item, age_rank[row_basket])
            baskets_ago = item_age[c]
            first_bought = np.full(n, np.inf)
            np.minimum.at(first_bought, h_item, h_day)
            times = bought_times[c]
            span = np.where(times > 1, last_bought[c] - first_bought[c], 0.0)
            item_interval = np.where(times > 1, span / np.maximum(times - 1, 1), 365.0)
            # Baskets the item was in among the shopper's last three.
            recent = np.zeros(n)
            pairs_recent = np.unique(np.stack([h_basket, h_item]), axis=1)
            pair_age = age_rank[np.searchsorted(baskets, pairs_recent[0])]
            np.add.at(recent, pairs_recent[1][pair_age < 3], 1.0)
            bought_recently = recent[c]
            # Share of the lines of later baskets that were repeats of something bought before.
            pair_day = basket_day[np.searchsorted(baskets, pairs_recent[0])]
            later = pair_day > float(basket_day.min())
            if later.any():
                repeat_share = float(np.mean(pair_day[later] > first_bought[pairs_recent[1][later]]))
            since = now - last_bought[c]
            due_ratio = np.where(times > 1, since / np.maximum(item_interval, 1.0), np.nan)
        sold = self._sales_between(c, now - WEEK, now), self._sales_between(c, now - 4 * WEEK, now), \
            self._sales_between(c, now - 365 - 2 * WEEK, now - 365 + 2 * WEEK)
        basket_size = h_item.size / max(customer_baskets, 1.0)
        columns = [
            scores["buy_again"][c], bought_times[c],
            bought_times[c] / max(customer_baskets, 1.0),
            np.where(np.isfinite(last_bought[c]), now - last_bought[c], 3650.0),
            np.full(c.size, customer_baskets), np.full(c.size, days_since_last),
            i2i[c], i2i[c] / i2i_top if i2i_top > 0 else i2i[c], i2i_rank[c],
            fbt[c], fbt[c] / fbt_top if fbt_top > 0 else fbt[c],
            self.popularity.overall[c] if self.popularity.overall.size else np.zeros(c.size),
            country_pop[c] if country_pop.size else np.zeros(c.size),
            self.item_customers[c], self.item_repeat_rate[c], np.full(c.size, float(len(context.cart))),
            baskets_ago, np.full(c.size, customer_interval), item_interval, *sold,
            np.full(c.size, basket_size),
            self.item_next_rate[c], np.full(c.size, repeat_share), due_ratio, bought_recently,
            sold[1] / (self._sales_between(c, now - 365.0, now) / 13.0 + 1.0),
        ]
        return candidates, np.stack(columns, axis=1).astype(np.float64), scores

    def _sales_between(self, items: IntArray, start: float, end: float) -> FloatArray:
        edges = self.weekly_sales.shape[1] - 1
        first = int(np.clip((start - self.first_day) // WEEK, 0, edges))
        last = int(np.clip((end - self.first_day) // WEEK, 0, edges))
        if last <= first or items.size == 0:
            return np.zeros(items.size)
        sold: FloatArray = self.weekly_sales[items, last] - self.weekly_sales[items, first]
        return sold

    def score(self, context: Context) -> FloatArray:
        if self.classifier is None:
            return self.fallback.score(context)
        candidates, features, scores = self.features(context)
        result = np.zeros(self.n_items)
        if candidates.size:
            # Ranking scores squashed into (0, 1); the tiny floor keeps every candidate above items nobody
            # suggested.
            result[candidates] = expit(self.classifier.predict(features)) + 1e-9
        content = scores.get("similar_product")
        if content is not None and content.size == result.size:
            result += self.cold_start_weight * content
        return result

    def recommend(self, context: Context, *, limit: int,
                  exclude: npt.NDArray[np.bool_] | None = None) -> list[Scored]:
        """The best `limit` items, each with the model and the context item that explain it."""
        if self.n_items == 0 or limit <= 0:
            return []
        total = self.score(context)
        if exclude is not None:
            total = np.where(exclude[: total.size], 0.0, total)
        for item in context.cart:
            if 0 <= item < total.size:
                total[item] = 0.0
        result = []
        for item in top_items(total, limit).tolist():
            name, anchor = self.explain(context, item)
            result.append(Scored(item, float(total[item]), name, anchor))
        return result

    def anchor(self, context: Context, item: int) -> int | None:
        return self.explain(context, item)[1]

    def explain(self, context: Context, item: int) -> tuple[str, int | None]:
        """Which model the shopper would recognise as the reason, most personal first."""
        if item in set(context.history.item.tolist()):
            return self.buy_again.name, item
        if context.anchors(self.n_items):
            anchor = self.bought_with.anchor(context, item)
            if anchor is not None:
                return self.bought_with.name, anchor
        anchor = self.item_to_item.anchor(context, item)
        if anchor is not None:
            return self.item_to_item.name, anchor
        if self.content is not None and self.content.eligible.size > item and self.content.eligible[item]:
            anchor = self.content.anchor(context, item)
            if anchor is not None:
                return self.content.name, anchor
        return self.popularity.name, None

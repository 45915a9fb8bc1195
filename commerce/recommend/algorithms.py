"""Recommendation models over item indices: numpy and scipy only, no database.

Every model has the same shape: `fit(interactions)` learns from past baskets, `score(context)` gives
one score per item (0 = no opinion) and `anchor(context, item)` names the item in the context that
led to a recommendation, so the reply can say why. The `Blender` mixes models with tuned weights.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_EMPTY_INT: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT: FloatArray = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class Interactions:
    """Past purchases as parallel arrays, one row per (basket, item)."""

    n_items: int
    basket: IntArray  # basket index, 0..n_baskets-1
    item: IntArray
    customer: IntArray  # -1 for guest baskets
    day: FloatArray  # days since an epoch (fractional)
    country: IntArray  # index into `countries`, -1 when unknown
    countries: tuple[str, ...] = ()

    @property
    def n_baskets(self) -> int:
        return int(self.basket.max()) + 1 if self.basket.size else 0

    @property
    def last_day(self) -> float:
        return float(self.day.max()) if self.day.size else 0.0

    def basket_item_matrix(self) -> Any:
        """Binary baskets x items (a repeated line counts once)."""
        data = np.ones(self.basket.size, dtype=np.float64)
        matrix = sp.csr_matrix((data, (self.basket, self.item)), shape=(self.n_baskets, self.n_items))
        matrix.data[:] = 1.0
        return matrix

    def customer_item_matrix(self, *, half_life_days: float | None = None) -> Any:
        """Customers x items: number of baskets holding the item, optionally time-decayed."""
        known = self.customer >= 0
        if not known.any():
            return sp.csr_matrix((0, self.n_items))
        # One row per (basket, item) so a line split in two still counts once.
        pairs = np.unique(np.stack([self.basket[known], self.item[known]]), axis=1)
        first_row = _first_row_of_basket(self.basket)
        customers = self.customer[first_row[pairs[0]]]
        weights = np.ones(pairs.shape[1])
        if half_life_days is not None:
            age = self.last_day - self.day[first_row[pairs[0]]]
            weights = np.exp2(-age / half_life_days)
        n_customers = int(self.customer.max()) + 1
        return sp.csr_matrix((weights, (customers, pairs[1])), shape=(n_customers, self.n_items))


def _first_row_of_basket(basket: IntArray) -> IntArray:
    first = np.full(int(basket.max()) + 1 if basket.size else 0, -1, dtype=np.int64)
    order = np.arange(basket.size - 1, -1, -1)
    first[basket[order]] = order
    return first


@dataclass(frozen=True)
class History:
    """One shopper's own past purchases: item, day and basket of each line."""

    item: IntArray = field(default_factory=lambda: _EMPTY_INT)
    day: FloatArray = field(default_factory=lambda: _EMPTY_FLOAT)
    basket: IntArray = field(default_factory=lambda: _EMPTY_INT)

    def decayed_counts(self, n_items: int, *, now: float, half_life_days: float) -> FloatArray:
        """Per item: sum over the baskets that held it of 2^(-age / half-life)."""
        counts = np.zeros(n_items)
        if self.item.size == 0:
            return counts
        keep = (self.item >= 0) & (self.item < n_items)
        pairs, first = np.unique(np.stack([self.basket[keep], self.item[keep]]), axis=1, return_index=True)
        days = self.day[keep][first]
        weights = np.exp2(-np.maximum(now - days, 0.0) / half_life_days)
        np.add.at(counts, pairs[1], weights)
        return counts


@dataclass(frozen=True)
class Context:
    """What the conversation knows: the shopper's history, the cart, the product in view, the country."""

    history: History = field(default_factory=History)
    cart: tuple[int, ...] = ()
    viewing: int | None = None
    country: str | None = None
    now: float | None = None  # day of the request; defaults to the last training day

    def anchors(self, n_items: int) -> tuple[int, ...]:
        items = [*self.cart, *([self.viewing] if self.viewing is not None else [])]
        return tuple(dict.fromkeys(i for i in items if 0 <= i < n_items))


class Model(Protocol):
    name: str

    def fit(self, interactions: Interactions) -> None: ...

    def score(self, context: Context) -> FloatArray: ...

    def anchor(self, context: Context, item: int) -> int | None: ...


def _now(context: Context, fitted_last_day: float) -> float:
    return fitted_last_day if context.now is None else context.now


class Popularity:
    """Most-bought items in the shopper's country (distinct customers, recent ones count more)."""

    name = "popularity"

    def __init__(self, *, half_life_days: float | None = 90.0, country_min_baskets: int = 20,
                 global_share: float = 0.1) -> None:
        self.half_life_days = half_life_days
        self.country_min_baskets = country_min_baskets
        self.global_share = global_share
        self.overall: FloatArray = _EMPTY_FLOAT
        self.by_country: dict[str, FloatArray] = {}

    def fit(self, interactions: Interactions) -> None:
        n = interactions.n_items
        weights = np.ones(interactions.item.size)
        if self.half_life_days is not None and interactions.day.size:
            weights = np.exp2(-(interactions.last_day - interactions.day) / self.half_life_days)
        # Count each basket's item once, whatever the number of lines.
        _, unique_rows = np.unique(np.stack([interactions.basket, interactions.item]), axis=1,
                                   return_index=True)
        items, w, countries = interactions.item[unique_rows], weights[unique_rows], \
            interactions.country[unique_rows]
        self.overall = _normalised(np.bincount(items, weights=w, minlength=n).astype(np.float64))
        self.by_country = {}
        for code, name in enumerate(interactions.countries):
            mask = countries == code
            baskets = np.unique(interactions.basket[unique_rows][mask]).size
            if baskets < self.country_min_baskets:
                continue
            local = np.bincount(items[mask], weights=w[mask], minlength=n).astype(np.float64)
            self.by_country[name] = _normalised(local)

    def score(self, context: Context) -> FloatArray:
        local = self.by_country.get(context.country or "")
        if local is None:
            return self.overall.copy()
        return (1 - self.global_share) * local + self.global_share * self.overall

    def anchor(self, context: Context, item: int) -> int | None:
        return None


class BuyAgain:
    """The shopper's own repeat purchases: baskets holding the item, halved every `half_life_days`."""

    name = "buy_again"

    def __init__(self, *, half_life_days: float = 120.0) -> None:
        self.half_life_days = half_life_days
        self.n_items = 0
        self.last_day = 0.0

    def fit(self, interactions: Interactions) -> None:
        self.n_items = interactions.n_items
        self.last_day = interactions.last_day

    def score(self, context: Context) -> FloatArray:
        return context.history.decayed_counts(self.n_items, now=_now(context, self.last_day),
                                              half_life_days=self.half_life_days)

    def anchor(self, context: Context, item: int) -> int | None:
        return item if item in set(context.history.item.tolist()) else None


class ItemToItem:
    """Co-purchase similarity between items (cosine item-kNN, RP3beta or EASE), applied to the
    shopper's decayed history plus the cart and the product in view."""

    name = "item_to_item"

    def __init__(self, *, method: str = "rp3beta", neighbours: int = 100, alpha: float = 1.0,
                 beta: float = 0.5, shrink: float = 10.0, l2: float = 200.0,
                 half_life_days: float = 120.0, context_weight: float = 2.0) -> None:
        if method not in ("cosine", "rp3beta", "ease"):
            raise ValueError(f"unknown item-to-item method {method!r}")
        self.method = method
        self.neighbours = neighbours
        self.alpha = alpha
        self.beta = beta
        self.shrink = shrink
        self.l2 = l2
        self.half_life_days = half_life_days
        self.context_weight = context_weight
        self.similarity: Any = sp.csr_matrix((0, 0))
        self.n_items = 0
        self.last_day = 0.0

    def fit(self, interactions: Interactions) -> None:
        self.n_items = interactions.n_items
        self.last_day = interactions.last_day
        customers = interactions.customer_item_matrix()
        if customers.shape[0] == 0 or customers.nnz == 0:
            self.similarity = sp.csr_matrix((self.n_items, self.n_items))
            return
        customers.data[:] = 1.0
        if self.method == "cosine":
            dense = _cosine(customers, self.shrink)
        elif self.method == "rp3beta":
            dense = _rp3beta(customers, self.alpha, self.beta)
        else:
            dense = _ease(customers, self.l2)
        np.fill_diagonal(dense, 0.0)
        self.similarity = _top_k_rows(dense, self.neighbours)

    def profile(self, context: Context) -> FloatArray:
        weights = context.history.decayed_counts(self.n_items, now=_now(context, self.last_day),
                                                 half_life_days=self.half_life_days)
        if weights.any():
            weights = weights / weights.sum()
        for item in context.anchors(self.n_items):
            weights[item] += self.context_weight
        return weights

    def score(self, context: Context) -> FloatArray:
        if self.n_items == 0:
            return np.zeros(0)
        profile = self.profile(context)
        if not profile.any():
            return np.zeros(self.n_items)
        scores: FloatArray = np.asarray(self.similarity.T @ profile, dtype=np.float64).ravel()
        return np.maximum(scores, 0.0)

    def anchor(self, context: Context, item: int) -> int | None:
        candidates = list(context.anchors(self.n_items)) or list(dict.fromkeys(context.history.item.tolist()))
        return _strongest_anchor(self.similarity, candidates, item)


class FrequentlyBoughtWith:
    """Association over baskets: how often an item shares a basket with the cart's items."""

    name = "bought_with"

    def __init__(self, *, neighbours: int = 100, min_together: int = 2, damping: float = 0.5) -> None:
        self.neighbours = neighbours
        self.min_together = min_together
        self.damping = damping  # 0 = confidence, 1 = lift; in between favours specific partners
        self.association: Any = sp.csr_matrix((0, 0))
        self.n_items = 0

    def fit(self, interactions: Interactions) -> None:
        self.n_items = interactions.n_items
        baskets = interactions.basket_item_matrix()
        if baskets.nnz == 0:
            self.association = sp.csr_matrix((self.n_items, self.n_items))
            return
        together = (baskets.T @ baskets).tocsr().astype(np.float64)
        support = np.asarray(together.diagonal()).ravel()
        together.setdiag(0.0)
        together.data[together.data < self.min_together] = 0.0
        together.eliminate_zeros()
        coo = together.tocoo()
        # confidence(a -> b) = together / support(a), divided by support(b)^damping.
        values = coo.data / support[coo.row] / np.power(np.maximum(support[coo.col], 1.0), self.damping)
        matrix = sp.csr_matrix((values, (coo.row, coo.col)), shape=together.shape)
        self.association = _top_k_sparse_rows(matrix, self.neighbours)

    def score(self, context: Context) -> FloatArray:
        anchors = context.anchors(self.n_items)
        if not anchors:
            return np.zeros(self.n_items)
        return np.asarray(self.association[list(anchors)].sum(axis=0), dtype=np.float64).ravel()

    def anchor(self, context: Context, item: int) -> int | None:
        return _strongest_anchor(self.association, list(context.anchors(self.n_items)), item)


class ContentBased:
    """Products that read alike (embedding cosine); covers new products that have no sales yet."""

    name = "similar_product"

    def __init__(self, vectors: FloatArray, *, only_unsold: bool = True, min_sales: int = 1,
                 recent_history: int = 5) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else vectors
        self.vectors: FloatArray = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0) \
            if vectors.size else np.zeros((0, 0))
        self.only_unsold = only_unsold
        self.min_sales = min_sales
        self.recent_history = recent_history
        self.eligible: npt.NDArray[np.bool_] = np.ones(len(vectors), dtype=bool)

    def fit(self, interactions: Interactions) -> None:
        n = len(self.vectors)
        if self.only_unsold:
            sales = np.bincount(interactions.item[interactions.item < n], minlength=n)
            self.eligible = sales < self.min_sales
        else:
            self.eligible = np.ones(n, dtype=bool)

    def _anchors(self, context: Context) -> list[int]:
        n = len(self.vectors)
        anchors = list(context.anchors(n))
        if not anchors and context.history.item.size:
            recent = context.history.item[np.argsort(-context.history.day, kind="stable")]
            anchors = list(dict.fromkeys(int(i) for i in recent if 0 <= i < n))[: self.recent_history]
        return anchors

    def score(self, context: Context) -> FloatArray:
        n = len(self.vectors)
        anchors = self._anchors(context)
        if not anchors or n == 0:
            return np.zeros(n)
        query = self.vectors[anchors].mean(axis=0)
        scores = np.maximum(self.vectors @ query, 0.0)
        scores[~self.eligible] = 0.0
        return np.asarray(scores, dtype=np.float64)

    def anchor(self, context: Context, item: int) -> int | None:
        anchors = self._anchors(context)
        if not anchors:
            return None
        return int(anchors[int(np.argmax(self.vectors[anchors] @ self.vectors[item]))])


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


def _normalised(values: FloatArray) -> FloatArray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else values


def _cosine(customers: Any, shrink: float) -> FloatArray:
    together = np.asarray((customers.T @ customers).todense(), dtype=np.float64)
    norms = np.sqrt(np.asarray(customers.sum(axis=0)).ravel())
    return together / (np.outer(norms, norms) + shrink + 1e-12)


def _rp3beta(customers: Any, alpha: float, beta: float) -> FloatArray:
    customer_to_item = _row_normalised(customers)
    item_to_customer = _row_normalised(customers.T.tocsr())
    if alpha != 1.0:
        customer_to_item.data **= alpha
        item_to_customer.data **= alpha
    walk = np.asarray((item_to_customer @ customer_to_item).todense(), dtype=np.float64)
    popularity = np.asarray(customers.sum(axis=0)).ravel()
    return walk / np.power(np.maximum(popularity, 1.0), beta)[None, :]


def _ease(customers: Any, l2: float) -> FloatArray:
    gram = np.asarray((customers.T @ customers).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    return -inverse / np.diag(inverse)[None, :]


def _row_normalised(matrix: Any) -> Any:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return (sp.diags(scale) @ matrix).tocsr()


def _top_k_rows(dense: FloatArray, k: int) -> Any:
    n = dense.shape[0]
    if n == 0:
        return sp.csr_matrix((0, 0))
    k = min(k, n)
    columns = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    values = dense[rows, columns.ravel()]
    keep = values > 0
    return sp.csr_matrix((values[keep], (rows[keep], columns.ravel()[keep])), shape=dense.shape)


def _top_k_sparse_rows(matrix: Any, k: int) -> Any:
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if start == end:
            continue
        data, indices = matrix.data[start:end], matrix.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, indices = data[keep], indices[keep]
        rows.append(np.full(indices.size, row))
        cols.append(indices)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=matrix.shape)


def _strongest_anchor(similarity: Any, anchors: list[int], item: int) -> int | None:
    if not anchors or similarity.shape[0] == 0:
        return None
    column = np.asarray(similarity[anchors, item].todense()).ravel()
    best = int(np.argmax(column))
    return int(anchors[best]) if column[best] > 0 else None



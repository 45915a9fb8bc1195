"""The five recommenders, each a `Model`: `Popularity`, `BuyAgain`, `ItemToItem`, `FrequentlyBoughtWith`,
`ContentBased`."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from commerce.recommend.interactions import _EMPTY_FLOAT, Context, FloatArray, Interactions, _now
from commerce.recommend.similarity import (
    _cosine,
    _ease,
    _rp3beta,
    _strongest_anchor,
    _top_k_rows,
    _top_k_sparse_rows,
)


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
        used = np.flatnonzero(profile)
        if used.size == 0:
            return np.zeros(self.n_items)
        # Only the rows of the items in the profile: a few rows, not a pass over the whole matrix.
        scores: FloatArray = np.asarray(self.similarity[used].T @ profile[used], dtype=np.float64).ravel()
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


def _normalised(values: FloatArray) -> FloatArray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else values


"""Recommendation models over item indices: numpy and scipy (LightGBM for the learned blend), no database.

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
from scipy.linalg import lapack
from scipy.special import expit

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

    def __post_init__(self) -> None:
        # Empty lists arrive as float arrays; indices must stay integers.
        for name in ("basket", "item", "customer", "country"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        object.__setattr__(self, "day", np.asarray(self.day, dtype=np.float64))

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

    def histories(self) -> dict[int, History]:
        """Each known customer's own purchases."""
        known = np.flatnonzero(self.customer >= 0)
        order = known[np.argsort(self.customer[known], kind="stable")]
        result: dict[int, History] = {}
        if order.size == 0:
            return result
        bounds = np.flatnonzero(np.diff(self.customer[order])) + 1
        for chunk in np.split(order, bounds):
            result[int(self.customer[chunk[0]])] = History(item=self.item[chunk], day=self.day[chunk],
                                                           basket=self.basket[chunk])
        return result

    def subset(self, rows: npt.NDArray[np.bool_]) -> Interactions:
        return Interactions(n_items=self.n_items, basket=self.basket[rows], item=self.item[rows],
                            customer=self.customer[rows], day=self.day[rows], country=self.country[rows],
                            countries=self.countries)

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

    def __post_init__(self) -> None:
        for name in ("item", "basket"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        object.__setattr__(self, "day", np.asarray(self.day, dtype=np.float64))

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
    popularity = np.asarray(customers.sum(axis=0), dtype=np.float64).ravel()
    result: FloatArray = walk / np.power(np.maximum(popularity, 1.0), beta)[None, :]
    return result


def _ease(customers: Any, l2: float) -> FloatArray:
    """EASE's closed form B = -P / diag(P), P = (X'X + l2 I)^-1.

    The regularised Gram matrix is symmetric positive definite, so P comes from a Cholesky factor in
    float32 (about 5x less CPU than a float64 LU inverse; the scores agree to ~1e-6 relative)."""
    gram = np.asarray((customers.T @ customers).todense(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    factor, info = lapack.spotrf(gram, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise ValueError(f"EASE: Gram matrix not positive definite (LAPACK info {info}); raise l2")
    upper, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: Cholesky inverse failed (LAPACK info {info})")
    inverse = np.triu(upper).astype(np.float64)
    inverse += np.triu(inverse, 1).T
    result: FloatArray = -inverse / np.diag(inverse)[None, :]
    return result


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


@dataclass(frozen=True)
class NextBasket:
    """A held-out basket used to teach the ranker: who bought what, when and where."""

    customer: int
    items: IntArray
    day: float
    country: str | None


def carve_last_baskets(interactions: Interactions) -> tuple[Interactions, list[NextBasket]]:
    """Hold out each customer's last basket (customers with at least two); the rest stays to learn from."""
    known = np.flatnonzero(interactions.customer >= 0)
    if known.size == 0:
        return interactions, []
    first_row = _first_row_of_basket(interactions.basket)
    baskets = np.unique(interactions.basket[known])
    owners = interactions.customer[first_row[baskets]]
    days = interactions.day[first_row[baskets]]
    order = np.lexsort((baskets, days, owners))
    baskets, owners, days = baskets[order], owners[order], days[order]
    is_last = np.append(owners[1:] != owners[:-1], True)
    has_earlier = np.insert(owners[1:] == owners[:-1], 0, False)
    chosen = baskets[is_last & has_earlier]
    held = np.isin(interactions.basket, chosen)
    held_rows = np.flatnonzero(held)
    held_rows = held_rows[np.argsort(interactions.basket[held_rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(interactions.basket[held_rows])) + 1
    labels = [_next_basket(interactions, chunk, interactions.countries)
              for chunk in np.split(held_rows, bounds) if chunk.size]
    return interactions.subset(~held), labels


def _next_basket_rate(interactions: Interactions, *, prior_weight: float = 5.0) -> FloatArray:
    """Per item: how often a shopper who bought it bought it again in their very next basket (smoothed)."""
    n = interactions.n_items
    known = interactions.customer >= 0
    if not known.any():
        return np.zeros(n)
    pairs = np.unique(np.stack([interactions.basket[known], interactions.item[known]]), axis=1)
    first_row = _first_row_of_basket(interactions.basket)
    baskets = np.unique(pairs[0])
    owners = interactions.customer[first_row[baskets]]
    days = interactions.day[first_row[baskets]]
    order = np.lexsort((baskets, days, owners))
    ordered, ordered_owners = baskets[order], owners[order]
    next_of = np.full(int(interactions.basket.max()) + 1, -1, dtype=np.int64)
    same = ordered_owners[1:] == ordered_owners[:-1]
    next_of[ordered[:-1][same]] = ordered[1:][same]
    following = next_of[pairs[0]]
    has_next = following >= 0
    keys = pairs[0] * n + pairs[1]
    again = np.isin(following[has_next] * n + pairs[1][has_next], keys)
    tries = np.bincount(pairs[1][has_next], minlength=n).astype(np.float64)
    hits = np.bincount(pairs[1][has_next][again], minlength=n).astype(np.float64)
    prior = hits.sum() / tries.sum() if tries.sum() else 0.0
    return (hits + prior_weight * prior) / (tries + prior_weight)


def _next_basket(interactions: Interactions, rows: IntArray, countries: tuple[str, ...]) -> NextBasket:
    code = int(interactions.country[rows[0]])
    return NextBasket(customer=int(interactions.customer[rows[0]]),
                      items=np.unique(interactions.item[rows]), day=float(interactions.day[rows[0]]),
                      country=countries[code] if 0 <= code < len(countries) else None)


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

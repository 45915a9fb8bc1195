"""What the recommenders learn from and answer to, over item indices (numpy/scipy, no database).

`Interactions` are past baskets, `History` one shopper's own, `Context` what the conversation knows.
Every recommender follows `Model`: `fit(interactions)` learns from past baskets, `score(context)` gives
one score per item (0 = no opinion) and `anchor(context, item)` names the item in the context that led
to a recommendation, so the reply can say why. `carve_last_baskets` holds out the baskets the ranker learns from.
"""
from __future__ import annotations

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


"""The recommendation models on small hand-made baskets, with the rankings a merchant would expect."""
from __future__ import annotations

import numpy as np
import pytest

from commerce.recommend.interactions import Context, History, Interactions, carve_last_baskets
from commerce.recommend.ranker import FEATURES, Blender, Ranker, top_items
from commerce.recommend.recommenders import BuyAgain, ContentBased, FrequentlyBoughtWith, ItemToItem, Popularity

KETTLE, TEAPOT, CUPS, TOASTER, BREAD_BIN, NEW_MUG = range(6)


def baskets(rows: list[tuple[int, list[int], float, str]], n_items: int = 6) -> Interactions:
    """(customer, items, day, country) per basket."""
    basket, item, customer, day, country = [], [], [], [], []
    countries: dict[str, int] = {}
    for b, (who, items, when, where) in enumerate(rows):
        for i in items:
            basket.append(b)
            item.append(i)
            customer.append(who)
            day.append(when)
            country.append(countries.setdefault(where, len(countries)))
    return Interactions(n_items=n_items, basket=np.array(basket), item=np.array(item),
                        customer=np.array(customer), day=np.array(day, dtype=float),
                        country=np.array(country), countries=tuple(countries))


SHOP = baskets([
    (0, [KETTLE, TEAPOT], 1, "DE"), (1, [KETTLE, TEAPOT, CUPS], 2, "DE"), (2, [KETTLE, TEAPOT], 3, "DE"),
    (3, [TEAPOT, CUPS], 4, "DE"), (4, [TOASTER, BREAD_BIN], 5, "FR"), (5, [TOASTER, BREAD_BIN], 6, "FR"),
    (6, [TOASTER], 7, "FR"), (7, [TOASTER, CUPS], 8, "FR"),
])


def ranking(scores: np.ndarray, limit: int = 6) -> list[int]:
    return [int(i) for i in top_items(scores, limit)]


def history(*rows: tuple[int, float, int]) -> History:
    """(item, day, basket) per line."""
    return History(item=np.array([r[0] for r in rows]), day=np.array([r[1] for r in rows], dtype=float),
                   basket=np.array([r[2] for r in rows]))


def test_buy_again_ranks_what_the_shopper_buys_most_and_lately_first() -> None:
    model = BuyAgain(half_life_days=30)
    model.fit(SHOP)
    mine = history((CUPS, 100, 0), (CUPS, 130, 1), (CUPS, 160, 2), (TEAPOT, 10, 3), (TOASTER, 159, 2))
    assert ranking(model.score(Context(history=mine, now=160))) == [CUPS, TOASTER, TEAPOT]


def test_buy_again_has_nothing_for_a_new_shopper() -> None:
    model = BuyAgain()
    model.fit(SHOP)
    assert ranking(model.score(Context())) == []


def test_bought_with_follows_the_cart() -> None:
    model = FrequentlyBoughtWith(min_together=1)
    model.fit(SHOP)
    assert ranking(model.score(Context(cart=(KETTLE,))))[0] == TEAPOT
    assert ranking(model.score(Context(cart=(TOASTER,))))[0] == BREAD_BIN
    assert model.anchor(Context(cart=(TOASTER, KETTLE)), TEAPOT) == KETTLE
    assert ranking(model.score(Context())) == []


@pytest.mark.parametrize("method", ["cosine", "rp3beta", "ease"])
def test_item_to_item_suggests_what_similar_shoppers_bought(method: str) -> None:
    model = ItemToItem(method=method, l2=1.0)
    model.fit(SHOP)
    top = ranking(model.score(Context(viewing=TOASTER)))
    assert top[0] == BREAD_BIN
    assert KETTLE not in top[:2]
    assert model.anchor(Context(viewing=TOASTER), BREAD_BIN) == TOASTER


def test_popularity_is_per_country_with_a_global_fallback() -> None:
    model = Popularity(half_life_days=None, country_min_baskets=1, global_share=0.0)
    model.fit(SHOP)
    assert ranking(model.score(Context(country="DE")))[0] == TEAPOT
    assert ranking(model.score(Context(country="FR")))[0] == TOASTER
    assert set(ranking(model.score(Context(country="JP")))[:2]) == {TEAPOT, TOASTER}


def test_content_based_covers_new_products_with_no_sales() -> None:
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0.2, 1], [0.95, 0, 0.05]])
    model = ContentBased(vectors)
    model.fit(SHOP)
    scores = model.score(Context(viewing=KETTLE))
    assert ranking(scores) == [NEW_MUG]  # the only unsold product, and it reads like the kettle
    assert model.anchor(Context(viewing=KETTLE), NEW_MUG) == KETTLE


def test_blender_excludes_the_cart_and_says_which_model_chose() -> None:
    blender = Blender([FrequentlyBoughtWith(min_together=1), Popularity()],
                      {"bought_with": 1.0, "popularity": 0.1})
    blender.fit(SHOP)
    picks = blender.recommend(Context(cart=(KETTLE,), country="DE"), limit=3)
    assert [p.item for p in picks][0] == TEAPOT
    assert KETTLE not in [p.item for p in picks]
    assert picks[0].model == "bought_with"
    assert picks[0].anchor == KETTLE


def _ranker() -> Ranker:
    return Ranker(buy_again=BuyAgain(), item_to_item=ItemToItem(method="ease", l2=1.0),
                  bought_with=FrequentlyBoughtWith(min_together=1), popularity=Popularity(),
                  min_examples=20, trees=20)


def test_ranker_without_enough_returning_shoppers_uses_the_fixed_blend() -> None:
    ranker = _ranker()
    ranker.fit(SHOP)
    assert ranker.classifier is None
    picks = ranker.recommend(Context(cart=(TOASTER,), country="FR"), limit=2)
    assert picks[0].item == BREAD_BIN
    assert ranker.explain(Context(cart=(TOASTER,)), BREAD_BIN) == ("bought_with", TOASTER)


def _regulars_shop() -> Interactions:
    rng = np.random.default_rng(3)
    rows = []
    for customer in range(60):
        favourite = customer % 4  # each regular keeps buying one item, plus something at random
        for visit in range(4):
            rows.append((customer, [favourite, int(rng.integers(4, 8))], float(visit * 10 + customer % 7), "DE"))
    return baskets(rows, n_items=8)


def test_ranker_learns_that_regulars_rebuy_their_items() -> None:
    ranker = _ranker()
    ranker.fit(_regulars_shop())
    assert ranker.classifier is not None
    regular = history((2, 1.0, 0), (5, 1.0, 0), (2, 11.0, 1), (6, 11.0, 1), (2, 21.0, 2), (4, 21.0, 2))
    picks = ranker.recommend(Context(history=regular, country="DE", now=30.0), limit=3)
    assert picks[0].item == 2
    assert ranker.explain(Context(history=regular), 2) == ("buy_again", 2)


def test_carving_holds_out_each_returning_customers_last_basket() -> None:
    learn_from, labels = carve_last_baskets(SHOP)
    assert labels == []  # everybody bought once
    shop = baskets([(0, [KETTLE], 1, "DE"), (0, [TEAPOT, CUPS], 5, "DE"), (1, [TOASTER], 2, "FR")])
    learn_from, labels = carve_last_baskets(shop)
    assert [(label.customer, label.items.tolist(), label.country) for label in labels] == [(0, [TEAPOT, CUPS], "DE")]
    assert sorted(learn_from.item.tolist()) == [KETTLE, TOASTER]


@pytest.mark.parametrize("n_items", [0, 1])
def test_empty_and_one_product_shops_give_sensible_results(n_items: int) -> None:
    rows = [(0, [0], 1.0, "DE"), (0, [0], 2.0, "DE")] if n_items else []
    shop = baskets(rows, n_items=n_items)
    ranker = _ranker()
    ranker.fit(shop)
    for context in (Context(), Context(cart=(0,) if n_items else ()), Context(history=history((0, 1.0, 0)))):
        picks = ranker.recommend(context, limit=5)
        assert len(picks) <= n_items
        assert all(p.item not in context.cart for p in picks)


def test_ease_from_a_cholesky_factor_matches_the_plain_inverse() -> None:
    import scipy.sparse as sp

    from commerce.recommend.similarity import _ease

    rng = np.random.default_rng(3)
    customers = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float64))
    gram = (customers.T @ customers).toarray() + 5.0 * np.eye(12)
    inverse = np.linalg.inv(gram)
    expected = -inverse / np.diag(inverse)[None, :]
    np.testing.assert_allclose(_ease(customers, 5.0), expected, rtol=1e-4, atol=1e-6)


def test_negative_sampling_keeps_every_positive_and_caps_the_negatives() -> None:
    from commerce.recommend.ranker import _sample_negatives

    rng = np.random.default_rng(0)
    bought = np.zeros(100, dtype=bool)
    bought[[3, 50]] = True
    kept = _sample_negatives(bought, 10.0, rng)
    assert set(kept.tolist()) >= {3, 50}
    assert kept.size == 22  # 2 positives + 10 negatives each
    assert np.all(np.diff(kept) > 0)  # original order
    assert _sample_negatives(np.zeros(100, dtype=bool), 10.0, rng).size == 10  # none bought: as for one
    assert _sample_negatives(np.array([True, False]), 10.0, rng).tolist() == [0, 1]  # fewer than the cap


@pytest.mark.parametrize("max_rows", [300_000, 40])
def test_ranker_is_a_lambdarank_over_queries_and_scores_only_candidates(max_rows: int) -> None:
    ranker = Ranker(buy_again=BuyAgain(), item_to_item=ItemToItem(method="ease", l2=1.0),
                    bought_with=FrequentlyBoughtWith(min_together=1), popularity=Popularity(),
                    min_examples=20, trees=20, max_rows=max_rows, candidates_per_model=2)
    ranker.fit(_regulars_shop())  # with 40 rows, sampling empties some queries: their sizes must stay aligned
    assert ranker.classifier is not None
    assert ranker.classifier.boosters[0].params["objective"] == "lambdarank"
    context = Context(history=history((1, 1.0, 0), (1, 11.0, 1)), country="DE", now=20.0)
    candidates, features, _ = ranker.features(context)
    scores = ranker.score(context)
    assert features.shape == (candidates.size, len(FEATURES))
    assert np.all((scores[candidates] > 0) & (scores[candidates] < 1 + 1e-6))
    assert np.all(np.delete(scores, candidates) == 0)


def test_bagged_ranker_averages_rankers_trained_on_different_negatives() -> None:
    shop = _regulars_shop()
    single = Ranker(buy_again=BuyAgain(), item_to_item=ItemToItem(method="ease", l2=1.0),
                    bought_with=FrequentlyBoughtWith(min_together=1), popularity=Popularity(),
                    min_examples=20, trees=20, negatives_per_positive=1.0, bags=1)
    bagged = Ranker(buy_again=BuyAgain(), item_to_item=ItemToItem(method="ease", l2=1.0),
                    bought_with=FrequentlyBoughtWith(min_together=1), popularity=Popularity(),
                    min_examples=20, trees=20, negatives_per_positive=1.0, bags=3)
    single.fit(shop)
    bagged.fit(shop)
    assert single.classifier is not None
    assert bagged.classifier is not None
    assert len(single.classifier.boosters) == 1
    assert len(bagged.classifier.boosters) == 3
    context = Context(history=history((1, 1.0, 0), (5, 1.0, 0), (1, 11.0, 1)), country="DE", now=20.0)
    _, features, _ = bagged.features(context)
    raw = [booster.predict(features) for booster in bagged.classifier.boosters]
    assert not np.allclose(raw[0], raw[1])  # the bags saw different negatives
    np.testing.assert_allclose(bagged.classifier.predict(features), np.mean(raw, axis=0))

"""Recommendations from a real shop database: filters, diversity, reasons, empty states, training, tracking."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from commerce.catalog.service import find_variants
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.recommend import service as recommendations
from commerce.recommend.errors import ImpressionNotFound, UnknownOutcome
from commerce.recommend.ranker import Ranker
from commerce.recommend.schemas import Recommendation
from commerce.shoppers.service import shopper_for_identity
from kit.db import Database
from kit.errors import InvalidInput
from kit.settings import Settings
from tests.factories import make_product, make_shop


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


async def _paid_order(db: Database, external_id: str, skus: list[str], *, shopper_id: int | None = None,
                      country: str = "DE") -> None:
    async with db.unit_of_work() as session:
        order, _ = await orders.create_order(session, reserve=False, data=OrderIn(
            channel="web", external_id=external_id, currency="EUR", shopper_id=shopper_id, country=country,
            lines=[OrderLineIn(sku=sku, quantity=1) for sku in skus]))
        await orders.transition_order(session, order_id=order.id, to_status="paid")


async def _shopper(db: Database, external_id: str) -> int:
    async with db.unit_of_work() as session:
        return (await shopper_for_identity(session, kind="telegram", external_id=external_id)).id


@pytest.fixture
async def shop(db: Database) -> Database:
    """Kettles sell with teapots and cups; the toaster is sold out; the bread bin only ships to France."""
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", title="Kettle", skus={"KET-1": {"RTM": 10}})
        await make_product(session, slug="teapot", title="Teapot", skus={"POT-1": {"RTM": 5}})
        await make_product(session, slug="cups", title="Cups", skus={"CUP-RED": {"RTM": 5}, "CUP-BLUE": {"RTM": 5}})
        await make_product(session, slug="toaster", title="Toaster", skus={"TOA-1": {"RTM": 0}})
        await make_product(session, slug="bread-bin", title="Bread bin", skus={"BIN-1": {"RTM": 5}},
                           sellable_countries=["FR"])
        await make_product(session, slug="mug", title="Mug", skus={"MUG-1": {"SZX": 3}})
    for n in range(6):
        await _paid_order(db, f"k{n}", ["KET-1", "TOA-1", "BIN-1", "CUP-RED", "CUP-BLUE"])
    for n in range(3):
        await _paid_order(db, f"p{n}", ["KET-1", "POT-1"])
    return db


async def _recommend(db: Database, settings: Settings, **kwargs: object) -> list[Recommendation]:
    async with db.sessions() as session:
        return await recommendations.recommend(session, settings=settings, **kwargs)  # type: ignore[arg-type]


async def test_cart_suggestions_are_in_stock_sellable_and_not_in_the_cart(shop: Database, settings: Settings) -> None:
    picks = await _recommend(shop, settings, country="DE", cart_skus=["KET-1"], limit=5)
    skus = [p.sku for p in picks]
    assert "KET-1" not in skus  # already in the cart
    assert "TOA-1" not in skus  # sold out
    assert "BIN-1" not in skus  # not sold to Germany
    assert skus[0] in {"CUP-RED", "CUP-BLUE"}
    assert "POT-1" in skus
    first = picks[0]
    assert first.model == "bought_with"
    assert first.reason == "Often bought with the Kettle in your cart"
    assert first.anchor_sku == "KET-1"


async def test_a_french_shopper_sees_the_bread_bin(shop: Database, settings: Settings) -> None:
    picks = await _recommend(shop, settings, country="fr", cart_skus=["KET-1"], limit=5)
    assert "BIN-1" in [p.sku for p in picks]


async def test_one_variant_per_product(shop: Database, settings: Settings) -> None:
    picks = await _recommend(shop, settings, country="DE", viewing_sku="KET-1", limit=10)
    products = [p.product_id for p in picks]
    assert len(products) == len(set(products))
    assert len({"CUP-RED", "CUP-BLUE"} & {p.sku for p in picks}) == 1
    assert "KET-1" not in [p.sku for p in picks]  # the product in view is not suggested to itself
    viewing = next(p for p in picks if p.sku in {"CUP-RED", "CUP-BLUE"})
    assert viewing.reason == "Often bought with the Kettle you are looking at"


async def test_a_returning_shopper_is_offered_what_they_buy_again(shop: Database, settings: Settings) -> None:
    anna = await _shopper(shop, "anna")
    await _paid_order(shop, "a1", ["POT-1"], shopper_id=anna)
    await _paid_order(shop, "a2", ["POT-1", "MUG-1"], shopper_id=anna)
    picks = await _recommend(shop, settings, shopper_id=anna, country="DE", limit=3)
    assert picks[0].sku == "POT-1"
    assert picks[0].model == "buy_again"
    assert picks[0].reason == "You bought this 2 times"


async def test_a_new_shopper_with_an_empty_cart_gets_popular_products(shop: Database, settings: Settings) -> None:
    nobody = await _shopper(shop, "new")
    picks = await _recommend(shop, settings, shopper_id=nobody, country="DE", limit=3)
    assert len(picks) == 3
    assert picks[0].sku == "KET-1"
    assert picks[0].reason == "Popular in DE"
    assert "TOA-1" not in [p.sku for p in picks]


async def test_an_empty_shop_recommends_nothing(db: Database, settings: Settings) -> None:
    assert await _recommend(db, settings, country="DE", cart_skus=["NOPE"], viewing_sku="NOPE", limit=5) == []


async def test_a_one_product_shop_without_orders_offers_that_product_until_it_is_in_the_cart(
        db: Database, settings: Settings) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", title="Kettle", skus={"KET-1": {"RTM": 2}})
    picks = await _recommend(db, settings, country="DE", limit=5)
    assert [(p.sku, p.model, p.reason) for p in picks] == [("KET-1", "new_in_shop", "New in the shop")]
    assert await _recommend(db, settings, country="DE", cart_skus=["KET-1"], limit=5) == []


async def test_limit_out_of_range_is_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(InvalidInput):
        await _recommend(db, settings, limit=0)


async def test_train_saves_the_model_and_recommend_uses_it(shop: Database, settings: Settings) -> None:
    async with shop.sessions() as session:
        report = await recommendations.train(session, settings=settings)
    assert report.orders == 9
    assert report.items == 7
    assert report.path is not None
    assert Path(report.path).is_file()
    assert Path(report.path).parent == settings.data_dir / "models" / "recommend"
    picks = await _recommend(shop, settings, country="DE", cart_skus=["KET-1"], limit=2)
    assert picks[0].sku in {"CUP-RED", "CUP-BLUE"}


def test_a_model_file_saved_before_the_split_of_algorithms_py_still_loads() -> None:
    ranker = recommendations.build_ranker()
    saved = pickle.dumps(ranker, protocol=0)  # text opcodes name each class's module
    for module in (b"commerce.recommend.ranker", b"commerce.recommend.recommenders"):
        assert module in saved
        saved = saved.replace(module, b"commerce.recommend.algorithms")
    loaded = recommendations._load_model(saved)
    assert isinstance(loaded, Ranker)
    assert type(loaded.item_to_item) is type(ranker.item_to_item)
    assert loaded.item_to_item.method == ranker.item_to_item.method


async def test_click_through_and_conversion_per_model(shop: Database, settings: Settings) -> None:
    picks = await _recommend(shop, settings, country="DE", cart_skus=["KET-1"], limit=2)
    async with shop.unit_of_work() as session:
        ids = await recommendations.record_impressions(session, recommendations=picks, shopper_id=None,
                                                       channel="telegram")
    async with shop.unit_of_work() as session:
        assert await recommendations.record_outcome(session, impression_id=ids[0], kind="click")
        assert not await recommendations.record_outcome(session, impression_id=ids[0], kind="click")
        assert await recommendations.record_outcome(session, impression_id=ids[0], kind="purchase")
        with pytest.raises(UnknownOutcome):
            await recommendations.record_outcome(session, impression_id=ids[0], kind="like")
        with pytest.raises(ImpressionNotFound):
            await recommendations.record_outcome(session, impression_id=10_000, kind="click")
    async with shop.sessions() as session:
        rows = await recommendations.performance(session)
    assert [(r.model, r.impressions, r.clicks, r.purchases, r.click_through, r.conversion) for r in rows] == [
        ("bought_with", 2, 1, 1, 0.5, 0.5)]


async def test_stock_counts_only_at_the_warehouse_that_ships_to_the_shopper(shop: Database,
                                                                           settings: Settings) -> None:
    from decimal import Decimal

    from commerce.cross_border.admin import create_zone
    from commerce.cross_border.schemas import ShippingServiceIn, ShippingZoneIn

    standard = ShippingServiceIn(service="standard", name="Standard", currency="EUR", base_price=Decimal("5"),
                                 min_days=2, max_days=5)
    async with shop.unit_of_work() as session:
        await create_zone(session, data=ShippingZoneIn(code="eu", name="EU", countries=["DE"], warehouse="RTM",
                                                       services=[standard]))
        await create_zone(session, data=ShippingZoneIn(code="cn", name="China", countries=["CN"],
                                                       warehouse="SZX", services=[standard]))
    german = {p.sku for p in await _recommend(shop, settings, country="DE", limit=10)}
    chinese = {p.sku for p in await _recommend(shop, settings, country="CN", limit=10)}
    assert "MUG-1" not in german  # its only stock is in Shenzhen
    assert "KET-1" in german
    assert chinese == {"MUG-1"}


async def test_a_new_product_with_no_sales_is_suggested_next_to_a_similar_one(shop: Database,
                                                                             settings: Settings) -> None:
    async with shop.unit_of_work() as session:
        await make_product(session, slug="kettle-descaler", title="Kettle descaler", skus={"DES-1": {"RTM": 4}})
    picks = await _recommend(shop, settings, country="DE", viewing_sku="KET-1", limit=10)
    new = {p.sku: p for p in picks}
    assert "DES-1" in new
    assert new["DES-1"].model == "similar_product"
    assert new["DES-1"].reason == "New, and similar to the Kettle"
    skus = [p.sku for p in picks]
    assert skus.index("DES-1") < skus.index("MUG-1")  # the mug was never sold either, but reads less alike


async def test_only_the_best_ranked_part_of_the_catalog_is_read(shop: Database, settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event

    from commerce.catalog.models import Product

    loaded: set[int] = set()

    def count(product: Product, _context: object) -> None:
        loaded.add(product.id)

    whole = await _recommend(shop, settings, country="DE", cart_skus=["KET-1"], limit=5)
    monkeypatch.setattr(recommendations, "FIRST_LOOKUP", 1)
    event.listen(Product, "load", count)
    try:
        best = await _recommend(shop, settings, country="DE", cart_skus=["KET-1"], limit=1)
    finally:
        event.remove(Product, "load", count)
    assert [(p.sku, p.reason) for p in best] == [(p.sku, p.reason) for p in whole[:1]]
    async with shop.sessions() as session:
        kettle = (await find_variants(session, skus=["KET-1"]))["KET-1"].product_id
    # The cart's kettle (left out, and the reason's anchor) and the one product shown: nothing else was read.
    assert loaded == {kettle, best[0].product_id}

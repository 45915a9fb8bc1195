"""Every demo product quotes to the main destinations with the shipped rules: a price or a clear refusal."""
from __future__ import annotations

import pytest

from api.demo.loader import load_demo
from commerce.catalog import service as catalog
from commerce.cross_border import NotSellableToDestination, load_cross_border_defaults, quote
from kit.db import Database

DESTINATIONS = [("DE", "EUR"), ("GB", "GBP"), ("US", "USD"), ("JP", "JPY"), ("CN", "CNY"), ("AU", "AUD"),
                ("SG", "SGD"), ("CA", "CAD")]


@pytest.mark.slow
async def test_every_demo_product_gets_a_landed_cost(db: Database) -> None:
    async with db.unit_of_work() as session:
        await load_demo(session)
        await load_cross_border_defaults(session)
    quoted = refused = 0
    async with db.sessions() as session:
        for product in await catalog.all_products(session):
            sku = product.variants[0].sku
            for country, currency in DESTINATIONS:
                try:
                    q = await quote(session, lines=[{"sku": sku, "quantity": 1}], destination=country,
                                    currency=currency)
                except NotSellableToDestination:
                    assert product.sellable_countries
                    assert country not in product.sellable_countries
                    refused += 1
                    continue
                assert q.total == sum(c.amount for c in q.charges)
                assert q.total > 0
                quoted += 1
    assert quoted > 100
    assert refused > 0

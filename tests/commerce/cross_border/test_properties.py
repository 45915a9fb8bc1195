"""Property: the lines of every quote add up to its total, in every currency, rounded to its minor unit."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.cross_border import quote
from commerce.money import minor_units
from kit.db import Database
from tests.commerce.cross_border.conftest import ON
from tests.conftest import run_in_thread

SKUS = ["TEE-1", "JKT-1", "TEA-1", "BAG-150", "SPK-1"]
DESTINATIONS = ["DE", "FR", "HU", "GB", "US", "CA", "AU", "NZ", "JP", "SG", "CN", "HK"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "KWD", "CAD", "AUD", "SGD", "CNY", "NZD"]

carts = st.dictionaries(st.sampled_from(SKUS), st.integers(min_value=1, max_value=4), min_size=1, max_size=4)


async def _check(url: str, cart: dict[str, int], destination: str, currency: str, service: str) -> None:
    database = Database(url)
    try:
        async with database.sessions() as session:
            q = await quote(session, lines=[{"sku": s, "quantity": n} for s, n in cart.items()],
                            destination=destination, currency=currency, service=service, on=ON)
    finally:
        await database.dispose()
    places = minor_units(currency)
    assert q.total == sum(c.amount for c in q.charges)
    assert q.pay_at_checkout + q.pay_on_delivery == q.total
    assert sum(i.line_total for i in q.items) == next(c.amount for c in q.charges if c.kind == "goods")
    for amount in [q.total, *(c.amount for c in q.charges), *(i.line_total for i in q.items)]:
        assert amount >= 0
        assert -amount.as_tuple().exponent <= places if amount else True  # type: ignore[operator]
        assert amount == amount.quantize(Decimal(1).scaleb(-places))


async def test_lines_add_up_to_the_total_in_every_currency(shop: Database) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cart=carts, destination=st.sampled_from(DESTINATIONS), currency=st.sampled_from(CURRENCIES),
           service=st.sampled_from(["standard", "express"]))
    def check(cart: dict[str, int], destination: str, currency: str, service: str) -> None:
        run_in_thread(_check(shop.url, cart, destination, currency, service))

    check()

from __future__ import annotations

from decimal import Decimal

import pytest

from commerce.checkout import service as checkout
from commerce.checkout.errors import SummaryChanged
from commerce.checkout.schemas import Address, CartLineIn
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from kit.db import Database

ADDRESS_US = Address(country="US", recipient="Ann Lee", street=["1600 Amphitheatre Pkwy"], city="MOUNTAIN VIEW",
                     region="CA", postcode="94043", phone="+16502530000")


def cart(*lines: tuple[str, int]) -> list[CartLineIn]:
    return [CartLineIn(sku=sku, quantity=quantity) for sku, quantity in lines]


async def test_us_summary_separates_pay_now_from_due_on_delivery(shop: Database) -> None:
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=cart(("JKT-1", 1)), country="US", currency="USD",
                                           service="express")
    assert summary.incoterm == "DAP"
    assert summary.items[0].unit_price == Decimal("250.00")  # EUR 200 at 1.25
    kinds = {c.kind: c for c in summary.charges}
    assert kinds["insurance"].amount == Decimal("2.50")  # its own line, never folded into shipping
    assert kinds["duty"].collected_by == "carrier_on_delivery"
    owed = sum((c.amount for c in summary.charges if c.collected_by == "carrier_on_delivery"), Decimal(0))
    assert summary.due_on_delivery == owed > 0
    assert summary.pay_now == summary.goods + summary.shipping + summary.insurance
    # The express button's price is the summary's shipping line once express is chosen.
    express = next(s for s in summary.services if s.service == "express")
    assert express.shipping == summary.shipping == kinds["shipping"].amount
    standard = next(s for s in summary.services if s.service == "standard")
    async with shop.sessions() as session:
        with_standard = await checkout.summarize(session, lines=cart(("JKT-1", 1)), country="US", currency="USD",
                                                 service="standard")
    assert with_standard.shipping == standard.shipping
    assert with_standard.digest != summary.digest


async def test_eu_parcel_is_ddp_with_vat_in_pay_now(shop: Database) -> None:
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=cart(("TEE-1", 1)), country="DE", currency="EUR")
    assert summary.incoterm == "DDP"
    assert summary.due_on_delivery == 0
    assert summary.taxes > 0
    assert summary.pay_now == summary.goods + summary.shipping + summary.taxes


@pytest.mark.parametrize(("currency", "country", "places"), [("JPY", "JP", 0), ("KWD", "DE", 3), ("EUR", "DE", 2)])
async def test_amounts_have_the_currency_minor_unit(shop: Database, currency: str, country: str,
                                                    places: int) -> None:
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=cart(("TEA-1", 3)), country=country, currency=currency)
    assert summary.minor_units == places
    for amount in [summary.pay_now, *(i.unit_price for i in summary.items), *(c.amount for c in summary.charges)]:
        assert amount == amount.quantize(Decimal(1).scaleb(-places))
    assert summary.amount_minor == int(summary.pay_now * 10 ** places)
    assert {r.to_currency for r in summary.exchange_rates} == (set() if currency == "EUR" else {currency})


async def test_variant_options_are_readable(shop: Database) -> None:
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=cart(("HOOD-RED-M", 1)), country="DE", currency="EUR",
                                           locale="zh")
    assert (summary.items[0].title, summary.items[0].options) == ("连帽衫", "Red / M")


async def test_place_order_stores_exactly_the_summary(shop: Database) -> None:
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=cart(("JKT-1", 1)), country="US", currency="USD",
                                           service="express", address=ADDRESS_US, email="ann@example.com")
    async with shop.unit_of_work() as session:
        order, created = await checkout.place_order(
            session, digest=summary.digest, lines=cart(("JKT-1", 1)), country="US", currency="USD",
            service="express", address=ADDRESS_US, email="ann@example.com", channel="web", external_id="c-1",
            expires_in_minutes=30)
    assert created
    assert order.total == summary.pay_now
    assert (order.subtotal, order.shipping, order.insurance) == (summary.goods, summary.shipping, summary.insurance)
    assert (order.duties, order.taxes, order.due_on_delivery) == (summary.duties, summary.taxes,
                                                                  summary.due_on_delivery)
    assert order.incoterm == "DAP"
    assert Decimal(order.exchange_rates[0]["rate"]) == Decimal("1.25")
    assert order.address is not None
    assert order.address["postcode"] == "94043"
    assert order.expires_at is not None
    async with shop.sessions() as session:
        assert (await inventory.available_stock(session, skus=["JKT-1"]))["JKT-1"] == 4


async def test_place_order_refuses_a_stale_summary_and_twice_is_one_order(shop: Database) -> None:
    lines = cart(("TEE-1", 2))
    async with shop.sessions() as session:
        summary = await checkout.summarize(session, lines=lines, country="DE", currency="EUR")
    async with shop.unit_of_work() as session:
        with pytest.raises(SummaryChanged):
            await checkout.place_order(session, digest="0" * 16, lines=lines, country="DE", currency="EUR",
                                       channel="web", external_id="c-2")
    for _ in range(2):
        async with shop.unit_of_work() as session:
            await checkout.place_order(session, digest=summary.digest, lines=lines, country="DE", currency="EUR",
                                       channel="web", external_id="c-2")
    async with shop.sessions() as session:
        assert len(await orders.list_orders(session)) == 1
        assert (await inventory.available_stock(session, skus=["TEE-1"]))["TEE-1"] == 3

"""Return windows per destination and what a return refunds."""
from __future__ import annotations

from decimal import Decimal

import pytest

from commerce.cross_border import UnknownCountry, refund_amount, return_policy
from commerce.orders.models import Order
from kit.db import Database

D = Decimal


def order(currency: str = "EUR", *, subtotal: str = "100.00", shipping: str = "6.40", duties: str = "3.00",
          taxes: str = "19.57") -> Order:
    total = D(subtotal) + D(shipping) + D(duties) + D(taxes)
    return Order(currency=currency, subtotal=D(subtotal), shipping=D(shipping), duties=D(duties), taxes=D(taxes),
                 total=total)


async def test_eu_and_uk_get_14_days_others_the_shop_policy(shop: Database) -> None:
    async with shop.sessions() as session:
        germany = await return_policy(session, country="de")
        uk = await return_policy(session, country="GB")
        us = await return_policy(session, country="US")
        with pytest.raises(UnknownCountry):
            await return_policy(session, country="ZZZ")
    assert (germany.scope, germany.window_days, germany.refunds_outbound_shipping) == ("EU", 14, True)
    assert "2011/83/EU" in germany.legal_basis
    assert (uk.scope, uk.window_days) == ("GB", 14)
    assert "Consumer Contracts" in uk.legal_basis
    assert (us.scope, us.window_days, us.duties_refundable) == ("*", 30, False)


async def test_full_eu_return_refunds_everything_paid_but_the_return_label(shop: Database) -> None:
    async with shop.sessions() as session:
        policy = await return_policy(session, country="FR")
    refund = refund_amount(order(), policy=policy, return_label_cost=D("5.95"))
    assert (refund.goods, refund.shipping, refund.duties, refund.taxes) == (D("100.00"), D("6.40"), D("3.00"),
                                                                            D("19.57"))
    assert refund.return_shipping_deducted == D("5.95")
    assert refund.total == D("123.02")


async def test_partial_return_refunds_in_proportion_without_shipping(shop: Database) -> None:
    async with shop.sessions() as session:
        policy = await return_policy(session, country="DE")
    refund = refund_amount(order(), policy=policy, returned_goods=D("40.00"))
    # 40% of the taxes 19.57 = 7.828; of the duties 3.00 = 1.20
    assert (refund.goods, refund.shipping, refund.duties, refund.taxes, refund.total) == (
        D("40.00"), D("0.00"), D("1.20"), D("7.83"), D("49.03"))


async def test_shop_policy_keeps_duties_and_outbound_shipping(shop: Database) -> None:
    async with shop.sessions() as session:
        policy = await return_policy(session, country="JP")
    refund = refund_amount(order("JPY", subtotal="6400", shipping="1536", duties="0", taxes="0"), policy=policy)
    assert (refund.goods, refund.shipping, refund.total) == (D("6400"), D("0"), D("6400"))
    with pytest.raises(Exception, match="between 0"):
        refund_amount(order(), policy=policy, returned_goods=D("500"))

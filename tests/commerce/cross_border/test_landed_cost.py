"""Worked examples written from the cited rules (data/import_rules.yaml), one under and one over each threshold.

Rates (EUR base): USD 1.25, GBP 0.8, JPY 160, CAD 1.5, AUD 1.6, SGD 1.5, CNY 8, NZD 1.8; no markup.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from commerce.cross_border import Quote, quote
from commerce.cross_border.admin import update_zone
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import ShippingServiceIn, ShippingZoneIn
from kit.db import Database
from tests.commerce.cross_border.conftest import EARLY, ON, SPRING

D = Decimal


async def ask(db: Database, dest: str, currency: str, *lines: tuple[str, int], service: str | None = None,
              on: date = ON) -> Quote:
    async with db.sessions() as session:
        return await quote(session, lines=[{"sku": s, "quantity": n} for s, n in lines], destination=dest,
                           currency=currency, service=service, on=on)


def amounts(q: Quote) -> dict[str, Decimal]:
    return {c.kind: c.amount for c in q.charges}


def collectors(q: Quote) -> dict[str, str]:
    return {c.kind: c.collected_by for c in q.charges}


def assert_adds_up(q: Quote) -> None:
    assert q.total == sum(c.amount for c in q.charges)
    assert q.pay_at_checkout + q.pay_on_delivery == q.total


# EU, shipped from Rotterdam: no customs, the shop charges the German VAT (19%).

async def test_berlin_standard_from_rotterdam_no_customs(shop: Database) -> None:
    q = await ask(shop, "DE", "EUR", ("TEE-1", 1))
    # shipping 4.90 + 1.50 x 1 started kg; VAT 19% of 46.40 = 8.816
    assert amounts(q) == {"goods": D("40.00"), "shipping": D("6.40"), "duty": 0, "import_tax": D("8.82"),
                          "fees": 0}
    assert q.total == D("55.22")
    assert q.pay_on_delivery == 0
    assert q.incoterm == "DDP"
    assert q.customs == "domestic"
    assert "No customs" in q.who_collects
    assert q.delivery.ships_from == "RTM"
    assert (q.delivery.min_days, q.delivery.max_days) == (2, 5)
    assert q.delivery.earliest == date(2026, 12, 1)
    assert q.delivery.latest == date(2026, 12, 4)
    assert_adds_up(q)


async def test_berlin_express_is_insured_and_free_standard_over_60(shop: Database) -> None:
    q = await ask(shop, "DE", "EUR", ("TEE-1", 2), service="express")
    # express 12.90 + 3.00 x 1 kg; insurance 1% of 80; VAT 19% of 96.70 = 18.373
    assert amounts(q) == {"goods": D("80.00"), "shipping": D("15.90"), "insurance": D("0.80"), "duty": 0,
                          "import_tax": D("18.37"), "fees": 0}
    assert q.total == D("115.07")
    free = await ask(shop, "DE", "EUR", ("JKT-1", 1))
    assert amounts(free)["shipping"] == 0
    assert free.total == D("238.00")


async def _ship_eu_from_shenzhen(db: Database) -> None:
    async with db.unit_of_work() as session:
        zone = next(z for z in await CrossBorderRepository(session).zones() if z.code == "eu")
        await update_zone(session, zone_id=zone.id, data=ShippingZoneIn(
            code="eu", name="EU from Shenzhen", countries=zone.countries, warehouse="SZX", origin_country="CN",
            services=[ShippingServiceIn(service="standard", name="Standard", currency="EUR",
                                        base_price=D("4.90"), price_per_kg=D("1.50"), min_days=6, max_days=10)]))


async def test_eu_import_under_150_ioss_flat_3_euro_duty(shop: Database) -> None:
    await _ship_eu_from_shenzhen(shop)
    q = await ask(shop, "DE", "EUR", ("TEE-1", 2))
    # <= EUR 150: IOSS, the shop collects; EUR 3 per tariff item since 1 July 2026; VAT 19% of 89.40 = 16.986
    assert amounts(q) == {"goods": D("80.00"), "shipping": D("6.40"), "duty": D("3.00"), "import_tax": D("16.99"),
                          "fees": 0}
    assert q.incoterm == "DDP"
    assert q.scheme
    assert "IOSS" in q.scheme
    assert q.customs == "low_value"
    assert set(collectors(q).values()) == {"shop_at_checkout"}
    two_items = await ask(shop, "DE", "EUR", ("TEE-1", 1), ("TEA-1", 1))
    # two HS chapters -> EUR 6; VAT 19% of 64.40 = 12.236
    assert amounts(two_items)["duty"] == D("6.00")
    assert amounts(two_items)["import_tax"] == D("12.24")
    assert two_items.total == D("76.64")


async def test_eu_import_exactly_150_is_still_low_value(shop: Database) -> None:
    await _ship_eu_from_shenzhen(shop)
    q = await ask(shop, "FR", "EUR", ("BAG-150", 1))
    # FR VAT 20% of (150 + 6.40 + 3) = 31.88
    assert amounts(q) == {"goods": D("150.00"), "shipping": D("6.40"), "duty": D("3.00"), "import_tax": D("31.88"),
                          "fees": 0}
    assert q.incoterm == "DDP"


async def test_eu_import_under_150_before_july_2026_no_duty(shop: Database) -> None:
    await _ship_eu_from_shenzhen(shop)
    q = await ask(shop, "DE", "EUR", ("TEE-1", 2), on=SPRING)
    assert amounts(q)["duty"] == 0
    assert amounts(q)["import_tax"] == D("16.42")
    assert q.total == D("102.82")


async def test_eu_import_over_150_duty_and_vat_on_delivery(shop: Database) -> None:
    await _ship_eu_from_shenzhen(shop)
    q = await ask(shop, "DE", "EUR", ("JKT-1", 1))
    # duty 12% of CIF 206.40 = 24.768; VAT 19% of 231.17 = 43.9223
    assert amounts(q) == {"goods": D("200.00"), "shipping": D("6.40"), "duty": D("24.77"), "import_tax": D("43.92"),
                          "fees": 0}
    assert q.incoterm == "DAP"
    assert q.pay_on_delivery == D("68.69")
    assert q.total == D("275.09")
    assert collectors(q)["duty"] == "carrier_on_delivery"
    assert "on delivery" in q.who_collects


async def test_eu_member_states_use_their_own_vat_rate(shop: Database) -> None:
    rates = {"HU": D("27"), "LU": D("17"), "FI": D("25.5"), "EE": D("24"), "RO": D("21"), "SK": D("23")}
    for country, rate in rates.items():
        q = await ask(shop, country, "EUR", ("TEE-1", 1))
        assert amounts(q)["import_tax"] == (D("46.40") * rate / 100).quantize(D("0.01"))
    early = await ask(shop, "EE", "EUR", ("TEE-1", 1), on=EARLY)  # 22% before 1 July 2025
    assert amounts(early)["import_tax"] == D("10.21")


# United Kingdom: <= GBP 135 the shop charges VAT at the point of sale; above, VAT and duty at import.

async def test_uk_under_135_point_of_sale_vat(shop: Database) -> None:
    q = await ask(shop, "GB", "GBP", ("TEE-1", 1))
    # 40 EUR = 32.00 GBP; shipping 12.40 EUR = 9.92 GBP; VAT 20% of 41.92
    assert amounts(q) == {"goods": D("32.00"), "shipping": D("9.92"), "duty": 0, "import_tax": D("8.38"), "fees": 0}
    assert q.who_collects.startswith("The shop collects VAT at checkout")
    assert q.incoterm == "DDP"
    assert q.total == D("50.30")


async def test_uk_over_135_duty_and_vat_on_delivery(shop: Database) -> None:
    q = await ask(shop, "GB", "GBP", ("JKT-1", 1))
    # 160.00 GBP > 135; duty 12% of 169.92 = 20.3904; VAT 20% of 190.31
    assert amounts(q) == {"goods": D("160.00"), "shipping": D("9.92"), "duty": D("20.39"), "import_tax": D("38.06"),
                          "fees": 0}
    assert q.incoterm == "DAP"
    assert q.pay_on_delivery == D("58.45")
    assert q.total == D("228.37")


# United States: de minimis USD 800 until 29 August 2025, suspended after; no federal import tax.

async def test_us_after_de_minimis_suspension_duty_on_every_parcel(shop: Database) -> None:
    q = await ask(shop, "US", "USD", ("TEE-1", 1))
    # duty 16% of the FOB value 50.00; shipping 9.50 + 5.00 USD
    assert amounts(q) == {"goods": D("50.00"), "shipping": D("14.50"), "duty": D("8.00"), "import_tax": 0, "fees": 0}
    assert q.who_collects.startswith("You pay duty to the carrier on delivery (on every parcel)")
    assert q.incoterm == "DAP"
    assert q.pay_on_delivery == D("8.00")
    assert q.total == D("72.50")


async def test_us_before_suspension_under_and_over_800(shop: Database) -> None:
    under = await ask(shop, "US", "USD", ("TEE-1", 1), on=EARLY)
    assert amounts(under)["duty"] == 0
    assert under.total == D("64.50")
    assert under.pay_on_delivery == 0
    over = await ask(shop, "US", "USD", ("JKT-1", 4), on=EARLY)
    # 1000.00 USD > 800: 16% duty; 3.6 kg -> 4 started kg -> 9.50 + 20.00
    assert amounts(over) == {"goods": D("1000.00"), "shipping": D("29.50"), "duty": D("160.00"), "import_tax": 0,
                             "fees": 0}


# Canada: CAD 20 courier threshold for parcels not shipped from the US or Mexico.

async def test_canada_under_20_cad_free_of_duty_and_gst(shop: Database) -> None:
    q = await ask(shop, "CA", "CAD", ("TEA-1", 1))
    # 12 EUR = 18.00 CAD; shipping 14.50 USD x 1.2 = 17.40 CAD
    assert amounts(q) == {"goods": D("18.00"), "shipping": D("17.40"), "duty": 0, "import_tax": 0, "fees": 0}
    assert q.incoterm == "DDP"


async def test_canada_over_20_cad_duty_and_gst_on_delivery(shop: Database) -> None:
    q = await ask(shop, "CA", "CAD", ("TEE-1", 1))
    # duty 18% of 60.00; GST 5% of 88.20
    assert amounts(q) == {"goods": D("60.00"), "shipping": D("17.40"), "duty": D("10.80"), "import_tax": D("4.41"),
                          "fees": 0}
    assert q.incoterm == "DAP"
    assert q.total == D("92.61")


# Australia: GST on low value imported goods (<= AUD 1000) collected by the seller.

async def test_australia_under_1000_gst_at_checkout(shop: Database) -> None:
    q = await ask(shop, "AU", "AUD", ("TEE-1", 1))
    # 64.00 AUD; shipping 12 USD x 1.28 = 15.36 AUD; GST 10% of 79.36
    assert amounts(q) == {"goods": D("64.00"), "shipping": D("15.36"), "duty": 0, "import_tax": D("7.94"), "fees": 0}
    assert q.incoterm == "DDP"
    assert q.total == D("87.30")
    assert q.delivery.ships_from == "SZX"


async def test_australia_over_1000_duty_and_gst_at_border(shop: Database) -> None:
    q = await ask(shop, "AU", "AUD", ("JKT-1", 4))
    # 1280 AUD; shipping 24 USD = 30.72; duty 5% FOB = 64.00; GST 10% of 1374.72
    assert amounts(q) == {"goods": D("1280.00"), "shipping": D("30.72"), "duty": D("64.00"),
                          "import_tax": D("137.47"), "fees": 0}
    assert q.incoterm == "DAP"
    assert q.total == D("1512.19")


# Japan: no duty or consumption tax when the customs value (60% of retail + shipping) is <= JPY 10,000.

async def test_japan_under_10000_yen_nothing_due(shop: Database) -> None:
    q = await ask(shop, "JP", "JPY", ("TEE-1", 1))
    # 6400 JPY x 60% + shipping 1536 = 5376 <= 10000
    assert amounts(q) == {"goods": D("6400"), "shipping": D("1536"), "duty": 0, "import_tax": 0, "fees": 0}
    assert q.total == D("7936")
    assert q.incoterm == "DDP"


async def test_japan_over_10000_yen_duty_and_consumption_tax(shop: Database) -> None:
    q = await ask(shop, "JP", "JPY", ("TEE-1", 3))
    # customs value 19200 x 60% + 1536 = 13056; duty 9.1% = 1188.096; tax 10% of 14244
    assert amounts(q) == {"goods": D("19200"), "shipping": D("1536"), "duty": D("1188"), "import_tax": D("1424"),
                          "fees": 0}
    assert q.pay_on_delivery == D("2612")
    assert q.total == D("23348")


# Singapore: GST on low-value goods (<= SGD 400) collected by the overseas vendor; no duty on our goods.

async def test_singapore_under_400_gst_at_checkout(shop: Database) -> None:
    q = await ask(shop, "SG", "SGD", ("TEE-1", 1))
    assert amounts(q) == {"goods": D("60.00"), "shipping": D("14.40"), "duty": 0, "import_tax": D("6.70"), "fees": 0}
    assert q.incoterm == "DDP"
    assert q.total == D("81.10")


async def test_singapore_over_400_gst_at_import(shop: Database) -> None:
    q = await ask(shop, "SG", "SGD", ("JKT-1", 2))
    assert amounts(q) == {"goods": D("600.00"), "shipping": D("19.20"), "duty": D("0.00"), "import_tax": D("55.73"),
                          "fees": 0}
    assert q.incoterm == "DAP"
    assert q.total == D("674.93")


# Mainland China: cross-border e-commerce retail import, <= CNY 5,000: 0% tariff, VAT at 70% (13% x 0.7).

async def test_china_cbec_within_5000_vat_at_70_percent(shop: Database) -> None:
    q = await ask(shop, "CN", "CNY", ("TEE-1", 1))
    # 320 + shipping 18.90 EUR = 151.20 CNY; 9.1% of 471.20
    assert amounts(q) == {"goods": D("320.00"), "shipping": D("151.20"), "duty": 0, "import_tax": D("42.88"),
                          "fees": 0}
    assert q.incoterm == "DDP"
    assert q.total == D("514.08")
    assert q.delivery.ships_from == "RTM"


async def test_china_over_5000_full_duty_and_vat(shop: Database) -> None:
    q = await ask(shop, "CN", "CNY", ("JKT-1", 4))
    # 6400 + 295.20 = 6695.20 > 5000; duty 7% = 468.664; VAT 13% of 7163.86
    assert amounts(q) == {"goods": D("6400.00"), "shipping": D("295.20"), "duty": D("468.66"),
                          "import_tax": D("931.30"), "fees": 0}
    assert q.incoterm == "DAP"
    assert q.total == D("8095.16")


# New Zealand and Hong Kong (also shipped).

async def test_new_zealand_under_and_over_1000(shop: Database) -> None:
    under = await ask(shop, "NZ", "NZD", ("TEE-1", 1))
    assert amounts(under)["import_tax"] == D("13.39")
    assert under.total == D("102.67")
    assert under.incoterm == "DDP"
    over = await ask(shop, "NZ", "NZD", ("JKT-1", 4))
    assert amounts(over)["duty"] == D("144.00")
    assert amounts(over)["import_tax"] == D("242.78")
    assert over.total == D("1861.34")
    assert over.incoterm == "DAP"


async def test_hong_kong_express_is_insured_and_nothing_is_due(shop: Database) -> None:
    q = await ask(shop, "HK", "HKD", ("TEE-1", 1), service="express")
    # 360.00 HKD; express 22 + 9 USD = 31 USD x 7.2 = 223.20 HKD; insurance 1% = 3.60
    assert amounts(q) == {"goods": D("360.00"), "shipping": D("223.20"), "insurance": D("3.60"), "duty": 0,
                          "import_tax": 0, "fees": 0}
    assert q.total == D("586.80")


async def test_hong_kong_nothing_due(shop: Database) -> None:
    q = await ask(shop, "HK", "HKD", ("JKT-1", 1))
    assert amounts(q)["duty"] == 0
    assert amounts(q)["import_tax"] == 0
    assert q.pay_on_delivery == 0


# The shopper's currency and its minor unit.

@pytest.mark.parametrize(("currency", "expected"), [
    ("EUR", {"goods": D("40.00"), "shipping": D("6.40"), "import_tax": D("8.82"), "total": D("55.22")}),
    ("JPY", {"goods": D("6400"), "shipping": D("1024"), "import_tax": D("1411"), "total": D("8835")}),
    ("KWD", {"goods": D("14.000"), "shipping": D("2.240"), "import_tax": D("3.086"), "total": D("19.326")}),
])
async def test_berlin_quote_in_other_currencies_rounds_to_minor_unit(shop: Database, currency: str,
                                                                     expected: dict[str, Decimal]) -> None:
    q = await ask(shop, "DE", currency, ("TEE-1", 1))
    got = amounts(q)
    assert {k: got[k] for k in ("goods", "shipping", "import_tax")} == {k: expected[k] for k in got if k in expected}
    assert q.total == expected["total"]
    assert str(q.total) == str(expected["total"])  # exactly the currency's decimals
    if currency != "EUR":
        assert q.rates[0].as_of == ON
        assert q.oldest_rate_age_days == 0


async def test_quote_lists_every_item_and_sources(shop: Database) -> None:
    q = await ask(shop, "GB", "GBP", ("TEE-1", 2), ("TEA-1", 1), ("TEE-1", 1))
    assert [(i.sku, i.quantity, i.unit_price, i.line_total) for i in q.items] == [
        ("TEE-1", 3, D("32.00"), D("96.00")), ("TEA-1", 1, D("9.60"), D("9.60"))]
    assert all(s.url for s in q.sources)
    assert any("gov.uk" in s.url for s in q.sources)

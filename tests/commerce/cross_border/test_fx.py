"""Exchange rates: ECB XML and CSV import, conversion through the base currency, markup, stale-rate refusal."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from commerce.catalog.errors import UnknownCurrency
from commerce.cross_border import (
    InvalidRatesFile,
    NoExchangeRate,
    StaleExchangeRate,
    convert,
    import_demo_rates,
    import_rates,
    price_in,
)
from commerce.cross_border.admin import update_settings
from commerce.cross_border.fx import DEMO_RATES_FILE, parse_ecb_xml, parse_rates, parse_rates_csv
from commerce.cross_border.schemas import CrossBorderSettings
from kit.db import Database
from tests.commerce.cross_border.conftest import ON

D = Decimal

ECB_SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
                 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time="2026-11-26"><Cube currency="USD" rate="1.0800"/><Cube currency="JPY" rate="162.50"/></Cube>
    <Cube time="2026-11-25"><Cube currency="USD" rate="1.0750"/></Cube>
  </Cube>
</gesmes:Envelope>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Envelope><Cube><Cube time="2026-11-26"><Cube currency="USD" rate="&lol2;"/></Cube></Cube></Envelope>"""


def test_parse_ecb_daily_and_history_files() -> None:
    rates = parse_ecb_xml(ECB_SAMPLE)
    assert [(r.base, r.currency, r.rate, r.as_of) for r in rates] == [
        ("EUR", "USD", D("1.0800"), date(2026, 11, 26)), ("EUR", "JPY", D("162.50"), date(2026, 11, 26)),
        ("EUR", "USD", D("1.0750"), date(2026, 11, 25))]
    shipped = parse_ecb_xml(DEMO_RATES_FILE.read_bytes())
    assert {r.currency for r in shipped} >= {"USD", "GBP", "JPY", "CAD", "AUD", "SGD", "CNY", "HKD", "NZD"}


def test_parse_csv_and_detect_format_by_content() -> None:
    assert parse_rates("date,base,currency,rate\n2026-11-26,USD,KWD,0.3071\n")[0] == "csv"
    assert parse_rates(ECB_SAMPLE)[0] == "ecb-xml"
    [rate] = parse_rates_csv("2026-11-26,usd,kwd,0.3071\n")
    assert (rate.base, rate.currency, rate.rate) == ("USD", "KWD", D("0.3071"))


@pytest.mark.parametrize("content", [
    BILLION_LAUGHS, b"<not-closed", b"<Envelope><Cube/></Envelope>", "2026-11-26,EUR,XYZ,1.2\n",
    "2026-11-26,EUR,USD,-1\n", "2026-11-26,EUR,USD,abc\n", "26/11/2026,EUR,USD,1.1\n", "2026-11-26,EUR,USD\n", "",
])
def test_bad_rate_files_are_refused_with_a_code(content: str | bytes) -> None:
    with pytest.raises(InvalidRatesFile) as caught:
        parse_rates(content)
    assert caught.value.code == "invalid_rates_file"


async def test_convert_through_the_base_currency_with_age(db: Database) -> None:
    async with db.unit_of_work() as session:
        await import_rates(session, content=ECB_SAMPLE)
    async with db.sessions() as session:
        usd_to_jpy = await convert(session, amount=D("10"), from_currency="usd", to_currency="JPY",
                                   on=date(2026, 11, 28))
        assert usd_to_jpy.rate == D("162.50") / D("1.0800")
        assert usd_to_jpy.as_of == date(2026, 11, 26)
        assert usd_to_jpy.age == 2
        assert await price_in(session, amount=D("10"), currency="USD", target="JPY", on=date(2026, 11, 28)) == D("1505")
        older = await convert(session, amount=D("1"), from_currency="EUR", to_currency="USD", on=date(2026, 11, 25))
        assert older.rate == D("1.0750")


async def test_stale_rate_is_refused_not_used(db: Database) -> None:
    async with db.unit_of_work() as session:
        await import_rates(session, content=ECB_SAMPLE)
    async with db.sessions() as session:
        await convert(session, amount=D("1"), from_currency="EUR", to_currency="USD", on=date(2026, 11, 30))
        with pytest.raises(StaleExchangeRate) as caught:
            await convert(session, amount=D("1"), from_currency="EUR", to_currency="USD", on=date(2026, 12, 1))
        assert caught.value.code == "stale_exchange_rate"
        assert caught.value.extra["age_days"] == 5
        with pytest.raises(NoExchangeRate):
            await convert(session, amount=D("1"), from_currency="EUR", to_currency="KWD", on=date(2026, 11, 26))
        with pytest.raises(UnknownCurrency):
            await convert(session, amount=D("1"), from_currency="EUR", to_currency="EURO")
    async with db.unit_of_work() as session:
        await update_settings(session, data=CrossBorderSettings(max_rate_age_days=10))
    async with db.sessions() as session:
        ok = await convert(session, amount=D("1"), from_currency="EUR", to_currency="USD", on=date(2026, 12, 1))
        assert ok.age == 5


async def test_markup_is_applied_to_shop_prices(shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await update_settings(session, data=CrossBorderSettings(fx_markup_percent=D("2")))
    async with shop.sessions() as session:
        converted = await convert(session, amount=D("40"), from_currency="EUR", to_currency="USD", on=ON)
        assert converted.amount == D("51.0000")
        assert converted.markup_percent == D("2")


@pytest.mark.parametrize(("amount", "source", "target", "shown"), [
    ("10.01", "EUR", "KWD", "3.504"),     # 3.5035 rounds half up to 3 decimals
    ("1.99", "EUR", "JPY", "318"),        # 318.4: yen has no minor unit
    ("0.0031", "EUR", "JPY", "0"),
    ("0.01", "USD", "EUR", "0.01"),       # 0.008
    ("0.005", "EUR", "EUR", "0.01"),
    ("100", "KWD", "JPY", "45714"),       # 100 / 0.35 x 160 = 45714.28...
    ("1", "JPY", "KWD", "0.002"),         # 0.35 / 160 = 0.0021875
])
async def test_rounding_to_each_currency_minor_unit(shop: Database, amount: str, source: str, target: str,
                                                    shown: str) -> None:
    async with shop.sessions() as session:
        result = await price_in(session, amount=D(amount), currency=source, target=target, on=ON)
    assert str(result) == shown


async def test_demo_rates_are_stamped_with_the_load_day(db: Database) -> None:
    async with db.unit_of_work() as session:
        count = await import_demo_rates(session, as_of=ON)
    assert count >= 25
    async with db.sessions() as session:
        fresh = await convert(session, amount=D("1"), from_currency="EUR", to_currency="GBP", on=ON)
        assert fresh.age == 0
        with pytest.raises(StaleExchangeRate):
            await convert(session, amount=D("1"), from_currency="EUR", to_currency="GBP", on=ON + timedelta(days=5))


@pytest.mark.parametrize(("amount", "currency", "locale", "shown"), [
    ("1234.5", "EUR", "de_DE", "1.234,50\xa0€"),
    ("1234.5", "JPY", "ja_JP", "￥1,235"),
    ("1234.5678", "KWD", "en", "KWD1,234.568"),
    ("1234.5", "GBP", "en_GB", "£1,234.50"),
])
def test_money_is_formatted_per_locale(amount: str, currency: str, locale: str, shown: str) -> None:
    from commerce.money import format_money

    assert format_money(D(amount), currency, locale) == shown

"""The demo FAQ's shipping and customs answers hold the quote engine's own figures, for every destination it serves:
delivery days and prices of each service, free-shipping thresholds, who pays duties (DAP/DDP), where we don't ship."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from commerce import cross_border
from commerce.cross_border.repository import CrossBorderRepository
from kit.db import Database
from knowledge_base.service import DEMO_FAQ
from tests.commerce.checkout.conftest import make_checkout_shop

# Which FAQ entry answers "how long / how much" for the countries of each shipping zone.
ENTRY_OF_ZONE_COUNTRY = {"eu": "ship-time-eu", "uk": "ship-time-uk", "china": "ship-time-cn",
                         "americas": "ship-time-us"}
ASIA_PACIFIC = {"AU": "ship-time-au", "NZ": "ship-time-au", "HK": "ship-time-asia", "JP": "ship-time-asia",
                "SG": "ship-time-asia"}


def answers() -> dict[str, dict[str, str]]:
    entries = json.loads(DEMO_FAQ.read_text(encoding="utf-8"))["entries"]
    return {e["key"]: {lang: t["answer"] for lang, t in e["translations"].items()} for e in entries}


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


async def test_every_served_destination_has_the_engines_days_and_prices(shop: Database) -> None:
    faq = answers()
    async with shop.sessions() as session:
        zones = [z for z in await CrossBorderRepository(session).zones() if z.served]
        checked = 0
        for zone in zones:
            for country in zone.countries:
                key = ENTRY_OF_ZONE_COUNTRY.get(zone.code) or ASIA_PACIFIC[country]
                texts = faq[key]
                for service in zone.services:
                    days = f"{service.min_days}-{service.max_days}"
                    assert days in texts["en"], (country, service.service, texts["en"])
                    assert days in texts["zh"], (country, service.service, texts["zh"])
                    express_days = faq["ship-express"]["en"]
                    if service.service == "express":
                        assert days in express_days, (country, express_days)
                    prices = texts["en"] + (faq["ship-cost-eu"]["en"] if zone.code == "eu" else "")
                    assert f"{service.currency} {money(service.base_price)}" in prices, (country, service.service)
                    assert f"{service.currency} {money(service.price_per_kg)} per started kg" in prices
                    if service.free_over is not None:
                        assert f"{service.currency} {service.free_over:.0f} or more" in prices
                # The engine quotes this destination with the same service times.
                quoted = await cross_border.quote(session, lines=[{"sku": "TEA-1", "quantity": 1}],
                                                  destination=country, currency="EUR")
                assert f"{quoted.delivery.min_days}-{quoted.delivery.max_days}" in texts["en"]
                checked += 1
    assert checked >= 30


async def test_where_we_dont_ship_and_who_pays_duties(shop: Database) -> None:
    faq = answers()
    async with shop.sessions() as session:
        with pytest.raises(cross_border.DestinationNotServed):
            await cross_border.quote(session, lines=[{"sku": "TEA-1", "quantity": 1}], destination="BR",
                                     currency="EUR")
        us = await cross_border.quote(session, lines=[{"sku": "JKT-1", "quantity": 1}], destination="US",
                                      currency="USD")
        de = await cross_border.quote(session, lines=[{"sku": "JKT-1", "quantity": 1}], destination="DE",
                                      currency="EUR")
    assert "Brazil" in faq["ship-time-world"]["en"]
    assert "don't ship" in faq["ship-time-world"]["en"]
    assert us.incoterm == "DAP"
    assert "on delivery (DAP)" in faq["customs-us"]["en"]
    assert "DDP" not in faq["customs-us"]["en"]
    assert de.incoterm == "DDP"
    assert "will not ask you for anything" in faq["customs-eu"]["en"]


@pytest.fixture
async def shop(db: Database) -> Database:
    await make_checkout_shop(db)
    return db


@pytest.fixture(autouse=True)
def on_the_rates_day(monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.clock import clock
    from tests.commerce.checkout.conftest import NOW

    monkeypatch.setattr(clock, "now", lambda: NOW)

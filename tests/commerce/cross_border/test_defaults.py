"""The shipped rules: complete, cited, loaded once, and demo rates that never go stale in the demo."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commerce.cross_border import convert, import_rates, load_cross_border_defaults
from commerce.cross_border.admin import list_rows, update_row
from commerce.cross_border.defaults import shipped_rules
from commerce.cross_border.models import ImportTaxRate
from commerce.cross_border.schemas import TaxRateIn
from kit.clock import clock
from kit.db import Database

EU_MEMBERS = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
              "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}


def test_shipped_rules_cover_every_destination_with_sources() -> None:
    shipped = shipped_rules()
    assert {r["region"] for r in shipped["import_rules"]} >= {"EU", "GB", "US", "CA", "AU", "JP", "SG", "CN"}
    eu_vat = {r["country"] for r in shipped["tax_rates"] if r["region"] == "EU"}
    assert eu_vat == EU_MEMBERS
    for table in ("import_rules", "tax_rates", "duty_rates"):
        for row in shipped[table]:
            assert row["source_title"]
            assert row["source_url"].startswith("http")
    zones = {z["code"]: z for z in shipped["shipping"]}
    assert set(zones["eu"]["countries"]) == EU_MEMBERS
    assert zones["eu"]["warehouse"] == "RTM"
    assert zones["americas"]["warehouse"] == "SZX"
    assert "BR" in zones["not-served"]["countries"]
    assert zones["not-served"]["served"] is False
    assert {p["scope"] for p in shipped["returns"]} == {"EU", "GB", "*"}
    us = [r for r in shipped["import_rules"] if r["region"] == "US"]
    assert sorted(str(r["effective_to"] or r["effective_from"]) for r in us) == ["2025-08-29", "2025-08-29"]


async def test_defaults_load_once_and_keep_merchant_edits(db: Database) -> None:
    async with db.unit_of_work() as session:
        first = await load_cross_border_defaults(session, demo_rates=False)
    assert first["import_rules"] >= 8
    assert first["tax_rates"] >= 27
    async with db.unit_of_work() as session:
        germany = next(r for r in await list_rows(session, model=ImportTaxRate) if r.country == "DE")
        edited = TaxRateIn.model_validate({**TaxRateIn.model_validate(germany, from_attributes=True).model_dump(),
                                           "rate": Decimal("16")})
        await update_row(session, model=ImportTaxRate, row_id=germany.id, data=edited)
    async with db.unit_of_work() as session:
        second = await load_cross_border_defaults(session, demo_rates=False)
    assert set(second.values()) == {0}
    async with db.sessions() as session:
        germany = next(r for r in await list_rows(session, model=ImportTaxRate) if r.country == "DE")
    assert germany.rate == Decimal("16")


async def test_demo_rates_are_restamped_each_demo_load_but_never_mask_real_rates(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    day_one = datetime(2026, 11, 28, 9, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: day_one)
    async with db.unit_of_work() as session:
        assert (await load_cross_border_defaults(session))["exchange_rates"] >= 25
    later = day_one + timedelta(days=30)
    monkeypatch.setattr(clock, "now", lambda: later)
    async with db.unit_of_work() as session:
        await load_cross_border_defaults(session)
        fresh = await convert(session, amount=Decimal(1), from_currency="EUR", to_currency="USD")
    assert fresh.age == 0
    async with db.unit_of_work() as session:
        await import_rates(session, content=f"{later.date().isoformat()},EUR,USD,1.5\n")
    monkeypatch.setattr(clock, "now", lambda: later + timedelta(days=1))
    async with db.unit_of_work() as session:
        assert (await load_cross_border_defaults(session))["exchange_rates"] == 0
        real = await convert(session, amount=Decimal(1), from_currency="EUR", to_currency="USD")
    assert real.rate == Decimal("1.5")

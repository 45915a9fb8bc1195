"""The shipped rules (data/*.yaml) loaded into the tables, where the merchant edits them afterwards."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.cross_border.fx import DEMO_SOURCE, import_demo_rates
from commerce.cross_border.models import (
    DutyRate,
    ImportRule,
    ImportTaxRate,
    ReturnPolicy,
    ShippingService,
    ShippingZone,
)
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import (
    DutyRateIn,
    ImportRuleIn,
    ReturnPolicyIn,
    ShippingZoneIn,
    TaxRateIn,
)
from kit.db import Base

DATA_DIR = Path(__file__).with_name("data")


def _rows(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((DATA_DIR / name).read_text(encoding="utf-8"))
    return list(data or [])


def shipped_rules() -> dict[str, list[dict[str, Any]]]:
    """The shipped data, validated through the same schemas as the merchant's edits."""
    return {
        "import_rules": [ImportRuleIn.model_validate(r).model_dump() for r in _rows("import_rules.yaml")],
        "tax_rates": [TaxRateIn.model_validate(r).model_dump() for r in _rows("tax_rates.yaml")],
        "duty_rates": [DutyRateIn.model_validate(r).model_dump() for r in _rows("duty_rates.yaml")],
        "shipping": [ShippingZoneIn.model_validate(r).model_dump() for r in _rows("shipping.yaml")],
        "returns": [ReturnPolicyIn.model_validate(r).model_dump() for r in _rows("returns.yaml")],
    }


def zone_from(data: dict[str, Any]) -> ShippingZone:
    services = [ShippingService(**s) for s in data.get("services") or []]
    fields = {k: v for k, v in data.items() if k != "services"}
    fields["countries"] = sorted({c.upper() for c in fields.get("countries") or []})
    return ShippingZone(**fields, services=services)


async def load_cross_border_defaults(session: AsyncSession, *, demo_rates: bool = True) -> dict[str, int]:
    """Load the shipped import rules, tax and duty rates, shipping zones and return policies.

    Each table is filled only while it is empty, so a merchant's edits survive a second call. With
    `demo_rates`, when the shop has no exchange rates or only demo ones, the shipped demo ECB file is
    imported stamped with today's date (demo rates would otherwise be refused as stale after
    `max_rate_age_days`); call it on every demo load. Rates imported for real are never overwritten.
    Returns how many rows were added per table.
    """
    repo = CrossBorderRepository(session)
    shipped = shipped_rules()
    added: dict[str, int] = {}
    plain: list[tuple[str, type[Base], str]] = [
        ("import_rules", ImportRule, "import_rules"), ("tax_rates", ImportTaxRate, "tax_rates"),
        ("duty_rates", DutyRate, "duty_rates"), ("returns", ReturnPolicy, "returns")]
    for key, model, name in plain:
        added[name] = 0
        if await repo.has_rows(model):
            continue
        for row in shipped[key]:
            session.add(model(**row))
            added[name] += 1
    added["shipping_zones"] = 0
    if not await repo.has_rows(ShippingZone):
        for zone in shipped["shipping"]:
            session.add(zone_from(zone))
            added["shipping_zones"] += 1
    await session.flush()
    added["exchange_rates"] = 0
    # Only a shop that has nothing but demo rates gets them re-stamped: real rates are never masked.
    if demo_rates and await repo.rate_sources() <= {DEMO_SOURCE}:
        added["exchange_rates"] = await import_demo_rates(session)
    return added

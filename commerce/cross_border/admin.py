"""The merchant's edits of rules and rates: validated rows in, rows out."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.cross_border.defaults import zone_from
from commerce.cross_border.errors import RowConflict, RowNotFound
from commerce.cross_border.fx import settings
from commerce.cross_border.geography import require_country
from commerce.cross_border.models import (
    ExchangeRate,
    ShippingService,
    ShippingZone,
)
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import (
    CrossBorderSettings,
    DutyRateIn,
    ImportRuleIn,
    ReturnPolicyIn,
    ShippingZoneIn,
    TaxRateIn,
)
from commerce.money import require_currency
from kit.clock import utcnow
from kit.db import Base
from kit.errors import InvalidInput

Row = TypeVar("Row", bound=Base)



def _check(data: BaseModel) -> dict[str, Any]:
    """Normalise codes and refuse what would make a wrong price (unknown country or currency, bad dates)."""
    values = data.model_dump()
    if "currency" in values:
        values["currency"] = require_currency(values["currency"])
    for key in ("country", "origin", "origin_country"):
        if values.get(key):
            values[key] = require_country(values[key])
    if "region" in values:
        values["region"] = values["region"].strip().upper()
    if "scope" in values:
        values["scope"] = values["scope"].strip().upper()
    start, end = values.get("effective_from"), values.get("effective_to")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("effective_to must be after effective_from.", code="invalid_effective_dates")
    if values.get("low_value_duty") == "flat_per_item" and not values.get("flat_duty_amount"):
        raise InvalidInput("A flat duty per item needs flat_duty_amount.", code="missing_flat_duty_amount")
    return values


async def _flush(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise RowConflict("A row with the same key already exists.") from exc


async def list_rows(session: AsyncSession, *, model: type[Row]) -> Sequence[Row]:
    return await CrossBorderRepository(session).all_rows(model)


async def get_row(session: AsyncSession, *, model: type[Row], row_id: int) -> Row:
    row = await CrossBorderRepository(session).row(model, row_id)
    if row is None:
        raise RowNotFound(f"No {model.__tablename__} row {row_id}.")
    return row


async def create_row(session: AsyncSession, *, model: type[Row],
                     data: ImportRuleIn | TaxRateIn | DutyRateIn | ReturnPolicyIn) -> Row:
    """Add a rule row (import rule, tax rate, duty rate, return policy)."""
    row = model(**_check(data))
    session.add(row)
    await _flush(session)
    return row


async def update_row(session: AsyncSession, *, model: type[Row], row_id: int,
                     data: ImportRuleIn | TaxRateIn | DutyRateIn | ReturnPolicyIn) -> Row:
    """Replace a rule row's fields."""
    row = await get_row(session, model=model, row_id=row_id)
    for key, value in _check(data).items():
        setattr(row, key, value)
    await _flush(session)
    return row


async def delete_row(session: AsyncSession, *, model: type[Base], row_id: int) -> None:
    row = await get_row(session, model=model, row_id=row_id)
    await session.delete(row)
    await session.flush()


def _zone_values(data: ShippingZoneIn) -> dict[str, Any]:
    values = _check(data)
    values["countries"] = sorted({require_country(c) for c in data.countries})
    for service in values["services"]:
        service["currency"] = require_currency(service["currency"])
        if service["max_days"] < service["min_days"]:
            raise InvalidInput("max_days must not be below min_days.", code="invalid_delivery_days")
    return values


async def list_zones(session: AsyncSession) -> Sequence[ShippingZone]:
    return await CrossBorderRepository(session).zones()


async def _zone(session: AsyncSession, zone_id: int) -> ShippingZone:
    zone = await CrossBorderRepository(session).zone(zone_id)
    if zone is None:
        raise RowNotFound(f"No shipping zone {zone_id}.")
    return zone


async def _countries_elsewhere(session: AsyncSession, countries: list[str], zone_id: int | None) -> None:
    for other in await CrossBorderRepository(session).zones():
        clash = set(other.countries) & set(countries)
        if other.id != zone_id and clash:
            raise RowConflict(f"{', '.join(sorted(clash))} already belong to zone {other.code!r}.",
                              code="country_in_other_zone")


async def get_zone(session: AsyncSession, *, zone_id: int) -> ShippingZone:
    """A zone with its services, or RowNotFound."""
    return await _zone(session, zone_id)


async def create_zone(session: AsyncSession, *, data: ShippingZoneIn) -> ShippingZone:
    """Add a shipping zone with its services; a country belongs to one zone only."""
    values = _zone_values(data)
    await _countries_elsewhere(session, values["countries"], None)
    zone = zone_from(values)
    session.add(zone)
    await _flush(session)
    return await _zone(session, zone.id)


async def update_zone(session: AsyncSession, *, zone_id: int, data: ShippingZoneIn) -> ShippingZone:
    """Replace a zone and its services."""
    zone = await _zone(session, zone_id)
    values = _zone_values(data)
    await _countries_elsewhere(session, values["countries"], zone_id)
    for key, value in values.items():
        if key != "services":
            setattr(zone, key, value)
    # Delete the old services first: the unit of work would insert the new ones before deleting.
    zone.services = []
    await session.flush()
    zone.services = [ShippingService(**s) for s in values["services"]]
    await _flush(session)
    session.expire(zone)
    return await _zone(session, zone_id)


async def delete_zone(session: AsyncSession, *, zone_id: int) -> None:
    zone = await _zone(session, zone_id)
    await session.delete(zone)
    await session.flush()


async def get_settings(session: AsyncSession) -> CrossBorderSettings:
    return CrossBorderSettings.model_validate(await settings(session))


async def update_settings(session: AsyncSession, *, data: CrossBorderSettings) -> CrossBorderSettings:
    """Set the FX markup (percent), the oldest usable rate (days) and the base currency."""
    repo = CrossBorderRepository(session)
    await repo.set_setting("fx_markup_percent", str(data.fx_markup_percent))
    await repo.set_setting("max_rate_age_days", str(data.max_rate_age_days))
    await repo.set_setting("fx_base", require_currency(data.fx_base))
    await session.flush()
    return await get_settings(session)


async def list_rates(session: AsyncSession, *, limit: int = 500) -> Sequence[ExchangeRate]:
    return await CrossBorderRepository(session).rates(limit=limit)


async def set_rate(session: AsyncSession, *, base: str, currency: str, rate: Decimal,
                   as_of: date, source: str = "manual") -> None:
    if rate <= 0:
        raise InvalidInput("A rate must be positive.", code="invalid_rate")
    await CrossBorderRepository(session).upsert_rate(base=require_currency(base), currency=require_currency(currency),
                                                     rate=rate, as_of=as_of, source=source, imported_at=utcnow())
    await session.flush()

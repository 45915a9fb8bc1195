"""All cross-border queries."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Date, and_, bindparam, event, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, selectinload

from commerce.cross_border.models import (
    CrossBorderSetting,
    DutyRate,
    ExchangeRate,
    ImportRule,
    ImportTaxRate,
    ReturnPolicy,
    ShippingService,
    ShippingZone,
)
from kit.db import Base

Row = TypeVar("Row", bound=Base)
Dated = ImportRule | ImportTaxRate | DutyRate


def _in_force(model: type[ImportRule] | type[ImportTaxRate] | type[DutyRate], on: Any) -> Any:
    return and_(model.effective_from <= on, or_(model.effective_to.is_(None), model.effective_to > on))


# Reads that chat turns run (prices, taxes, shipping, returns), built once with bound parameters: SQLAlchemy
# reuses their cache key and compiled form instead of building and hashing a new statement per call.
_ON = bindparam("on", type_=Date)
_LATEST_RATE = select(ExchangeRate).where(
    ExchangeRate.base == bindparam("base"), ExchangeRate.currency == bindparam("currency"), ExchangeRate.as_of <= _ON,
).order_by(ExchangeRate.as_of.desc()).limit(1)
_IMPORT_RULE = select(ImportRule).where(ImportRule.region == bindparam("region"), _in_force(ImportRule, _ON)) \
    .order_by(ImportRule.effective_from.desc()).limit(1)
_TAX_RATE = select(ImportTaxRate).where(ImportTaxRate.country == bindparam("country"), _in_force(ImportTaxRate, _ON)) \
    .order_by(ImportTaxRate.effective_from.desc()).limit(1)
_DUTY_RATES = select(DutyRate).where(DutyRate.region == bindparam("region"), _in_force(DutyRate, _ON)) \
    .order_by(DutyRate.effective_from)
_ZONES = select(ShippingZone).options(selectinload(ShippingZone.services)).order_by(ShippingZone.id)
_RETURN_POLICIES = select(ReturnPolicy).where(ReturnPolicy.scope.in_(bindparam("scopes", expanding=True)))


_SETTINGS_KEY = "cross_border.settings"


@event.listens_for(Session, "after_transaction_end")
def _forget_settings(session: Session, _transaction: Any) -> None:
    session.info.pop(_SETTINGS_KEY, None)  # a copy lives at most one transaction

class CrossBorderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # exchange rates
    async def upsert_rate(self, *, base: str, currency: str, rate: Decimal, as_of: date, source: str,
                          imported_at: datetime) -> None:
        row = await self.session.scalar(select(ExchangeRate).where(
            ExchangeRate.base == base, ExchangeRate.currency == currency, ExchangeRate.as_of == as_of))
        if row is None:
            self.session.add(ExchangeRate(base=base, currency=currency, rate=rate, as_of=as_of, source=source,
                                          imported_at=imported_at))
        else:
            row.rate, row.source, row.imported_at = rate, source, imported_at

    async def latest_rate(self, *, base: str, currency: str, on: date) -> ExchangeRate | None:
        return await self.session.scalar(_LATEST_RATE, {"base": base, "currency": currency, "on": on})

    async def latest_rates(self, *, on: date) -> list[ExchangeRate]:
        """The newest rate at or before `on` of every (base, currency) pair."""
        rows = (await self.session.scalars(
            select(ExchangeRate).where(ExchangeRate.as_of <= on).order_by(ExchangeRate.as_of.desc()))).all()
        newest: dict[tuple[str, str], ExchangeRate] = {}
        for row in rows:
            newest.setdefault((row.base, row.currency), row)
        return list(newest.values())

    async def rate_sources(self) -> set[str]:
        return set((await self.session.scalars(select(ExchangeRate.source).distinct())).all())

    async def rate_bases(self) -> list[str]:
        return list((await self.session.scalars(select(ExchangeRate.base).distinct().order_by(ExchangeRate.base)))
                    .all())

    async def rates(self, *, as_of: date | None = None, limit: int = 500) -> Sequence[ExchangeRate]:
        query = select(ExchangeRate).order_by(ExchangeRate.as_of.desc(), ExchangeRate.base,
                                              ExchangeRate.currency).limit(limit)
        if as_of is not None:
            query = query.where(ExchangeRate.as_of == as_of)
        return (await self.session.scalars(query)).all()

    # settings
    async def settings(self) -> dict[str, str]:
        """Read once per session (one quote asks several times); `set_setting` forgets the copy."""
        cached = self.session.info.get(_SETTINGS_KEY)
        if cached is None:
            cached = {row.key: row.value for row in (await self.session.scalars(select(CrossBorderSetting))).all()}
            self.session.info[_SETTINGS_KEY] = cached
        return dict(cached)

    async def set_setting(self, key: str, value: str) -> None:
        self.session.info.pop(_SETTINGS_KEY, None)
        row = await self.session.get(CrossBorderSetting, key)
        if row is None:
            self.session.add(CrossBorderSetting(key=key, value=value))
        else:
            row.value = value

    # rules in force
    async def import_rule(self, *, region: str, on: date) -> ImportRule | None:
        return await self.session.scalar(_IMPORT_RULE, {"region": region, "on": on})

    async def tax_rate(self, *, country: str, on: date) -> ImportTaxRate | None:
        return await self.session.scalar(_TAX_RATE, {"country": country, "on": on})

    async def duty_rates(self, *, region: str, on: date) -> Sequence[DutyRate]:
        return (await self.session.scalars(_DUTY_RATES, {"region": region, "on": on})).all()

    async def zones(self) -> Sequence[ShippingZone]:
        return (await self.session.scalars(_ZONES)).all()

    async def zone(self, zone_id: int) -> ShippingZone | None:
        return await self.session.scalar(
            select(ShippingZone).where(ShippingZone.id == zone_id).options(selectinload(ShippingZone.services)))

    async def return_policy(self, scopes: Sequence[str]) -> ReturnPolicy | None:
        rows = {p.scope: p for p in (await self.session.scalars(_RETURN_POLICIES, {"scopes": list(scopes)})).all()}
        return next((rows[s] for s in scopes if s in rows), None)

    # generic rows for the merchant's editing
    async def all_rows(self, model: type[Row]) -> Sequence[Row]:
        primary = model.__mapper__.primary_key[0]
        return (await self.session.scalars(select(model).order_by(primary))).all()

    async def row(self, model: type[Row], row_id: int) -> Row | None:
        return await self.session.get(model, row_id)

    async def has_rows(self, model: type[Base]) -> bool:
        return (await self.session.scalar(select(model).limit(1))) is not None

    async def service(self, service_id: int) -> ShippingService | None:
        return await self.session.get(ShippingService, service_id)

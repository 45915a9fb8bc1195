"""Merchant editing of cross-border rules and exchange rates under /api/v1/cross-border."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import MerchantDep
from api.deps import SessionDep
from api.params import PathId
from commerce.cross_border import admin, import_rates, load_cross_border_defaults
from commerce.cross_border.models import DutyRate, ImportRule, ImportTaxRate, ReturnPolicy
from commerce.cross_border.schemas import (
    CrossBorderSettings,
    DutyRateIn,
    DutyRateOut,
    ExchangeRateOut,
    ImportRuleIn,
    ImportRuleOut,
    ReturnPolicyIn,
    ReturnPolicyOut,
    ShippingZoneIn,
    ShippingZoneOut,
    TaxRateIn,
    TaxRateOut,
)
from kit.fields import PlainDecimal

router = APIRouter(prefix="/api/v1/cross-border", tags=["cross-border admin"])


# Import rules (per destination: thresholds, who collects, effective dates, cited source)

@router.get("/import-rules", response_model=list[ImportRuleOut])
async def list_import_rules(session: SessionDep, _: MerchantDep) -> list[ImportRuleOut]:
    return [ImportRuleOut.model_validate(r) for r in await admin.list_rows(session, model=ImportRule)]


@router.post("/import-rules", response_model=ImportRuleOut, status_code=status.HTTP_201_CREATED)
async def create_import_rule(data: ImportRuleIn, session: SessionDep, _: MerchantDep) -> ImportRuleOut:
    return ImportRuleOut.model_validate(await admin.create_row(session, model=ImportRule, data=data))


@router.put("/import-rules/{row_id}", response_model=ImportRuleOut)
async def update_import_rule(row_id: PathId, data: ImportRuleIn, session: SessionDep, _: MerchantDep) -> ImportRuleOut:
    return ImportRuleOut.model_validate(await admin.update_row(session, model=ImportRule, row_id=row_id, data=data))


@router.delete("/import-rules/{row_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_import_rule(row_id: PathId, session: SessionDep, _: MerchantDep) -> None:
    await admin.delete_row(session, model=ImportRule, row_id=row_id)


# Import tax rates (VAT/GST per country)

@router.get("/tax-rates", response_model=list[TaxRateOut])
async def list_tax_rates(session: SessionDep, _: MerchantDep) -> list[TaxRateOut]:
    return [TaxRateOut.model_validate(r) for r in await admin.list_rows(session, model=ImportTaxRate)]


@router.post("/tax-rates", response_model=TaxRateOut, status_code=status.HTTP_201_CREATED)
async def create_tax_rate(data: TaxRateIn, session: SessionDep, _: MerchantDep) -> TaxRateOut:
    return TaxRateOut.model_validate(await admin.create_row(session, model=ImportTaxRate, data=data))


@router.put("/tax-rates/{row_id}", response_model=TaxRateOut)
async def update_tax_rate(row_id: PathId, data: TaxRateIn, session: SessionDep, _: MerchantDep) -> TaxRateOut:
    return TaxRateOut.model_validate(await admin.update_row(session, model=ImportTaxRate, row_id=row_id, data=data))


@router.delete("/tax-rates/{row_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_tax_rate(row_id: PathId, session: SessionDep, _: MerchantDep) -> None:
    await admin.delete_row(session, model=ImportTaxRate, row_id=row_id)


# Duty rates (per destination and HS chapter)

@router.get("/duty-rates", response_model=list[DutyRateOut])
async def list_duty_rates(session: SessionDep, _: MerchantDep) -> list[DutyRateOut]:
    return [DutyRateOut.model_validate(r) for r in await admin.list_rows(session, model=DutyRate)]


@router.post("/duty-rates", response_model=DutyRateOut, status_code=status.HTTP_201_CREATED)
async def create_duty_rate(data: DutyRateIn, session: SessionDep, _: MerchantDep) -> DutyRateOut:
    return DutyRateOut.model_validate(await admin.create_row(session, model=DutyRate, data=data))


@router.put("/duty-rates/{row_id}", response_model=DutyRateOut)
async def update_duty_rate(row_id: PathId, data: DutyRateIn, session: SessionDep, _: MerchantDep) -> DutyRateOut:
    return DutyRateOut.model_validate(await admin.update_row(session, model=DutyRate, row_id=row_id, data=data))


@router.delete("/duty-rates/{row_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_duty_rate(row_id: PathId, session: SessionDep, _: MerchantDep) -> None:
    await admin.delete_row(session, model=DutyRate, row_id=row_id)


# Return policies (per country, region or '*')

@router.get("/return-policies", response_model=list[ReturnPolicyOut])
async def list_return_policies(session: SessionDep, _: MerchantDep) -> list[ReturnPolicyOut]:
    return [ReturnPolicyOut.model_validate(r) for r in await admin.list_rows(session, model=ReturnPolicy)]


@router.post("/return-policies", response_model=ReturnPolicyOut, status_code=status.HTTP_201_CREATED)
async def create_return_policy(data: ReturnPolicyIn, session: SessionDep, _: MerchantDep) -> ReturnPolicyOut:
    return ReturnPolicyOut.model_validate(await admin.create_row(session, model=ReturnPolicy, data=data))


@router.put("/return-policies/{row_id}", response_model=ReturnPolicyOut)
async def update_return_policy(row_id: PathId, data: ReturnPolicyIn, session: SessionDep,
                               _: MerchantDep) -> ReturnPolicyOut:
    return ReturnPolicyOut.model_validate(await admin.update_row(session, model=ReturnPolicy, row_id=row_id,
                                                                 data=data))


@router.delete("/return-policies/{row_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_return_policy(row_id: PathId, session: SessionDep, _: MerchantDep) -> None:
    await admin.delete_row(session, model=ReturnPolicy, row_id=row_id)


# Shipping zones with their services

@router.get("/shipping-zones", response_model=list[ShippingZoneOut])
async def list_shipping_zones(session: SessionDep, _: MerchantDep) -> list[ShippingZoneOut]:
    return [ShippingZoneOut.model_validate(z) for z in await admin.list_zones(session)]


@router.post("/shipping-zones", response_model=ShippingZoneOut, status_code=status.HTTP_201_CREATED)
async def create_shipping_zone(data: ShippingZoneIn, session: SessionDep, _: MerchantDep) -> ShippingZoneOut:
    return ShippingZoneOut.model_validate(await admin.create_zone(session, data=data))


@router.put("/shipping-zones/{zone_id}", response_model=ShippingZoneOut)
async def update_shipping_zone(zone_id: PathId, data: ShippingZoneIn, session: SessionDep,
                               _: MerchantDep) -> ShippingZoneOut:
    return ShippingZoneOut.model_validate(await admin.update_zone(session, zone_id=zone_id, data=data))


@router.delete("/shipping-zones/{zone_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_shipping_zone(zone_id: PathId, session: SessionDep, _: MerchantDep) -> None:
    await admin.delete_zone(session, zone_id=zone_id)


# Exchange rates and settings

class RateIn(BaseModel):
    base: str = Field(min_length=3, max_length=3)
    currency: str = Field(min_length=3, max_length=3)
    rate: PlainDecimal = Field(gt=0, max_digits=24, decimal_places=10)
    as_of: date


class ImportResult(BaseModel):
    imported: int


@router.get("/rates", response_model=list[ExchangeRateOut])
async def list_rates(session: SessionDep, _: MerchantDep,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[ExchangeRateOut]:
    """Stored exchange rates, newest first."""
    return [ExchangeRateOut.model_validate(r) for r in await admin.list_rates(session, limit=limit)]


@router.post("/rates", response_model=ImportResult, status_code=status.HTTP_201_CREATED)
async def set_rate(data: RateIn, session: SessionDep, _: MerchantDep) -> ImportResult:
    """Set one rate: 1 `base` buys `rate` `currency` on `as_of`."""
    await admin.set_rate(session, base=data.base, currency=data.currency, rate=data.rate, as_of=data.as_of)
    return ImportResult(imported=1)


@router.post("/rates/import", response_model=ImportResult, status_code=status.HTTP_201_CREATED)
async def import_rates_file(request: Request, session: SessionDep, _: MerchantDep) -> ImportResult:
    """Import an ECB eurofxref XML file or a `date,base,currency,rate` CSV sent as the raw request body."""
    content = await request.body()
    return ImportResult(imported=await import_rates(session, content=content, source="api"))


@router.get("/settings", response_model=CrossBorderSettings)
async def get_settings(session: SessionDep, _: MerchantDep) -> CrossBorderSettings:
    return await admin.get_settings(session)


@router.put("/settings", response_model=CrossBorderSettings)
async def update_settings(data: CrossBorderSettings, session: SessionDep, _: MerchantDep) -> CrossBorderSettings:
    """FX markup (percent) on shop prices, the oldest usable rate (days), the base currency."""
    return await admin.update_settings(session, data=data)


@router.post("/load-defaults", response_model=dict[str, int])
async def load_defaults(session: SessionDep, _: MerchantDep) -> dict[str, int]:
    """Load the shipped rules into empty tables (never overwrites the merchant's rows)."""
    return await load_cross_border_defaults(session, demo_rates=False)

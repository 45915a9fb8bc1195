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
from kit.db import Base
from kit.fields import PlainDecimal

router = APIRouter(prefix="/api/v1/cross-border", tags=["cross-border admin"])
RuleIn = ImportRuleIn | TaxRateIn | DutyRateIn | ReturnPolicyIn


def add_row_routes(router: APIRouter, *, path: str, singular: str, plural: str, model: type[Base],
                   schema_in: type[BaseModel], schema_out: type[BaseModel]) -> None:
    """GET and POST `path`, PUT and DELETE `path`/{row_id} for one rule table (merchant token), named
    list_<plural>, create_<singular>, update_<singular> and delete_<singular> (their OpenAPI operation ids)."""

    async def list_rows(session: SessionDep, _: MerchantDep) -> list[BaseModel]:
        return [schema_out.model_validate(r) for r in await admin.list_rows(session, model=model)]

    async def create_row(data: RuleIn, session: SessionDep, _: MerchantDep) -> BaseModel:
        return schema_out.model_validate(await admin.create_row(session, model=model, data=data))

    async def update_row(row_id: PathId, data: RuleIn, session: SessionDep, _: MerchantDep) -> BaseModel:
        return schema_out.model_validate(await admin.update_row(session, model=model, row_id=row_id, data=data))

    async def delete_row(row_id: PathId, session: SessionDep, _: MerchantDep) -> None:
        await admin.delete_row(session, model=model, row_id=row_id)

    create_row.__annotations__["data"] = update_row.__annotations__["data"] = schema_in  # the body FastAPI reads
    router.add_api_route(path, list_rows, methods=["GET"], response_model=list[schema_out],  # type: ignore[valid-type]
                         name=f"list_{plural}")
    router.add_api_route(path, create_row, methods=["POST"], response_model=schema_out,
                         status_code=status.HTTP_201_CREATED, name=f"create_{singular}")
    router.add_api_route(path + "/{row_id}", update_row, methods=["PUT"], response_model=schema_out,
                         name=f"update_{singular}")
    router.add_api_route(path + "/{row_id}", delete_row, methods=["DELETE"], status_code=status.HTTP_204_NO_CONTENT,
                         response_class=Response, name=f"delete_{singular}")


# Import rules (per destination: thresholds, who collects, effective dates, cited source), import tax rates (VAT/GST
# per country), duty rates (per destination and HS chapter), return policies (per country, region or '*').
add_row_routes(router, path="/import-rules", singular="import_rule", plural="import_rules", model=ImportRule,
               schema_in=ImportRuleIn, schema_out=ImportRuleOut)
add_row_routes(router, path="/tax-rates", singular="tax_rate", plural="tax_rates", model=ImportTaxRate,
               schema_in=TaxRateIn, schema_out=TaxRateOut)
add_row_routes(router, path="/duty-rates", singular="duty_rate", plural="duty_rates", model=DutyRate,
               schema_in=DutyRateIn, schema_out=DutyRateOut)
add_row_routes(router, path="/return-policies", singular="return_policy", plural="return_policies", model=ReturnPolicy,
               schema_in=ReturnPolicyIn, schema_out=ReturnPolicyOut)


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

"""Back office screens for selling abroad: shipping zones with their services (countries, warehouse, price, days,
insurance), the taxes and duties rules with the sources they cite, and exchange rates (age, source, stale warning,
refresh). Every form is checked by the same pydantic schemas and `commerce.cross_border.admin` service calls as the
REST API under /api/v1/cross-border, so a form refuses what the API refuses and names the field; every change is in
the audit log."""
from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from api import accounts
from api.deps import get_database
from api.http.merchant.backoffice import (
    PAGE_SIZE,
    Editor,
    PageRoute,
    Staff,
    Viewer,
    field_error,
    form_dict,
    invalid,
    pages,
    plain,
    redirect,
    render,
)
from api.http.merchant.cross_border import RateIn
from commerce.cross_border import admin, import_rates
from commerce.cross_border.fx import settings as fx_settings
from commerce.cross_border.models import DutyRate, ImportRule, ImportTaxRate
from commerce.cross_border.schemas import (
    DutyRateIn,
    ImportRuleIn,
    ShippingServiceIn,
    ShippingZoneIn,
    TaxRateIn,
)
from commerce.inventory import service as inventory
from kit.clock import utcnow
from kit.errors import InvalidInput, ShopTalkError

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SERVICE_FIELDS = tuple(ShippingServiceIn.model_fields)
MAX_RATES_FILE = 2 * 1024 * 1024
UPLOAD_LIMITS = {"/backoffice/rates/import": MAX_RATES_FILE + 64 * 1024}


# ------------------------------------------------------------------------------------------ shipping zones

def _zone_form(zone: Any | None) -> dict[str, str]:
    if zone is None:
        return {"served": "on", "svc-count": "1"}
    form = {"code": zone.code, "name": zone.name, "countries": ", ".join(zone.countries),
            "warehouse": zone.warehouse or "", "origin_country": zone.origin_country or "",
            "served": "on" if zone.served else "", "notes": zone.notes, "svc-count": str(len(zone.services) + 1)}
    for i, service in enumerate(zone.services):
        for name in SERVICE_FIELDS:
            form[f"svc-{i}-{name}"] = plain(getattr(service, name))
    return form


def _zone_data(form: Mapping[str, str]) -> ShippingZoneIn:
    """The zone form as the API's ShippingZoneIn: a services row with neither code nor name is left out, a row
    ticked 'remove' too."""
    count = int(form.get("svc-count", "0")) if form.get("svc-count", "0").isdigit() else 0
    services: list[dict[str, str]] = []
    rows: list[int] = []  # form row of each service kept, to name the field of a refused one
    for i in range(min(count, 50)):
        row = {name: form.get(f"svc-{i}-{name}", "").strip() for name in SERVICE_FIELDS}
        if form.get(f"svc-{i}-remove") or not (row["service"] or row["name"]):
            continue
        services.append({k: v for k, v in row.items() if v != ""})
        rows.append(i)
    countries = [c for c in form.get("countries", "").replace(",", " ").upper().split() if c]

    def field_of(loc: list[str]) -> str:
        if loc[0] == "services" and len(loc) > 2 and loc[1].isdigit():
            return f"svc-{rows[int(loc[1])]}-{loc[2]}"
        return loc[0]

    try:
        return ShippingZoneIn.model_validate({
            "code": form.get("code", "").strip(), "name": form.get("name", "").strip(), "countries": countries,
            "warehouse": form.get("warehouse") or None,
            "origin_country": form.get("origin_country", "").strip() or None,
            "served": bool(form.get("served")), "notes": form.get("notes", ""), "services": services})
    except ValidationError as error:
        raise invalid(error, field_of=field_of) from None


_ZONE_FIELD_OF_CODE = {"country_in_other_zone": "countries", "invalid_delivery_days": "services",
                       "unknown_country": "countries", "cross_border_row_conflict": "code",
                       "unknown_currency": "services"}


@router.get("/backoffice/shipping")
async def zones(request: Request, who: Viewer, country: str = "", offset: int = 0) -> HTMLResponse:
    who.require("shipping")
    country = country.strip().upper()[:2]
    offset = max(0, offset)
    async with get_database(request).sessions() as session:
        rows = [z for z in await admin.list_zones(session) if not country or country in z.countries]
    return render(request, "shipping.html", {"zones": rows[offset:offset + PAGE_SIZE], "country": country,
                                             "pages": pages(len(rows), offset),
                                             "notice": request.query_params.get("notice")}, who=who)


async def _zone_page(request: Request, who: Staff, zone_id: int | None, *, form: dict[str, str] | None = None,
                     error: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        zone = await admin.get_zone(session, zone_id=zone_id) if zone_id is not None else None
        locations = await inventory.locations(session)
    form = form if form is not None else _zone_form(zone)
    count = int(form.get("svc-count", "1")) if form.get("svc-count", "1").isdigit() else 1
    return render(request, "shipping_zone.html", {"zone": zone, "form": form, "error": error, "rows": range(count),
                                                  "locations": locations,
                                                  "notice": request.query_params.get("notice")},
                  status=status, who=who)


@router.get("/backoffice/shipping/new")
async def new_zone(request: Request, who: Viewer) -> HTMLResponse:
    who.require("shipping")
    return await _zone_page(request, who, None)


@router.get("/backoffice/shipping/{zone_id}")
async def zone(request: Request, who: Viewer, zone_id: int) -> HTMLResponse:
    who.require("shipping")
    return await _zone_page(request, who, zone_id)


def _zone_summary(data: ShippingZoneIn) -> dict[str, Any]:
    return {"countries": ", ".join(data.countries), "warehouse": data.warehouse, "served": data.served,
            "services": "; ".join(f"{s.service} {s.base_price} {s.currency} {s.min_days}-{s.max_days} d"
                                  f"{f' ins {s.insurance_percent}%' if s.insurance_percent else ''}"
                                  for s in data.services)}


@router.post("/backoffice/shipping/save")
async def save_zone(request: Request, who: Editor) -> Response:
    """Create (no zone_id) or replace a zone with its services: `admin.create_zone` / `admin.update_zone`."""
    who.require("shipping")
    form = form_dict(await request.form())
    zone_id = int(form["zone_id"]) if form.get("zone_id", "").isdigit() else None
    try:
        data = _zone_data(form)
        async with get_database(request).unit_of_work() as session:
            before = None
            if zone_id is None:
                saved = await admin.create_zone(session, data=data)
            else:
                old = await admin.get_zone(session, zone_id=zone_id)
                before = _zone_summary(ShippingZoneIn.model_validate(old, from_attributes=True))
                saved = await admin.update_zone(session, zone_id=zone_id, data=data)
            await accounts.record(session, actor=who.actor, area="shipping",
                                  action="zone created" if before is None else "zone edited",
                                  subject=f"{saved.code} (#{saved.id})",
                                  details={"before": before, "after": _zone_summary(data)} if before
                                  else _zone_summary(data))
            saved_id = saved.id
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra.setdefault("field", _ZONE_FIELD_OF_CODE.get(error.code, "form"))
        return await _zone_page(request, who, zone_id, form=form, error=field_error(error), status=error.status)
    return redirect(f"/backoffice/shipping/{saved_id}", notice="Shipping zone saved.")


@router.post("/backoffice/shipping/{zone_id}/delete")
async def delete_zone(request: Request, who: Editor, zone_id: int) -> Response:
    who.require("shipping")
    async with get_database(request).unit_of_work() as session:
        old = await admin.get_zone(session, zone_id=zone_id)
        code = old.code
        await admin.delete_zone(session, zone_id=zone_id)
        await accounts.record(session, actor=who.actor, area="shipping", action="zone deleted",
                              subject=f"{code} (#{zone_id})")
    return redirect("/backoffice/shipping", notice=f"Zone {code} deleted.")


# ------------------------------------------------------------------------------------------ taxes and duties

@dataclass(frozen=True)
class RuleKind:
    slug: str
    label: str
    model: type[ImportRule | ImportTaxRate | DutyRate]
    schema: type[BaseModel]
    columns: tuple[str, ...]  # shown in the list besides the dates and the source
    filter_by: str  # the column the list filters on


KINDS = {k.slug: k for k in (
    RuleKind("import-rules", "Import rules", ImportRule, ImportRuleIn,
             ("region", "name", "currency", "low_value_max", "low_value_collector", "scheme"), "region"),
    RuleKind("tax-rates", "Import tax (VAT, GST)", ImportTaxRate, TaxRateIn, ("country", "region", "tax_name", "rate"),
             "country"),
    RuleKind("duty-rates", "Customs duty", DutyRate, DutyRateIn, ("region", "hs_chapter", "origin", "rate"), "region"),
)}


def _kind(slug: str) -> RuleKind:
    kind = KINDS.get(slug)
    if kind is None:
        raise InvalidInput(f"No such rule table {slug!r}.", code="not_found", status=404)
    return kind


def _input_of(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """How a schema field is typed in: ('select', choices) | ('checkbox', ()) | ('date', ()) | ('text', ())."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] \
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union else [annotation]
    inner = args[0] if len(args) == 1 else annotation
    if typing.get_origin(inner) is typing.Annotated:
        inner = typing.get_args(inner)[0]
    if typing.get_origin(inner) is typing.Literal:
        return "select", tuple(str(a) for a in typing.get_args(inner))
    if inner is bool:
        return "checkbox", ()
    if inner is date:
        return "date", ()
    return "text", ()


def rule_fields(schema: type[BaseModel]) -> list[dict[str, Any]]:
    fields = []
    for name, info in schema.model_fields.items():
        kind, choices = _input_of(info.annotation)
        fields.append({"name": name, "input": kind, "choices": choices, "required": info.is_required(),
                       "long": name in ("notes", "source_title", "source_url")})
    return fields


def _rule_form(row: ImportRule | ImportTaxRate | DutyRate | None, schema: type[BaseModel]) -> dict[str, str]:
    form: dict[str, str] = {}
    for name, info in schema.model_fields.items():
        value = getattr(row, name) if row is not None else info.default
        if value is None or value is Ellipsis or str(value) == "PydanticUndefined":
            form[name] = ""
        elif isinstance(value, bool):
            form[name] = "on" if value else ""
        else:
            form[name] = plain(value)
    return form


def _rule_data(kind: RuleKind, form: Mapping[str, str]) -> BaseModel:
    values: dict[str, Any] = {}
    for field in rule_fields(kind.schema):
        raw = form.get(field["name"], "")
        if field["input"] == "checkbox":
            values[field["name"]] = bool(raw)
        elif raw.strip() != "" or field["required"]:
            values[field["name"]] = raw.strip() if field["name"] != "notes" else raw
        # an optional field left empty takes the schema's default (None, or its stated default)
    try:
        return kind.schema.model_validate(values)
    except ValidationError as error:
        raise invalid(error, field_of=lambda loc: loc[0]) from None


@router.get("/backoffice/taxes")
async def taxes(request: Request, who: Viewer, kind: str = "tax-rates", where: str = "",
                offset: int = 0) -> HTMLResponse:
    who.require("taxes")
    table = _kind(kind)
    where = where.strip().upper()[:8]
    offset = max(0, offset)
    async with get_database(request).sessions() as session:
        rows = [r for r in await admin.list_rows(session, model=table.model)
                if not where or str(getattr(r, table.filter_by) or "").upper() == where]
    today = utcnow().date()
    return render(request, "taxes.html", {
        "kinds": KINDS.values(), "kind": table, "where": where, "rows": rows[offset:offset + PAGE_SIZE],
        "pages": pages(len(rows), offset), "today": today,
        "notice": request.query_params.get("notice")}, who=who)


async def _rule_page(request: Request, who: Staff, table: RuleKind, row_id: int | None, *,
                     form: dict[str, str] | None = None, error: dict[str, Any] | None = None,
                     status: int = 200) -> HTMLResponse:
    row = None
    if row_id is not None:
        async with get_database(request).sessions() as session:
            row = await admin.get_row(session, model=table.model, row_id=row_id)
    return render(request, "tax_rule.html", {"kind": table, "row": row, "row_id": row_id,
                                             "fields": rule_fields(table.schema),
                                             "form": form if form is not None else _rule_form(row, table.schema),
                                             "error": error}, status=status, who=who)


@router.get("/backoffice/taxes/{kind}/new")
async def new_rule(request: Request, who: Viewer, kind: str) -> HTMLResponse:
    who.require("taxes")
    return await _rule_page(request, who, _kind(kind), None)


@router.get("/backoffice/taxes/{kind}/{row_id}")
async def rule(request: Request, who: Viewer, kind: str, row_id: int) -> HTMLResponse:
    who.require("taxes")
    return await _rule_page(request, who, _kind(kind), row_id)


@router.post("/backoffice/taxes/{kind}/save")
async def save_rule(request: Request, who: Editor, kind: str) -> Response:
    """Create (no row_id) or change a rule row through `admin.create_row` / `admin.update_row` (the API's)."""
    who.require("taxes")
    table = _kind(kind)
    form = form_dict(await request.form())
    row_id = int(form["row_id"]) if form.get("row_id", "").isdigit() else None
    try:
        data = _rule_data(table, form)
        async with get_database(request).unit_of_work() as session:
            before = None
            if row_id is None:
                row = await admin.create_row(session, model=table.model, data=data)  # type: ignore[arg-type]
            else:
                old = await admin.get_row(session, model=table.model, row_id=row_id)
                before = _rule_form(old, table.schema)
                row = await admin.update_row(session, model=table.model, row_id=row_id,
                                             data=data)  # type: ignore[arg-type]
            after = _rule_form(row, table.schema)
            changed = {k: {"before": before[k], "after": v} for k, v in after.items() if before and before[k] != v}
            await accounts.record(session, actor=who.actor, area="taxes",
                                  action="rule added" if before is None else "rule edited",
                                  subject=f"{table.slug} #{row.id} ({getattr(row, table.filter_by)})",
                                  details=changed if before is not None else
                                  {"source": after.get("source_title", "")})
            saved_id = row.id
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra.setdefault("field", {"invalid_effective_dates": "effective_to",
                                         "missing_flat_duty_amount": "flat_duty_amount",
                                         "unknown_country": "country"}.get(error.code, "form"))
        return await _rule_page(request, who, table, row_id, form=form, error=field_error(error),
                                status=error.status)
    return redirect(f"/backoffice/taxes/{table.slug}/{saved_id}", notice="Rule saved.")


# --------------------------------------------------------------------------------------------- exchange rates

@dataclass(frozen=True)
class RateRow:
    base: str
    currency: str
    rate: Decimal
    as_of: date
    source: str
    imported_at: Any
    age_days: int
    stale: bool


async def _rates_page(request: Request, who: Staff, *, offset: int = 0, currency: str = "",
                      error: dict[str, Any] | None = None, form: dict[str, str] | None = None,
                      status: int = 200) -> HTMLResponse:
    today = utcnow().date()
    async with get_database(request).sessions() as session:
        stored = await admin.list_rates(session, limit=5000)
        config = await fx_settings(session)
    max_age = int(config["max_rate_age_days"])
    latest: dict[tuple[str, str], RateRow] = {}
    for r in stored:  # newest first: the first of a pair is its current rate
        if (r.base, r.currency) not in latest:
            age = (today - r.as_of).days
            latest[(r.base, r.currency)] = RateRow(r.base, r.currency, r.rate, r.as_of, r.source, r.imported_at, age,
                                                   age > max_age)
    rows: Sequence[RateRow] = sorted((r for r in latest.values() if not currency or currency in (r.base, r.currency)),
                                     key=lambda r: (not r.stale, r.base, r.currency))
    offset = max(0, offset)
    return render(request, "rates.html", {
        "rates": rows[offset:offset + PAGE_SIZE], "pages": pages(len(rows), offset), "max_age": max_age,
        "currency": currency, "stale": sum(1 for r in latest.values() if r.stale), "settings": config, "error": error,
        "form": form or {}, "today": today, "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/rates")
async def rates(request: Request, who: Viewer, offset: int = 0, currency: str = "") -> HTMLResponse:
    who.require("rates")
    return await _rates_page(request, who, offset=offset, currency=currency.strip().upper()[:3])


@router.post("/backoffice/rates/import")
async def refresh_rates(request: Request, who: Editor, file: UploadFile | None = None) -> Response:
    """Refresh the rates from an ECB eurofxref XML or a date,base,currency,rate CSV: the same `import_rates` as
    POST /api/v1/cross-border/rates/import and `shoptalk rates import`."""
    who.require("rates")
    try:
        content = await file.read(MAX_RATES_FILE + 1) if file is not None and file.filename else b""
        if not content:
            raise InvalidInput("Choose the rates file (ECB XML or CSV).", code="missing_file", field="file")
        if len(content) > MAX_RATES_FILE:
            raise InvalidInput(f"The file is over {MAX_RATES_FILE // 1_048_576} MB.", code="file_too_large",
                               field="file")
        async with get_database(request).unit_of_work() as session:
            count = await import_rates(session, content=content, source="backoffice")
            await accounts.record(session, actor=who.actor, area="rates", action="rates imported",
                                  subject=(file.filename or "file")[:200] if file else "file",
                                  details={"rates": count})
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        error.extra.setdefault("field", "file")
        return await _rates_page(request, who, error=field_error(error), status=error.status)
    return redirect("/backoffice/rates", notice=f"{count} rates imported.")


@router.post("/backoffice/rates/set")
async def set_rate(request: Request, who: Editor, base: Annotated[str, Form(max_length=3)],
                   currency: Annotated[str, Form(max_length=3)], rate: Annotated[str, Form(max_length=40)],
                   as_of: Annotated[str, Form(max_length=10)] = "") -> Response:
    """One rate by hand (`admin.set_rate`, as POST /api/v1/cross-border/rates)."""
    who.require("rates")
    form = {"base": base, "currency": currency, "rate": rate, "as_of": as_of}
    try:
        try:
            data = RateIn.model_validate({"base": base.strip().upper(), "currency": currency.strip().upper(),
                                          "rate": rate.strip(), "as_of": as_of.strip() or utcnow().date()})
        except ValidationError as error:
            raise invalid(error, field_of=lambda loc: loc[0]) from None
        async with get_database(request).unit_of_work() as session:
            await admin.set_rate(session, base=data.base, currency=data.currency, rate=data.rate, as_of=data.as_of,
                                 source="backoffice")
            await accounts.record(session, actor=who.actor, area="rates", action="rate set",
                                  subject=f"{data.base}/{data.currency}",
                                  details={"rate": str(data.rate), "as_of": data.as_of.isoformat()})
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        error.extra.setdefault("field", "currency" if error.code == "unknown_currency" else "rate")
        return await _rates_page(request, who, error=field_error(error), form=form, status=error.status)
    return redirect("/backoffice/rates", notice=f"{data.base}/{data.currency} set to {data.rate}.")

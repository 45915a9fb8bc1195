"""Back office screens that run the shop: catalog (products with en/zh texts side by side, variants, prices checked
against the currency's decimals, an image upload), stock per warehouse (adjust, stock take, history, the channel
pushes it queued) and orders (filtered list, detail with the landed-cost breakdown). They call the same commerce
services as the REST API, so a form refuses what the API refuses, naming the field."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import accounts
from api.deps import get_database, get_settings_dep
from api.http.merchant.backoffice import (
    PAGE_SIZE,
    Editor,
    PageRoute,
    Staff,
    Viewer,
    field_error,
    form_dict,
    invalid,
    money,
    redirect,
    render,
)
from api.http.merchant.backoffice_orders import payment_context
from api.http.merchant.backoffice_search import ranking
from api.models import AuditEvent
from commerce.catalog import service as catalog
from commerce.catalog import variants
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.inventory import service as inventory
from commerce.inventory.schemas import StockLevelOut
from commerce.money import minor_units, quantize
from commerce.orders import service as orders
from commerce.orders.schemas import STATUSES, TRANSITIONS
from commerce.payments import service as payments
from commerce.payments.providers import provider_for
from kit.errors import InvalidInput, ShopTalkError
from kit.outbox import OutboxEvent

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LANGUAGES = ("en", "zh")
STOCK_PUSH_TOPIC = "channel.stock_push"
# The product form's body may hold an image: the image limit plus room for the text fields, so an image over the
# limit reaches the route and is refused there, naming the limit (a much larger body gets the middleware's 413).
UPLOAD_LIMITS = dict.fromkeys(("/backoffice/catalog/new", "/backoffice/catalog/edit"),
                              accounts.MAX_IMAGE_BYTES + 256 * 1024)


# --------------------------------------------------------------------------------------------- catalog

@router.get("/backoffice/catalog")
async def products(request: Request, who: Viewer, category: str | None = None,
                   cursor: str | None = None) -> HTMLResponse:
    who.require("catalog")
    async with get_database(request).sessions() as session:
        rows, next_cursor = await catalog.list_products(session, limit=PAGE_SIZE, cursor=cursor,
                                                        category=category or None)
        available = await inventory.available_stock(session, skus=[v.sku for p in rows for v in p.variants])
        categories = await catalog.categories(session)
        items = [catalog.product_out(p, available) for p in rows]
    return render(request, "catalog.html", {"products": items, "categories": categories, "category": category,
                                            "next_cursor": next_cursor, "cursor": cursor,
                                            "notice": request.query_params.get("notice")}, who=who)


async def _new_form(request: Request, who: Staff, *, form: dict[str, Any], error: dict[str, Any] | None = None,
                    status: int = 200) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        categories = await catalog.categories(session)
    return render(request, "product_new.html", {"categories": categories, "form": form, "error": error,
                                                "max_mb": accounts.MAX_IMAGE_BYTES // 1_048_576}, status=status,
                  who=who)


@router.get("/backoffice/catalog/new")
async def new_product(request: Request, who: Viewer) -> HTMLResponse:
    who.require("catalog")
    return await _new_form(request, who, form={"currency": "EUR", "weight_grams": "500"})


def parse_options(text: str, *, field: str, where: str = "") -> dict[str, str]:
    """Option values as typed: `size=M, colour=red` (a Chinese comma works too)."""
    attributes: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.replace("，", ",").split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidInput(f"{where}options are name=value, separated by commas ({pair!r}).",
                               code="invalid_variant", field=field)
        attributes[name.strip()] = value.strip()
    return attributes


def _variants(text: str, currency: str) -> list[dict[str, Any]]:
    """Variant lines as typed: `SKU | size=M, colour=red | 19.90` (options and price optional)."""
    variants = []
    for number, line in enumerate((raw for raw in text.splitlines() if raw.strip()), start=1):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 3:
            raise InvalidInput(f"Line {number}: write SKU | options | price.", code="invalid_variant",
                               field="variants")
        attributes = parse_options(parts[1] if len(parts) > 1 else "", field="variants", where=f"Line {number}: ")
        price = None
        if len(parts) > 2 and parts[2]:
            try:
                price = accounts.parse_price(parts[2], currency, field="variants")
            except ShopTalkError as error:
                error.detail = f"Line {number}: {error.detail}"
                raise
        variants.append({"sku": parts[0], "attributes": attributes, "price": price})
    if not variants:
        raise InvalidInput("Add at least one variant (its SKU).", code="missing_variant", field="variants")
    return variants


_FIELD_OF = {"title": "title_en", "description": "description_en", "sellable_countries": "sellable_countries"}


def _validation_field(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    field = _FIELD_OF.get(loc[0], loc[0]) if loc else "form"
    where = f"line {int(loc[1]) + 1}: " if loc and loc[0] == "variants" and len(loc) > 1 else ""
    return field, f"{where}{first.get('msg', 'invalid')}"


@router.post("/backoffice/catalog/new")
async def create_product(request: Request, who: Editor, image: UploadFile | None = None) -> Response:
    who.require("catalog")
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        form_dict(raw)  # multipart bodies skip the middleware's NUL check (files hold NUL bytes): refused here
        currency = form.get("currency", "").strip().upper()
        base_price = accounts.parse_price(form.get("base_price", ""), currency, field="base_price")
        variants = _variants(form.get("variants", ""), currency)
        title = {lang: form.get(f"title_{lang}", "").strip() for lang in LANGUAGES if form.get(f"title_{lang}",
                                                                                               "").strip()}
        if "en" not in title:
            raise InvalidInput("A product needs an English title.", code="missing_title", field="title_en")
        description = {lang: form.get(f"description_{lang}", "").strip() for lang in LANGUAGES
                       if form.get(f"description_{lang}", "").strip()}
        try:
            data = ProductIn.model_validate({
                "slug": form.get("slug", ""), "category": form.get("category", ""), "title": title,
                "description": description, "brand": form.get("brand") or None,
                "base_price": base_price, "currency": currency, "weight_grams": form.get("weight_grams") or 500,
                "sellable_countries": [c.strip() for c in form.get("sellable_countries", "").split(",") if c.strip()],
                "variants": variants})
        except ValidationError as error:
            field, message = _validation_field(error)
            raise InvalidInput(message, code="invalid_product", field=field) from None
        upload = await image.read(accounts.MAX_IMAGE_BYTES + 1) if image is not None and image.filename else b""
        async with get_database(request).unit_of_work() as session:
            if upload:
                stored = await accounts.store_image(session, data=upload, by=who.actor)
                data = data.model_copy(update={"image_url": accounts.image_url(stored)})
            product = await catalog.create_product(session, data=data)
            await accounts.record(session, actor=who.actor, area="catalog", action="product created",
                                  subject=f"{product.slug} (#{product.id})",
                                  details={"languages": sorted(title), "variants": len(variants)})
            await accounts.record(session, actor=who.actor, area="price", action="price set",
                                  subject=product.slug, details={"base_price": f"{base_price} {currency}"})
            product_id = product.id
    except ShopTalkError as error:
        if "field" not in error.extra:
            error.extra["field"] = {"duplicate_slug": "slug", "duplicate_sku": "variants",
                                    "category_not_found": "category", "unknown_currency": "currency"}.get(error.code)
        return await _new_form(request, who, form=form, error=field_error(error), status=error.status)
    return redirect(f"/backoffice/catalog/{product_id}", notice="Product created.")


async def _product_page(request: Request, who: Staff, product_id: int, *, status: int = 200,
                        error: dict[str, Any] | None = None, form: dict[str, str] | None = None,
                        variant_error: dict[str, Any] | None = None,
                        variant_form: dict[str, str] | None = None) -> HTMLResponse:
    rank = request.query_params.get("rank", "")[:200]
    country = request.query_params.get("country", "").strip().upper()[:2] or None
    async with get_database(request).sessions() as session:
        item = await catalog.get_product(session, product_id=product_id)
        skus = [v.sku for v in item.variants]
        out = catalog.product_out(item, await inventory.available_stock(session, skus=skus))
        levels = await inventory.stock_levels(session, skus=skus)
        ranked = await ranking(session, rank, country=country, limit=20) if rank.strip() else []
    if form is None:
        form = {f"{field}_{lang}": getattr(out, field).get(lang, "") for field in ("title", "description")
                for lang in LANGUAGES}
        form["base_price"] = f"{quantize(out.base_price, out.currency)}"
    return render(request, "product.html", {
        "product": out, "levels": levels, "languages": LANGUAGES, "form": form, "error": error,
        "max_mb": accounts.MAX_IMAGE_BYTES // 1_048_576, "notice": request.query_params.get("notice"),
        "verror": variant_error, "vform": variant_form or {}, "rank": rank, "country": country or "",
        "ranked": ranked, "place": next((r["place"] for r in ranked if r["product_id"] == out.id), None),
        "decimals": minor_units(out.currency)}, status=status, who=who)


@router.get("/backoffice/catalog/{product_id}")
async def product(request: Request, who: Viewer, product_id: int) -> HTMLResponse:
    who.require("catalog")
    return await _product_page(request, who, product_id)


@router.post("/backoffice/catalog/edit")
async def edit_product(request: Request, who: Editor, image: UploadFile | None = None) -> Response:
    """Save the texts side by side (en, zh), the base price (checked against the currency) and a new image."""
    who.require("catalog")
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    product_id = int(form.get("product_id", "0")) if form.get("product_id", "").isdigit() else 0
    try:
        form_dict(raw)
        upload = await image.read(accounts.MAX_IMAGE_BYTES + 1) if image is not None and image.filename else b""
        async with get_database(request).unit_of_work() as session:
            current = await catalog.get_product(session, product_id=product_id)
            price = accounts.parse_price(form.get("base_price", ""), current.currency, field="base_price")
            if price != current.base_price:
                who.require("prices")
            title = {lang: form.get(f"title_{lang}", "") for lang in LANGUAGES}
            if not title["en"].strip():
                raise InvalidInput("A product needs an English title.", code="missing_title", field="title_en")
            description = {lang: form.get(f"description_{lang}", "") for lang in LANGUAGES}
            before = {"title": dict(current.title), "description": dict(current.description),
                      "price": f"{quantize(current.base_price, current.currency)} {current.currency}"}
            image_url = None
            if upload:
                image_url = accounts.image_url(await accounts.store_image(session, data=upload, by=who.actor))
            updated = await catalog.update_product(session, product_id=product_id, title=title,
                                                   description=description, base_price=price, image_url=image_url)
            changed = [k for k in ("title", "description") if before[k] != getattr(updated, k)]
            if changed or image_url:
                await accounts.record(session, actor=who.actor, area="catalog", action="product edited",
                                      subject=f"{updated.slug} (#{updated.id})",
                                      details={"changed": changed + (["image"] if image_url else [])})
            after_price = f"{quantize(updated.base_price, updated.currency)} {updated.currency}"
            if before["price"] != after_price:
                await accounts.record(session, actor=who.actor, area="price", action="price changed",
                                      subject=updated.slug, details={"before": before["price"], "after": after_price})
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        return await _product_page(request, who, product_id, status=error.status, error=field_error(error),
                                   form=form)
    return redirect(f"/backoffice/catalog/{product_id}", notice="Saved.")


def _options_text(attributes: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in attributes.items())


async def _variant_change(request: Request, who: Staff, product_id: int, *, target: str,
                          change: Callable[[AsyncSession, Any], Awaitable[str]]) -> Response:
    """Run one variant change (it returns the notice) in a unit of work; a refused one re-renders the product page
    with the variant form's error and what was typed."""
    form = form_dict(await request.form())
    try:
        async with get_database(request).unit_of_work() as session:
            current = await catalog.get_product(session, product_id=product_id)
            notice = await change(session, (current, form))
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        prefix = f"{target}-"
        error.extra["field"] = prefix + {"duplicate_sku": "sku", "duplicate_options": "options",
                                         "invalid_variant": "options"}.get(error.code,
                                                                           str(error.extra.get("field") or "price"))
        return await _product_page(request, who, product_id, status=error.status, variant_error=field_error(error),
                                   variant_form={**form, "target": target})
    return redirect(f"/backoffice/catalog/{product_id}", notice=notice)


@router.post("/backoffice/catalog/{product_id}/variants")
async def add_variant(request: Request, who: Editor, product_id: int) -> Response:
    """A new variant: its SKU (unique in the catalog), option values and price (the currency's decimals), checked by
    the API's VariantIn."""
    who.require("catalog")

    async def change(session: AsyncSession, given: Any) -> str:
        product, form = given
        price_text = form.get("price", "").strip()
        if price_text:
            who.require("prices")
        price = accounts.parse_price(price_text, product.currency, field="price") if price_text else None
        attributes = parse_options(form.get("options", ""), field="options")
        try:
            data = VariantIn.model_validate({"sku": form.get("sku", ""), "attributes": attributes, "price": price})
        except ValidationError as error:
            raise invalid(error, field_of=lambda loc: {"attributes": "options"}.get(loc[0], loc[0])) from None
        variant = await variants.add_variant(session, product_id=product.id, data=data)
        await accounts.record(session, actor=who.actor, area="catalog", action="variant added",
                              subject=f"{product.slug} (#{product.id})",
                              details={"sku": variant.sku, "options": _options_text(attributes),
                                       "price": f"{price} {product.currency}" if price else "base price"})
        return f"Variant {variant.sku} added."

    return await _variant_change(request, who, product_id, target="new", change=change)


@router.post("/backoffice/catalog/{product_id}/variants/{variant_id}")
async def edit_variant(request: Request, who: Editor, product_id: int, variant_id: int) -> Response:
    """Change a variant's option values and its own price (empty: the product's base price)."""
    who.require("catalog")

    async def change(session: AsyncSession, given: Any) -> str:
        product, form = given
        variant = next((v for v in product.variants if v.id == variant_id), None)
        if variant is None:
            raise variants.VariantNotFound(f"Product {product.slug} has no variant {variant_id}.")
        price_text = form.get("price", "").strip()
        price = accounts.parse_price(price_text, product.currency, field="price") if price_text else None
        if price != variant.price:
            who.require("prices")
        attributes = parse_options(form.get("options", ""), field="options")
        before = {"options": _options_text(variant.attributes), "price": str(variant.price or "base price")}
        updated = await variants.update_variant(session, product_id=product.id, variant_id=variant_id,
                                                attributes=attributes, price=price)
        after = {"options": _options_text(updated.attributes), "price": str(updated.price or "base price")}
        if before["options"] != after["options"]:
            await accounts.record(session, actor=who.actor, area="catalog", action="variant edited",
                                  subject=updated.sku, details={"before": before["options"],
                                                               "after": after["options"]})
        if before["price"] != after["price"]:
            await accounts.record(session, actor=who.actor, area="price", action="variant price changed",
                                  subject=updated.sku, details={"before": before["price"], "after": after["price"],
                                                               "currency": product.currency})
        return f"Variant {updated.sku} saved."

    return await _variant_change(request, who, product_id, target=f"v{variant_id}", change=change)


@router.post("/backoffice/catalog/{product_id}/variants/{variant_id}/remove")
async def remove_variant(request: Request, who: Editor, product_id: int, variant_id: int) -> Response:
    who.require("catalog")

    async def change(session: AsyncSession, given: Any) -> str:
        product, _ = given
        sku = await variants.remove_variant(session, product_id=product.id, variant_id=variant_id)
        await accounts.record(session, actor=who.actor, area="catalog", action="variant removed",
                              subject=f"{product.slug} (#{product.id})", details={"sku": sku})
        return f"Variant {sku} removed."

    return await _variant_change(request, who, product_id, target=f"v{variant_id}", change=change)


# ----------------------------------------------------------------------------------------------- stock

async def _pushes(session: AsyncSession, sku: str) -> list[OutboxEvent]:
    """The channel stock pushes queued for a SKU (coalesce key `channel:sku`), newest first."""
    return list((await session.scalars(
        select(OutboxEvent).where(OutboxEvent.topic == STOCK_PUSH_TOPIC,
                                  OutboxEvent.coalesce_key.like(f"%:{sku}"))
        .order_by(OutboxEvent.id.desc()).limit(10))).all())


async def _stock_page(request: Request, who: Staff, sku: str | None, *, status: int = 200,
                      error: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> HTMLResponse:
    sku = (sku or "").strip() or None
    async with get_database(request).sessions() as session:
        locations = await inventory.locations(session)
        levels: list[StockLevelOut] = []
        history: Sequence[AuditEvent] = []
        pushes: list[OutboxEvent] = []
        if sku:
            await catalog.get_variants(session, skus=[sku])
            levels = await inventory.stock_levels(session, skus=[sku])
            _, history = await accounts.audit_events(session, area="stock", subject=sku, limit=20)
            pushes = await _pushes(session, sku)
    return render(request, "stock.html", {"sku": sku, "levels": levels, "locations": locations, "history": history,
                                          "pushes": pushes, "error": error, "form": form or {},
                                          "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/stock")
async def stock(request: Request, who: Viewer, sku: str | None = None) -> HTMLResponse:
    who.require("stock")
    return await _stock_page(request, who, sku)


@router.post("/backoffice/stock/adjust")
async def adjust(request: Request, who: Editor, sku: Annotated[str, Form(max_length=64)],
                 location: Annotated[str, Form(max_length=40)], mode: Annotated[str, Form(max_length=10)],
                 quantity: Annotated[str, Form(max_length=12)],
                 reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    """`mode` add/remove (a delta) or count (a stock take: the quantity on hand)."""
    who.require("stock")
    try:
        if not quantity.strip().isdigit():
            raise InvalidInput("Enter a whole number of units.", code="invalid_quantity", field="quantity")
        units = int(quantity)
        async with get_database(request).unit_of_work() as session:
            before = {lvl.location: lvl.on_hand for lvl in await inventory.stock_levels(session, skus=[sku])}
            if mode == "count":
                level = await inventory.set_stock(session, sku=sku, location=location, on_hand=units)
            elif mode in ("add", "remove"):
                level = await inventory.adjust_stock(session, sku=sku, location=location,
                                                     delta=units if mode == "add" else -units)
            else:
                raise InvalidInput("Choose add, remove or count.", code="invalid_mode", field="mode")
            await accounts.record(session, actor=who.actor, area="stock",
                                  action="stock take" if mode == "count" else f"stock {mode}", subject=sku,
                                  details={"location": location, "before": before.get(location, 0),
                                           "after": level.on_hand, "reason": reason.strip()})
    except ShopTalkError as error:
        if "field" not in error.extra:
            error.extra["field"] = "quantity"
        return await _stock_page(request, who, sku, status=error.status, error=field_error(error),
                                 form={"location": location, "mode": mode, "quantity": quantity, "reason": reason})
    return redirect(f"/backoffice/stock?sku={sku}", notice=f"{sku} at {location}: {level.on_hand} on hand.")


# ---------------------------------------------------------------------------------------------- orders

@router.get("/backoffice/orders")
async def order_list(request: Request, who: Viewer, status: str | None = None, after_id: int = 0) -> HTMLResponse:
    who.require("orders")
    status = status if status in STATUSES else None
    async with get_database(request).sessions() as session:
        rows = await orders.list_orders(session, status=status, after_id=max(0, after_id), limit=PAGE_SIZE + 1)
    return render(request, "orders.html", {"orders": rows[:PAGE_SIZE], "statuses": STATUSES, "status": status,
                                           "next_after": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None},
                  who=who)


# Refunds move money: they are the payments part's (issue 23), not a bare status change from here.
MANUAL_STATUSES = ("paid", "packed", "shipped", "delivered", "cancelled", "return_requested")


async def _order_page(request: Request, who: Staff, order_id: int, *, status: int = 200,
                      error: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        order = await orders.get_order(session, order_id=order_id)
        money = await payment_context(session, order)
    moves = [s for s in MANUAL_STATUSES if s in TRANSITIONS[order.status]]
    return render(request, "order.html", {"order": order, "moves": moves, "error": error, "form": form or {},
                                          "notice": request.query_params.get("notice"), **money},
                  status=status, who=who)


@router.get("/backoffice/orders/{order_id}")
async def order_detail(request: Request, who: Viewer, order_id: int) -> HTMLResponse:
    who.require("orders")
    return await _order_page(request, who, order_id)


@router.post("/backoffice/orders/{order_id}/status")
async def order_status(request: Request, who: Editor, order_id: int, to_status: Annotated[str, Form(max_length=20)],
                       note: Annotated[str, Form(max_length=500)] = "",
                       carrier: Annotated[str, Form(max_length=60)] = "",
                       tracking_number: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Move the order along its lifecycle (the same service and rules as POST /api/v1/orders/{id}/transitions)."""
    who.require("orders")
    try:
        if to_status not in MANUAL_STATUSES:
            raise InvalidInput("Choose one of the offered steps.", code="invalid_status", field="to_status")
        async with get_database(request).unit_of_work() as session:
            details: dict[str, str] = {"note": note.strip()}
            if to_status == "cancelled":  # a paid order is refunded through its provider (or the refund is owed)
                settings = get_settings_dep(request)
                order, refunded, now = await payments.cancel_order(
                    session, order_id=order_id, note=note.strip() or None, actor=who.actor,
                    providers=lambda name: provider_for(name, settings.payments))
                if refunded is not None:
                    details.update(refund=money(refunded.amount, refunded.currency), refund_status=refunded.status)
            else:
                now = True
                order = await orders.transition_order(session, order_id=order_id, to_status=to_status,
                                                      note=note.strip() or None, carrier=carrier.strip() or None,
                                                      tracking_number=tracking_number.strip() or None)
            if now:  # a second cancel (double submit) changed nothing: audited once
                await accounts.record(session, actor=who.actor, area="orders", action=f"order {to_status}",
                                      subject=f"order #{order.number}", details=details)
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        if "field" not in error.extra:
            error.extra["field"] = "tracking_number" if error.code == "tracking_required" else "to_status"
        return await _order_page(request, who, order_id, status=error.status, error=field_error(error),
                                 form={"to_status": to_status, "note": note, "carrier": carrier,
                                       "tracking_number": tracking_number})
    return redirect(f"/backoffice/orders/{order_id}", notice=f"Order #{order.number} is {to_status} now.")

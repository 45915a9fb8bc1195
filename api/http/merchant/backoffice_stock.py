"""Back office multi-SKU stock take: count many SKUs of one warehouse at once (typed lines or a CSV upload), see a
preview of the differences against what the system holds, then apply the whole count in one transaction. Each line
is checked by the API's StockSetIn (as PUT /api/v1/stock/levels) and applied by `inventory.set_stock`, which queues
the channel stock pushes in the same transaction; each changed SKU gets its audit event. A count whose SKU moved
between the preview and the apply is refused whole (nothing applied), so no one counts over a sale unseen."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import or_, select

from api import accounts
from api.deps import get_database
from api.http.merchant.backoffice import Editor, PageRoute, Staff, Viewer, field_error, form_dict, render
from api.http.merchant.backoffice_shop import STOCK_PUSH_TOPIC
from commerce.catalog import service as catalog
from commerce.inventory import service as inventory
from commerce.inventory.schemas import StockSetIn
from kit.errors import Conflict, InvalidInput, ShopTalkError
from kit.outbox import OutboxEvent

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAX_LINES = 2000
MAX_CSV_BYTES = 512 * 1024
UPLOAD_LIMITS = {"/backoffice/stock/take/preview": MAX_CSV_BYTES + 64 * 1024}


@dataclass(frozen=True)
class Counted:
    sku: str
    counted: int
    on_hand: int  # what the system held when the line was checked
    reserved: int

    @property
    def difference(self) -> int:
        return self.counted - self.on_hand


def parse_count(text: str) -> list[tuple[str, str]]:
    """`SKU, counted` per line (comma, semicolon, tab or spaces); a CSV header row (sku,...) is skipped."""
    rows: list[tuple[str, str]] = []
    sample = text[:2000]
    delimiter = next((d for d in (",", ";", "\t") if d in sample), None)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter) if delimiter else \
        (line.split() for line in text.splitlines())
    for number, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells if c.strip()]
        if not cells:
            continue
        if number == 1 and cells[0].lower() in ("sku", "skus"):
            continue
        if len(cells) != 2:
            raise InvalidInput(f"Line {number}: write the SKU and the units counted ({', '.join(cells)[:80]}).",
                               code="invalid_count_line", field="lines")
        rows.append((cells[0], cells[1]))
        if len(rows) > MAX_LINES:
            raise InvalidInput(f"At most {MAX_LINES} SKUs in one stock take.", code="too_many_lines", field="lines")
    if not rows:
        raise InvalidInput("Enter at least one SKU with its count.", code="empty_count", field="lines")
    return rows


async def check_count(request: Request, *, location: str, rows: list[tuple[str, str]]) -> list[Counted]:
    """Each line as the API's StockSetIn; unknown SKUs and SKUs counted twice are named; the current levels read."""
    checked: list[StockSetIn] = []
    seen: set[str] = set()
    for number, (sku, units) in enumerate(rows, start=1):
        try:
            line = StockSetIn.model_validate({"sku": sku, "location": location, "on_hand": units})
        except ValidationError as error:
            first = error.errors()[0]
            what = "the count" if first["loc"][0] == "on_hand" else str(first["loc"][0])
            raise InvalidInput(f"Line {number} ({sku[:64]}): {what}: {first['msg']}.", code="invalid_count_line",
                               field="lines") from None
        if line.sku in seen:
            raise InvalidInput(f"{line.sku} is counted twice; add the counts up into one line.",
                               code="duplicate_sku", field="lines")
        seen.add(line.sku)
        checked.append(line)
    async with get_database(request).sessions() as session:
        if location not in {loc.code for loc in await inventory.locations(session)}:
            raise InvalidInput(f"No warehouse {location!r}.", code="unknown_location", field="location")
        known = await catalog.find_variants(session, skus=[c.sku for c in checked])
        unknown = [c.sku for c in checked if c.sku not in known]
        if unknown:
            raise InvalidInput(f"Unknown SKU{'s' if len(unknown) > 1 else ''}: {', '.join(unknown[:20])}.",
                               code="unknown_sku", field="lines")
        levels = {lvl.sku: lvl for lvl in await inventory.stock_levels(session, skus=list(seen))
                  if lvl.location == location}
    return [Counted(c.sku, c.on_hand, levels[c.sku].on_hand if c.sku in levels else 0,
                    levels[c.sku].reserved if c.sku in levels else 0) for c in checked]


async def _page(request: Request, who: Staff, *, form: dict[str, str], preview: list[Counted] | None = None,
                error: dict[str, Any] | None = None, status: int = 200, applied: list[str] | None = None,
                pushes: list[OutboxEvent] | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        locations = await inventory.locations(session)
    return render(request, "stock_take.html", {
        "locations": locations, "form": form, "preview": preview, "error": error, "applied": applied,
        "pushes": pushes or [], "changes": [c for c in preview or [] if c.difference],
        "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/stock/take")
async def stock_take(request: Request, who: Viewer) -> HTMLResponse:
    who.require("stock")
    return await _page(request, who, form={})


@router.post("/backoffice/stock/take/preview")
async def preview(request: Request, who: Editor, file: UploadFile | None = None) -> Response:
    who.require("stock")
    raw = await request.form()
    form = form_dict(raw)
    try:
        text = form.get("lines", "")
        if file is not None and file.filename:
            data = await file.read(MAX_CSV_BYTES + 1)
            if len(data) > MAX_CSV_BYTES:
                raise InvalidInput(f"The file is over {MAX_CSV_BYTES // 1024} KB.", code="file_too_large",
                                   field="file")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput("The file is not UTF-8 text (a CSV: sku,counted).", code="not_csv",
                                   field="file") from None
            if "\x00" in text:
                raise InvalidInput("The file is not a CSV (it holds NUL bytes).", code="not_csv", field="file")
            form["lines"] = text
        counted = await check_count(request, location=form.get("location", ""), rows=parse_count(text))
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        return await _page(request, who, form=form, error=field_error(error), status=error.status)
    return await _page(request, who, form=form, preview=counted)


@router.post("/backoffice/stock/take/apply")
async def apply(request: Request, who: Editor) -> Response:
    """Apply a previewed count in one transaction: every line or none."""
    who.require("stock")
    form = form_dict(await request.form())
    location = form.get("location", "")
    reason = form.get("reason", "").strip()[:200] or "stock take"
    try:
        rows = parse_count(form.get("lines", ""))
        expected = dict(line.split("=", 1) for line in form.get("expected", "").split() if "=" in line)
        counted = await check_count(request, location=location, rows=rows)
        changed: list[str] = []
        async with get_database(request).unit_of_work() as session:
            levels = {lvl.sku: lvl.on_hand for lvl in await inventory.stock_levels(session,
                                                                                   skus=[c.sku for c in counted])
                      if lvl.location == location}
            moved = [c.sku for c in counted if str(levels.get(c.sku, 0)) != expected.get(c.sku)]
            if moved:
                raise Conflict(f"Stock of {', '.join(moved[:10])} changed since the preview (a sale or another "
                               "count); nothing was applied. Check the new preview and apply again.",
                               code="stock_moved", field="lines")
            for c in counted:
                if c.counted == levels.get(c.sku, 0):
                    continue
                await inventory.set_stock(session, sku=c.sku, location=location, on_hand=c.counted)
                await accounts.record(session, actor=who.actor, area="stock", action="stock take", subject=c.sku,
                                      details={"location": location, "before": levels.get(c.sku, 0),
                                               "after": c.counted, "reason": reason})
                changed.append(c.sku)
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        fresh: list[Counted] | None = None
        if error.code in ("stock_moved", "stock_below_reserved"):
            fresh = await check_count(request, location=location, rows=parse_count(form.get("lines", "")))
        if "field" not in error.extra:
            error.extra["field"] = "lines"
        return await _page(request, who, form=form, preview=fresh, error=field_error(error), status=error.status)
    pushes: list[OutboxEvent] = []
    if changed:
        async with get_database(request).sessions() as session:
            pushes = list((await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == STOCK_PUSH_TOPIC, OutboxEvent.status == "pending",
                                          or_(*[OutboxEvent.coalesce_key.like(f"%:{sku}") for sku in changed[:100]]))
                .order_by(OutboxEvent.id.desc()).limit(200))).all())
    return await _page(request, who, form={"location": location}, applied=changed, pushes=pushes)

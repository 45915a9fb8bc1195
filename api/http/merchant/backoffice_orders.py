"""Back office order actions that move money (issue 23): refund (full, partial, per line, by the destination's return
policy; an override needs a supervisor or the owner and a reason), mark an offline payment received with its
reference, cancel. The order page (backoffice_shop.py) shows the payment state these act on (`payment_context`).
Each action is permission-checked (api/accounts.py PERMISSIONS) and audited, and calls the same services as the
REST API, so a form refuses what the API refuses, naming the field."""
from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import accounts
from api.deps import get_database, get_settings_dep
from api.errors import reader_locale
from api.http.merchant.backoffice import Editor, PageRoute, field_error, money, redirect
from commerce.orders import service as orders
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.errors import OverrideNotAllowed
from commerce.payments.providers import provider_for
from commerce.payments.schemas import OFFLINE, RefundLineIn
from kit.errors import InvalidInput, Message, ShopTalkError

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def payment_context(session: AsyncSession, order: Order) -> dict[str, Any]:
    """What the order page shows of the money: each payment, the refunds, what each line may still refund, and
    a fresh idempotency key for the refund form (a double submit refunds once)."""
    _, paid, refunds = await payments.payment_state(session, order_id=order.id)
    returned: dict[int, int] = {}
    for refund in refunds:
        for line in refund.lines or []:
            returned[int(line["line_id"])] = returned.get(int(line["line_id"]), 0) + int(line["quantity"])
    succeeded = [p for p in paid if p.status == "succeeded"]
    offline = [p for p in paid if p.provider in OFFLINE and p.status in ("pending", "creating")]
    return {"payments": paid, "refunds": refunds,
            "refundable": {line.id: line.quantity - returned.get(line.id, 0) for line in order.lines},
            "left_to_refund": sum((p.amount - p.amount_refunded for p in succeeded), Decimal(0)),
            "can_refund": bool(succeeded) and order.status in payments.REFUNDABLE,
            "offline_pending": offline[-1] if offline and order.status == "pending_payment" else None,
            "refund_key": secrets.token_urlsafe(12)}


def _amount(text: str) -> Decimal | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value <= 0:
        raise InvalidInput("Give the amount as a positive number, e.g. 12.50, or leave it empty.",
                           code="invalid_amount", field="amount")
    return value


@router.post("/backoffice/orders/{order_id}/refund")
async def order_refund(request: Request, who: Editor, order_id: int,
                       idempotency_key: Annotated[str, Form(min_length=1, max_length=120)],
                       amount: Annotated[str, Form(max_length=30)] = "",
                       reason: Annotated[str, Form(max_length=300)] = "",
                       override_reason: Annotated[str, Form(max_length=300)] = "",
                       restock: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Refund the lines (qty_<line id> fields) or an amount; nothing filled in: everything that is left."""
    from api.http.merchant.backoffice_shop import _order_page  # the page lives with the other order screens

    who.require("refunds")
    form = await request.form()
    values = {"amount": amount, "reason": reason, "override_reason": override_reason, "restock": restock}
    try:
        if override_reason.strip() and not who.may("refund_override"):
            raise OverrideNotAllowed("Only a supervisor or the owner can refund outside the return policy.",
                                     message=Message("error.refund_override_not_allowed"),
                                     field="override_reason")
        lines: list[RefundLineIn] = []
        for name, raw in form.multi_items():
            if name.startswith("qty_") and isinstance(raw, str) and raw.strip() not in ("", "0"):
                values[name] = raw
                if not name[4:].isdigit() or not raw.strip().isdigit():
                    raise InvalidInput("Give each quantity as a whole number.", code="invalid_quantity",
                                       field="lines")
                lines.append(RefundLineIn(line_id=int(name[4:]), quantity=int(raw.strip())))
        settings = get_settings_dep(request)
        async with get_database(request).unit_of_work() as session:
            _, paid, _ = await payments.payment_state(session, order_id=order_id)
            succeeded = [p for p in paid if p.status == "succeeded"]
            provider = provider_for(succeeded[-1].provider if succeeded else "stripe", settings.payments)
            row, created = await payments.refund(session, order_id=order_id, provider=provider,
                                        idempotency_key=idempotency_key, amount=_amount(amount), lines=lines,
                                        reason=reason.strip() or None, restock=bool(restock),
                                        override_reason=override_reason.strip() or None,
                                        may_override=who.may("refund_override"), actor=who.actor)
            order = await orders.get_order(session, order_id=order_id)
            if created:  # a double submit returns the first refund: audited once
                await accounts.record(session, actor=who.actor, area="orders", action="order refund",
                                      subject=f"order #{order.number}",
                                      details={"amount": str(row.amount), "currency": row.currency,
                                               "reason": row.reason or "", "override": row.override_reason or "",
                                               "lines": row.lines, "restocked": row.restocked})
    except ShopTalkError as error:
        if error.status in (401, 404):
            raise
        if "field" not in error.extra:
            error.extra["field"] = "amount" if error.code == "refund_not_possible" else "refund"
        return await _order_page(request, who, order_id, status=error.status,
                                 error=field_error(error, reader_locale(request)),
                                 form=values)
    return redirect(f"/backoffice/orders/{order_id}",
                    notice=f"Refunded {money(row.amount, row.currency)} on order #{order.number}.")


@router.post("/backoffice/orders/{order_id}/refunds/{refund_id}/sent")
async def order_refund_sent(request: Request, who: Editor, order_id: int, refund_id: int,
                            reference: Annotated[str, Form(max_length=200)] = "") -> Response:
    """An owed refund (a cancelled order paid by Telegram or offline) was sent by hand: done, with its reference."""
    from api.http.merchant.backoffice_shop import _order_page

    who.require("refunds")
    try:
        async with get_database(request).unit_of_work() as session:
            row, changed = await payments.mark_refund_sent(session, order_id=order_id, refund_id=refund_id,
                                                           reference=reference, actor=who.actor)
            order = await orders.get_order(session, order_id=order_id)
            if changed:  # a double submit: audited once
                await accounts.record(session, actor=who.actor, area="orders", action="refund sent",
                                      subject=f"order #{order.number}",
                                      details={"amount": str(row.amount), "currency": row.currency,
                                               "reference": reference.strip()})
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra["field"] = "refund_sent"
        return await _order_page(request, who, order_id, status=error.status,
                                 error=field_error(error, reader_locale(request)),
                                 form={"reference": reference})
    return redirect(f"/backoffice/orders/{order_id}",
                    notice=f"Refund of {money(row.amount, row.currency)} on order #{order.number} marked sent.")


@router.post("/backoffice/orders/{order_id}/offline-received")
async def order_offline_received(request: Request, who: Editor, order_id: int,
                                 reference: Annotated[str, Form(max_length=200)] = "") -> Response:
    """The bank transfer (or the carrier's cash) arrived: the order is paid once, with the reference seen."""
    from api.http.merchant.backoffice_shop import _order_page

    who.require("orders")
    settings = get_settings_dep(request)
    try:
        async with get_database(request).unit_of_work() as session:
            _, paid, _ = await payments.payment_state(session, order_id=order_id)
            offline = [p for p in paid if p.provider in OFFLINE]
            if not offline:
                raise InvalidInput("This order has no bank transfer or cash on delivery payment.",
                                   code="no_offline_payment", field="reference")
            outcome = await payments.mark_offline_received(
                session, order_id=order_id, provider=provider_for(offline[-1].provider, settings.payments),
                reference=reference, actor=who.actor)
            order = await orders.get_order(session, order_id=order_id)
            await accounts.record(session, actor=who.actor, area="orders", action="payment received",
                                  subject=f"order #{order.number}",
                                  details={"reference": reference.strip(), "outcome": outcome})
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra.setdefault("field", "reference")
        return await _order_page(request, who, order_id, status=error.status,
                                 error=field_error(error, reader_locale(request)),
                                 form={"reference": reference})
    notice = {"paid": f"Order #{order.number} is paid.", "duplicate": "That payment was already recorded."}
    return redirect(f"/backoffice/orders/{order_id}",
                    notice=notice.get(outcome, f"Recorded, but order #{order.number} needs a look: {outcome}."))

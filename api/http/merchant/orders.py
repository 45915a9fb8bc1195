from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api import accounts
from api.auth import MerchantDep
from api.deps import SessionDep, SettingsDep
from api.params import AfterId, PathId
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderOut, TransitionIn
from commerce.payments import service as payments
from commerce.payments.providers import provider_for
from commerce.payments.schemas import (
    PaymentMethodIn,
    PaymentMethodOut,
    PaymentOut,
    PaymentSettingsIn,
    PaymentSettingsOut,
    PaymentStateOut,
    RefundIn,
    RefundOut,
    RefundSentIn,
)

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
methods_router = APIRouter(prefix="/api/v1/payment-methods", tags=["payments"])


@router.post("", response_model=OrderOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "The order already existed for this (channel, external_id)."}})
async def create_order(data: OrderIn, session: SessionDep, response: Response, _: MerchantDep) -> OrderOut:
    """Create an order and reserve its stock; repeating the same (channel, external_id) returns the first."""
    order, created = await orders.create_order(session, data=data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return OrderOut.model_validate(order)


@router.get("", response_model=list[OrderOut])
async def list_orders(session: SessionDep, _: MerchantDep,
                      order_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
                      after_id: AfterId = 0, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OrderOut]:
    return [OrderOut.model_validate(o) for o in await orders.list_orders(session, status=order_status,
                                                                        after_id=after_id, limit=limit)]


@router.get("/by-ref/{public_ref}", response_model=OrderOut)
async def get_order_by_public_ref(public_ref: Annotated[str, Path(max_length=40)], session: SessionDep,
                                  _: MerchantDep) -> OrderOut:
    """The order a shopper quotes by its public reference (any case, with or without dashes)."""
    return OrderOut.model_validate(await orders.get_order_by_public_ref(session, public_ref=public_ref))


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: PathId, session: SessionDep, _: MerchantDep) -> OrderOut:
    return OrderOut.model_validate(await orders.get_order(session, order_id=order_id))


@router.post("/{order_id}/transitions", response_model=OrderOut)
async def transition(order_id: PathId, data: TransitionIn, session: SessionDep, settings: SettingsDep,
                     who: MerchantDep) -> OrderOut:
    """Move the order along its lifecycle (e.g. mark it paid, shipped with carrier and tracking). Cancelling a
    paid order not yet shipped refunds what is left of its payment through the provider that took it (503
    payment_provider_unavailable: nothing changed, try again; Telegram or offline payments: the refund is owed and
    the order flagged for a person); a second cancel changes nothing."""
    if data.status == "cancelled":
        actor = accounts.token_actor(who.token_id, who.name)
        order, row, now = await payments.cancel_order(
            session, order_id=order_id, note=data.note, actor=actor,
            providers=lambda name: provider_for(name, settings.payments))
        if row is not None and now:  # a second cancel: audited once
            await accounts.record(session, actor=actor, area="orders", action="order cancel refund",
                                  subject=f"order #{order.number}",
                                  details={"amount": str(row.amount), "currency": row.currency,
                                           "status": row.status})
        return OrderOut.model_validate(order)
    order = await orders.transition_order(session, order_id=order_id, to_status=data.status, note=data.note,
                                          carrier=data.carrier, tracking_number=data.tracking_number)
    return OrderOut.model_validate(order)


async def _state(session: SessionDep, order_id: int) -> PaymentStateOut:
    order, paid, refunds = await payments.payment_state(session, order_id=order_id)
    return PaymentStateOut(order_id=order.id, number=order.number, status=order.status, currency=order.currency,
                           total=order.total, due_on_delivery=order.due_on_delivery, amount_paid=order.amount_paid,
                           amount_refunded=order.amount_refunded, attention=order.attention,
                           payments=[PaymentOut.model_validate(p) for p in paid],
                           refunds=[RefundOut.model_validate(r) for r in refunds])


@router.get("/{order_id}/payments", response_model=PaymentStateOut)
async def payment_state(order_id: PathId, session: SessionDep, _: MerchantDep) -> PaymentStateOut:
    """What was charged, paid and refunded, each payment attempt, and why a person must look (attention)."""
    return await _state(session, order_id)


@router.post("/{order_id}/refunds", response_model=PaymentStateOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "Outside the return policy (refund_outside_policy), more than is left "
                                             "(refund_not_possible) or than was bought (refund_quantity)."}})
async def refund(order_id: PathId, data: RefundIn, session: SessionDep, settings: SettingsDep,
                 who: MerchantDep) -> PaymentStateOut:
    """Refund through the provider that took the payment: order lines (priced by the destination's return policy),
    an amount, or (neither) all that is left. After the goods left the shop the destination's return policy
    applies; `override_reason` overrides it (recorded). The same idempotency_key returns the first refund."""
    paid = (await payments.payment_state(session, order_id=order_id))[1]
    succeeded = [p for p in paid if p.status == "succeeded"]
    provider = provider_for(succeeded[-1].provider if succeeded else "stripe", settings.payments)
    actor = accounts.token_actor(who.token_id, who.name)
    row, created = await payments.refund(session, order_id=order_id, provider=provider, amount=data.amount,
                                         lines=data.lines, idempotency_key=data.idempotency_key, reason=data.reason,
                                         restock=data.restock, override_reason=data.override_reason,
                                         may_override=True, actor=actor)
    order = await orders.get_order(session, order_id=order_id)
    if created:  # the same idempotency key again: the first refund, audited once
        await accounts.record(session, actor=actor, area="orders", action="order refund",
                              subject=f"order #{order.number}",
                              details={"amount": str(row.amount), "currency": row.currency,
                                       "reason": data.reason or "", "override": row.override_reason or "",
                                       "lines": row.lines})
    return await _state(session, order_id)


@router.post("/{order_id}/refunds/{refund_id}/sent", response_model=PaymentStateOut,
             responses={409: {"description": "The order has no such refund."}})
async def refund_sent(order_id: PathId, refund_id: PathId, data: RefundSentIn, session: SessionDep,
                      who: MerchantDep) -> PaymentStateOut:
    """An owed refund (a cancelled order paid by Telegram Payments or offline) was sent by hand: it becomes done
    with `reference`, the order's "Refund owed" flag is cleared, the shopper told. Again: nothing changes."""
    actor = accounts.token_actor(who.token_id, who.name)
    row, changed = await payments.mark_refund_sent(session, order_id=order_id, refund_id=refund_id,
                                                   reference=data.reference, actor=actor)
    if changed:
        order = await orders.get_order(session, order_id=order_id)
        await accounts.record(session, actor=actor, area="orders", action="refund sent",
                              subject=f"order #{order.number}",
                              details={"amount": str(row.amount), "currency": row.currency,
                                       "reference": data.reference.strip()})
    return await _state(session, order_id)


@methods_router.get("", response_model=list[PaymentMethodOut])
async def list_payment_methods(session: SessionDep, _: MerchantDep) -> list[PaymentMethodOut]:
    return [PaymentMethodOut.model_validate(m) for m in await payments.list_methods(session)]


@methods_router.put("", response_model=PaymentMethodOut)
async def set_payment_method(data: PaymentMethodIn, session: SessionDep, _: MerchantDep) -> PaymentMethodOut:
    """Offer a provider for a destination country and channel ('*' = any); e.g. Stripe with alipay and
    wechat_pay for CN on telegram."""
    return PaymentMethodOut.model_validate(await payments.set_method(session, data=data))


settings_router = APIRouter(prefix="/api/v1/payment-settings", tags=["payments"])


@settings_router.get("", response_model=PaymentSettingsOut)
async def get_payment_settings(session: SessionDep, settings: SettingsDep, _: MerchantDep) -> PaymentSettingsOut:
    """The shop's payment settings: how long an unpaid order holds its stock (the server default until set)."""
    minutes = await payments.order_expiry_minutes(session, default=settings.payments.order_expiry_minutes)
    return PaymentSettingsOut(order_expiry_minutes=minutes)


@settings_router.put("", response_model=PaymentSettingsOut)
async def set_payment_settings(data: PaymentSettingsIn, session: SessionDep, who: MerchantDep) -> PaymentSettingsOut:
    """Change the order expiry: orders placed from now on hold their stock that long; pending orders placed
    without an expiry of their own follow it too."""
    minutes = await payments.set_order_expiry_minutes(session, minutes=data.order_expiry_minutes)
    await accounts.record(session, actor=accounts.token_actor(who.token_id, who.name), area="orders",
                          action="order expiry", subject="payment settings", details={"minutes": minutes})
    return PaymentSettingsOut(order_expiry_minutes=minutes)

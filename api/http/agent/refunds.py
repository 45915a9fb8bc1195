"""The agent console's refund action (issue 23): a supervisor (or the owner, or staff within the return policy)
refunds an order from the shopper panel through the provider that took the payment; audited, the shopper told."""
from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from api import accounts
from api.deps import get_database, get_settings_dep
from api.http.agent.console import Writer, _agent, _changed
from api.params import PathId
from commerce.orders import service as orders
from commerce.payments import service as payments
from commerce.payments.errors import OverrideNotAllowed
from commerce.payments.providers import provider_for
from commerce.payments.schemas import RefundIn
from kit.errors import Message
from kit.fields import PlainDecimal

router = APIRouter(tags=["agent console"])


class ConsoleRefundOut(BaseModel):
    order_id: int
    number: str
    status: str
    amount: PlainDecimal
    currency: str
    amount_refunded: PlainDecimal
    refund_id: int
    created: bool = Field(description="False: the same idempotency_key was used before; that refund is returned")


@router.post("/api/v1/agent/orders/{order_id}/refunds", response_model=ConsoleRefundOut,
             status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "The role may not refund, or not override the return policy."},
                        409: {"description": "Outside the return policy, or more than is left to refund."}})
async def console_refund(order_id: PathId, data: RefundIn, request: Request, who: Writer) -> ConsoleRefundOut:
    """Refund all (nothing given), an amount, or lines of an order the agent sees in the shopper panel."""
    accounts.require(who.role, "refunds")
    if data.override_reason and not accounts.may(who.role, "refund_override"):
        raise OverrideNotAllowed("Only a supervisor or the owner can refund outside the return policy.",
                                 message=Message("error.refund_override_not_allowed"),
                                 field="override_reason")
    settings = get_settings_dep(request)
    async with get_database(request).unit_of_work() as session:
        agent = await _agent(session, who)
        _, paid, _ = await payments.payment_state(session, order_id=order_id)
        succeeded = [p for p in paid if p.status == "succeeded"]
        provider = provider_for(succeeded[-1].provider if succeeded else "stripe", settings.payments)
        actor = accounts.actor_of(agent)
        row, created = await payments.refund(
            session, order_id=order_id, provider=provider, idempotency_key=data.idempotency_key, amount=data.amount,
            lines=data.lines, reason=data.reason, restock=data.restock, override_reason=data.override_reason,
            may_override=accounts.may(who.role, "refund_override"), actor=actor)
        order = await orders.get_order(session, order_id=order_id)
        if created:
            await accounts.record(session, actor=actor, area="orders", action="order refund",
                                  subject=f"order #{order.number}",
                                  details={"amount": str(row.amount), "currency": row.currency,
                                           "reason": row.reason or "", "override": row.override_reason or "",
                                           "lines": row.lines, "from": "agent console"})
    await _changed(request, who.shop_id)
    return ConsoleRefundOut(order_id=order.id, number=order.number, status=order.status, amount=row.amount,
                            currency=row.currency, amount_refunded=order.amount_refunded, refund_id=row.id,
                            created=created)

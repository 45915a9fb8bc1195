"""Payment rules: one open payment per order and provider (a double "Pay" is one charge), provider events applied
once (replays and out-of-order events change nothing), amounts checked to the minor unit (a mismatch is flagged
for a person, never marked paid), refunds through the provider, unpaid orders expire and give their stock back."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout.schemas import to_minor
from commerce.money import minor_units, quantize
from commerce.orders.errors import OrderNotFound
from commerce.orders.models import Order
from commerce.orders.service import transition_order
from commerce.payments.errors import PaymentNotPossible, RefundNotPossible
from commerce.payments.models import Payment, PaymentEvent, PaymentMethod, PaymentRefund
from commerce.payments.providers import PaymentProvider, verify_stripe_event
from commerce.payments.repository import PaymentRepository
from commerce.payments.schemas import Charge, PaymentMethodIn
from kit.clock import utcnow

REFUNDABLE = frozenset({"paid", "packed", "fulfilled", "shipped", "delivered", "return_requested"})


async def methods_for(session: AsyncSession, *, country: str, channel: str) -> list[PaymentMethod]:
    """The providers the merchant offers for `country` on `channel`, most specific row per provider first."""
    chosen: dict[str, PaymentMethod] = {}
    rows = await PaymentRepository(session).methods(country=country.upper(), channel=channel)
    for row in sorted(rows, key=lambda r: (r.country == "*", r.channel == "*", r.position, r.id)):
        chosen.setdefault(row.provider, row)
    return sorted(chosen.values(), key=lambda r: (r.position, r.id))


async def set_method(session: AsyncSession, *, data: PaymentMethodIn) -> PaymentMethod:
    """Offer (or change) a provider for a country and channel ('*' for any)."""
    repo = PaymentRepository(session)
    row = await repo.method(data.country, data.channel, data.provider)
    if row is None:
        row = PaymentMethod(country=data.country, channel=data.channel, provider=data.provider)
        session.add(row)
    row.method_types, row.position, row.instructions = list(data.method_types), data.position, data.instructions
    await session.flush()
    return row


async def list_methods(session: AsyncSession) -> list[PaymentMethod]:
    return list(await PaymentRepository(session).methods())


def charge_of(order: Order) -> Charge:
    places = minor_units(order.currency)
    amount = quantize(order.total, order.currency)
    return Charge(order_id=order.id, number=order.number, public_ref=order.public_ref, amount=amount,
                  currency=order.currency, amount_minor=to_minor(amount, places))


async def start_payment(session: AsyncSession, *, order_id: int, provider: PaymentProvider,
                        method_types: list[str] | None = None) -> Payment:
    """The open payment of this order with `provider`, created at the provider the first time.

    Pressing "Pay" twice returns the same payment (one charge). PaymentNotPossible when the order is not waiting
    for payment; ProviderUnavailable / ProviderRefused from the provider leave the order pending, nothing saved."""
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    if order.status != "pending_payment":
        raise PaymentNotPossible(f"Order {order.number} is {order.status}.", order_status=order.status)
    payments = await repo.for_order(order.id)
    for payment in payments:
        if payment.provider == provider.name and payment.status == "pending":
            return payment
    charge = charge_of(order)
    # Same key after a crash between the provider's answer and our commit: the provider returns the same payment.
    created = await provider.create(charge=charge, method_types=list(method_types or []),
                                    idempotency_key=f"order-{order.id}-payment-{len(payments) + 1}")
    existing = await repo.by_reference(provider.name, created.reference)
    if existing is not None:
        return existing
    now = utcnow()
    payment = Payment(order_id=order.id, provider=provider.name, reference=created.reference, amount=charge.amount,
                      currency=charge.currency, status="pending", url=created.url, amount_refunded=Decimal(0),
                      created_at=now, updated_at=now)
    session.add(payment)
    await session.flush()
    return payment


async def open_payment(session: AsyncSession, *, order_id: int) -> Payment | None:
    """The pending payment of an order (to send its link again), newest first; None when there is none."""
    pending = [p for p in await PaymentRepository(session).for_order(order_id) if p.status == "pending"]
    return pending[-1] if pending else None


async def payment_by_reference(session: AsyncSession, *, provider: str, reference: str) -> Payment | None:
    return await PaymentRepository(session).by_reference(provider, reference)


async def _seen_once(session: AsyncSession, *, provider: str, event_id: str, kind: str, order_id: int | None,
                     outcome: str, detail: dict[str, Any]) -> bool:
    """Record the event; False when it was already recorded (a replay)."""
    if await PaymentRepository(session).event_seen(provider, event_id):
        return False
    try:
        async with session.begin_nested():
            session.add(PaymentEvent(provider=provider, event_id=event_id, kind=kind, order_id=order_id,
                                     outcome=outcome, detail=detail, received_at=utcnow()))
            await session.flush()
    except IntegrityError:
        return False  # the same event delivered twice at once: the other delivery applies it
    return True


async def record_payment(session: AsyncSession, *, provider: str, event_id: str, reference: str,
                         amount_minor: int, currency: str, succeeded: bool, charge_id: str | None = None,
                         kind: str = "payment") -> str:
    """Apply a provider's word on a payment once. Returns the outcome: paid, duplicate (replay or already paid),
    mismatch (amount/currency differ: flagged for a person), late (the order expired or was cancelled: flagged),
    failed, ignored (unknown payment)."""
    repo = PaymentRepository(session)
    payment = await repo.by_reference(provider, reference)
    if payment is None:
        await _seen_once(session, provider=provider, event_id=event_id, kind=kind, order_id=None,
                         outcome="ignored", detail={"reference": reference})
        return "ignored"
    order = await repo.lock_order(payment.order_id)  # racing events for one order queue here
    assert order is not None
    payment = await repo.by_reference(provider, reference, fresh=True)
    assert payment is not None
    expected_minor = to_minor(quantize(payment.amount, payment.currency), minor_units(payment.currency))
    if not succeeded:
        outcome = "failed" if payment.status == "pending" else "duplicate"
    elif payment.status == "succeeded":
        outcome = "duplicate"
    elif currency.upper() != payment.currency or amount_minor != expected_minor or \
            payment.amount != quantize(order.total, order.currency) or payment.currency != order.currency:
        outcome = "mismatch"
    elif order.status != "pending_payment":
        outcome = "late"
    else:
        outcome = "paid"
    detail = {"reference": reference, "amount_minor": amount_minor, "currency": currency.upper(),
              "expected_minor": expected_minor, "expected_currency": payment.currency}
    if not await _seen_once(session, provider=provider, event_id=event_id, kind=kind, order_id=order.id,
                            outcome=outcome, detail=detail):
        return "duplicate"
    now = utcnow()
    if outcome == "failed":
        payment.status, payment.updated_at = "failed", now
    elif outcome == "mismatch":
        payment.status, payment.charge_id, payment.updated_at = "mismatch", charge_id, now
        order.attention = (f"{provider} reported {amount_minor} {currency.upper()} (minor units) for a payment of "
                           f"{expected_minor} {payment.currency}; not marked paid.")[:300]
    elif outcome == "late":
        payment.status, payment.charge_id, payment.updated_at = "succeeded", charge_id, now
        order.amount_paid += payment.amount
        order.attention = (f"{provider} {reference} paid while the order was {order.status}: refund it"
                           f"{'' if order.status == 'paid' else ' or reinstate the order'}.")[:300]
    elif outcome == "paid":
        payment.status, payment.charge_id, payment.updated_at = "succeeded", charge_id, now
        order.amount_paid = payment.amount
        await session.flush()  # transition_order reloads the order
        await transition_order(session, order_id=order.id, to_status="paid",
                               note=f"{provider} {reference}")
    await session.flush()
    return outcome


async def handle_stripe_webhook(session: AsyncSession, *, payload: bytes, signature: str | None,
                                secret: str) -> str:
    """Verify a Stripe webhook (InvalidSignature: nothing changes) and apply it once; the outcome."""
    event = verify_stripe_event(payload=payload, signature=signature, secret=secret)
    kind = str(event.get("type", ""))
    intent = (event.get("data") or {}).get("object") or {}
    if kind not in ("payment_intent.succeeded", "payment_intent.payment_failed") or \
            intent.get("object") != "payment_intent":
        await _seen_once(session, provider="stripe", event_id=str(event.get("id")), kind=kind[:80], order_id=None,
                         outcome="ignored", detail={})
        return "ignored"
    succeeded = kind == "payment_intent.succeeded"
    amount = intent.get("amount_received") if succeeded and intent.get("amount_received") else intent.get("amount")
    latest = intent.get("latest_charge")
    charge_id = latest.get("id") if isinstance(latest, dict) else latest
    return await record_payment(session, provider="stripe", event_id=str(event["id"]), kind=kind,
                                reference=str(intent.get("id")), amount_minor=int(amount or 0),
                                currency=str(intent.get("currency", "")), succeeded=succeeded,
                                charge_id=str(charge_id) if charge_id else None)


async def refund(session: AsyncSession, *, order_id: int, provider: PaymentProvider, amount: Decimal | None,
                 idempotency_key: str, reason: str | None = None) -> PaymentRefund:
    """Refund part (`amount`) or all (None) of what was paid, through the provider that took it; the order becomes
    refunded when nothing is left. The same idempotency key returns the first refund."""
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    paid = [p for p in await repo.for_order(order.id) if p.status == "succeeded"]
    if not paid or order.status not in REFUNDABLE | {"cancelled", "expired"}:
        raise RefundNotPossible(f"Order {order.number} has no payment to refund ({order.status}).")
    payment = paid[-1]
    if payment.provider != provider.name:
        raise RefundNotPossible(f"Order {order.number} was paid with {payment.provider}.", provider=payment.provider)
    earlier = await repo.refund_by_key(payment.id, idempotency_key)
    if earlier is not None:
        return earlier
    left = payment.amount - payment.amount_refunded
    wanted = quantize(amount if amount is not None else left, payment.currency)
    if wanted <= 0 or wanted > left:
        raise RefundNotPossible(f"At most {left} {payment.currency} can be refunded.", refundable=str(left))
    provider_ref = await provider.refund(reference=payment.reference, currency=payment.currency,
                                         amount_minor=to_minor(wanted, minor_units(payment.currency)),
                                         idempotency_key=f"refund-{payment.id}-{idempotency_key}")
    now = utcnow()
    row = PaymentRefund(payment_id=payment.id, idempotency_key=idempotency_key, amount=wanted,
                        currency=payment.currency, provider_ref=provider_ref, reason=reason, created_at=now)
    session.add(row)
    payment.amount_refunded += wanted
    payment.updated_at = now
    order.amount_refunded += wanted
    await session.flush()
    if payment.amount_refunded == payment.amount and order.status in ("paid", "delivered", "return_requested"):
        await transition_order(session, order_id=order.id, to_status="refunded", note=reason)
    return row


async def payment_state(session: AsyncSession, *, order_id: int) -> tuple[Order, list[Payment], list[PaymentRefund]]:
    repo = PaymentRepository(session)
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    payments = list(await repo.for_order(order_id))
    return order, payments, list(await repo.refunds_for([p.id for p in payments]))


async def expire_orders(session: AsyncSession, *, now: datetime | None = None, limit: int = 200) -> int:
    """Unpaid orders past their expiry become expired and release their reservation; how many."""
    expired = 0
    for order_id in await PaymentRepository(session).expired_order_ids(now or utcnow(), limit):
        order = await PaymentRepository(session).lock_order(order_id)
        if order is None or order.status != "pending_payment":
            continue  # paid (or cancelled) meanwhile
        await transition_order(session, order_id=order_id, to_status="expired", note="not paid in time")
        for payment in await PaymentRepository(session).for_order(order_id):
            if payment.status == "pending":
                payment.status = "expired"
        expired += 1
    await session.flush()
    return expired




async def check_before_charge(session: AsyncSession, *, provider: str, reference: str, amount_minor: int,
                              currency: str) -> str | None:
    """Re-check an order just before the provider charges it (Telegram's pre_checkout_query): None when it may be
    charged, else why not (unknown_payment, not_pending, expired, stock_released, amount_changed)."""
    repo = PaymentRepository(session)
    payment = await repo.by_reference(provider, reference, fresh=True)
    if payment is None:
        return "unknown_payment"
    order = await session.get(Order, payment.order_id, populate_existing=True)
    assert order is not None
    if order.status != "pending_payment" or payment.status != "pending":
        return "not_pending"
    if order.expires_at is not None and order.expires_at <= utcnow():
        return "expired"
    if not await repo.reservations_active(order.id):
        return "stock_released"
    expected = to_minor(quantize(order.total, order.currency), minor_units(order.currency))
    if amount_minor != expected or currency.upper() != order.currency or payment.amount != order.total:
        return "amount_changed"
    return None

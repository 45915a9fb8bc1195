"""Payment rules: one open payment per order and provider (a double "Pay" is one charge), provider events applied
once (replays and out-of-order events change nothing), amounts checked to the minor unit (a mismatch is flagged
for a person, never marked paid), refunds through the provider, unpaid orders expire and give their stock back."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce import cross_border
from commerce.catalog.service import find_variants, get_variants
from commerce.checkout.schemas import to_minor
from commerce.inventory.service import return_units
from commerce.money import format_money, minor_units, quantize
from commerce.orders.errors import IllegalTransition, OrderNotFound
from commerce.orders.models import Order
from commerce.orders.schemas import TRANSITIONS
from commerce.orders.service import get_order, transition_order
from commerce.payments.errors import PaymentNotPossible, ProviderUnavailable, RefundNotPossible, RefundOutsidePolicy
from commerce.payments.models import Payment, PaymentEvent, PaymentMethod, PaymentRefund, PaymentSetting
from commerce.payments.providers import PaymentProvider, verify_stripe_event
from commerce.payments.repository import PaymentRepository
from commerce.payments.schemas import OFFLINE, Charge, PaymentMethodIn, RefundLineIn
from kit.clock import utcnow
from kit.db import Database
from kit.errors import InvalidInput, Message, Money, ShopTalkError
from kit.outbox import enqueue

log = logging.getLogger(__name__)

REFUNDED_TOPIC = "order.refunded"
# An open payment of an order that can no longer be paid, to close at its provider after the commit (outbox: a
# provider that does not answer is retried, and the order is never left half-cancelled).
CANCEL_INTENT_TOPIC = "payment.cancel_at_provider"
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
    """The open payment of this order with `provider`; pressing "Pay" twice returns the same one (one charge).

    Short: the order's row lock is held only to save the payment row. A local provider (Telegram, offline) opens
    it here; a remote one (Stripe) leaves it `creating` with its idempotency key and link, and the provider is
    called by `complete_payment` after this transaction commits, with no lock held. PaymentNotPossible when the
    order is not waiting for payment."""
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    if order.status != "pending_payment":
        raise not_payable(order.number, order.status)
    payments = await repo.for_order(order.id)
    for payment in payments:
        if payment.provider == provider.name and payment.status in ("pending", "creating"):
            return payment
    key = f"order-{order.id}-payment-{len(payments) + 1}"
    now = utcnow()
    charge = charge_of(order)
    payment = Payment(order_id=order.id, provider=provider.name, reference=key, amount=charge.amount,
                      currency=charge.currency, status="creating", url=provider.link(charge),
                      amount_refunded=Decimal(0), created_at=now, updated_at=now, idempotency_key=key,
                      method_types=list(method_types or []))
    session.add(payment)
    await session.flush()
    if not provider.remote:  # nothing leaves the process: open it in this transaction
        created = await provider.create(charge=replace(charge, payment_id=payment.id),
                                        method_types=payment.method_types, idempotency_key=key)
        payment.reference, payment.url, payment.status = created.reference, created.url, "pending"
        await session.flush()
    return payment


RETRY_DELAYS = (0.25, 1.0)  # seconds before the 2nd and 3rd call; Stripe's idempotency key makes a retry safe


async def complete_payment(database: Database, *, payment_id: int, provider: PaymentProvider,
                           retry_delays: Sequence[float] = RETRY_DELAYS) -> Payment:
    """Open a `creating` payment at its provider outside any transaction, then record the answer in a short one.

    Network errors and provider 5xx are retried (bounded, same idempotency key: never two charges). A crash
    between the provider's answer and our record is repaired by the next call (same key, same provider payment;
    the webhook also finds the payment by the id in its metadata). After an ambiguous failure the provider is asked
    for the payment it may have made (`find`, by our payment id) before creating again: one payment at the provider
    even when it ignores idempotency keys. ProviderUnavailable / ProviderRefused leave
    the payment `creating` and the order pending: nothing is lost, the shopper retries."""
    async with database.sessions() as session:
        payment = await session.get(Payment, payment_id)
        if payment is None:
            raise PaymentNotPossible(f"No payment {payment_id}.")
        if payment.status != "creating":
            return payment
        order = await session.get(Order, payment.order_id)
        assert order is not None
        if order.status != "pending_payment":
            raise not_payable(order.number, order.status)
        charge = replace(charge_of(order), payment_id=payment.id)
        key, method_types = payment.idempotency_key or f"payment-{payment.id}", list(payment.method_types)
    ambiguous = False
    for attempt in range(len(retry_delays) + 1):
        try:
            # After a failure whose answer was lost (timeout, dropped connection, 5xx) the provider may have made
            # the payment anyway: look for it first, so a retry never leaves a second, unpaid one behind.
            found = await provider.find(charge=charge) if ambiguous else None
            created = found or await provider.create(charge=charge, method_types=method_types, idempotency_key=key)
            break
        except ProviderUnavailable:
            ambiguous = True
            if attempt == len(retry_delays):
                raise
            await asyncio.sleep(retry_delays[attempt])
    closed_meanwhile: tuple[str, str] | None = None
    async with database.unit_of_work() as session:
        order = await PaymentRepository(session).lock_order(charge.order_id)
        assert order is not None
        recorded: Payment | None = await session.get(Payment, payment_id, populate_existing=True)
        assert recorded is not None
        if recorded.status == "creating":  # a concurrent call may have recorded the same provider payment first
            recorded.reference, recorded.url, recorded.updated_at = created.reference, created.url, utcnow()
            recorded.status = "pending"
            await session.flush()
        elif recorded.status == "expired" and order.status != "pending_payment":
            # The order was cancelled (or expired) while the provider was making this payment; the close queued then
            # may have looked before it existed. Close this one too, so no open payment outlives its order.
            closed_meanwhile = order.number, order.status
            await _close_made_meanwhile(session, recorded, created.reference)
        elif created.reference != recorded.reference:
            # Another load of the pay page recorded its provider payment first, and the provider made a second one
            # (it ignored the shared idempotency key): this load shows the first, and the second is closed.
            await _close_duplicate(session, recorded, created.reference)
    if closed_meanwhile is not None:
        number, status = closed_meanwhile
        raise not_payable(number, status)
    return recorded


async def _close_made_meanwhile(session: AsyncSession, payment: Payment, reference: str) -> None:
    """`reference` was made at the provider for `payment` after its order was closed: recorded on the payment when
    it has no provider reference yet (a late payment on it is then `late`, flagged), and closed there by the outbox
    (its own idempotency key: the close queued with the cancel may already be delivered)."""
    if payment.reference == payment.idempotency_key:  # never opened before: this is its provider payment
        payment.reference, payment.updated_at = reference, utcnow()
    await _queue_provider_close(session, payment, reference)


def status_words(status: str) -> Message:
    """An order's status as a person reads it (the agent console's words), inside a Message."""
    return Message(f"console.order_status_{status}")


def not_payable(number: str, status: str) -> PaymentNotPossible:
    """The order is no longer waiting for payment: said in the reader's language (error.order_not_payable)."""
    return PaymentNotPossible(f"Order {number} is {status}.", order_status=status,
                              message=Message("error.order_not_payable", {"number": number,
                                                                          "status": status_words(status)}))


async def _close_duplicate(session: AsyncSession, payment: Payment, reference: str) -> None:
    """Queue the close of `reference`, a second provider payment made for `payment` by a racing call (the outbox
    retries it; its own idempotency key, so a redelivered answer queues it once)."""
    log.warning("%s payment %s: a second provider payment was made for it by a racing call; closing it",
                payment.provider, payment.id)
    await _queue_provider_close(session, payment, reference)


async def _queue_provider_close(session: AsyncSession, payment: Payment, reference: str) -> None:
    """Queue the close of provider payment `reference` of `payment` (the outbox retries it; its own idempotency key:
    a close queued earlier, or a redelivered answer, queues it once)."""
    await enqueue(session, topic=CANCEL_INTENT_TOPIC, idempotency_key=f"payment-cancel:{payment.id}:{reference}",
                  payload={"payment_id": payment.id, "provider": payment.provider, "opened": True,
                           "reference": reference}, max_attempts=30)
    await session.flush()


async def open_payment(session: AsyncSession, *, order_id: int) -> Payment | None:
    """The open payment of an order (pending, or creating: not yet opened at the provider), newest first; None
    when there is none."""
    pending = [p for p in await PaymentRepository(session).for_order(order_id)
               if p.status in ("pending", "creating")]
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
                         kind: str = "payment", payment_id: int | None = None, order_ref: str | None = None) -> str:
    """Apply a provider's word on a payment once. Returns the outcome: paid, duplicate (replay or already paid),
    mismatch (amount/currency differ: flagged for a person), late (the order expired or was cancelled: flagged),
    failed, ignored (no payment of ours: recorded and logged), wrong_order (the event names our payment but another
    order: recorded and logged, nothing applied).

    `payment_id` and `order_ref` (the provider's metadata) adopt a payment opened at the provider whose reference
    was never recorded, only when both name it, as `StripeProvider.find` matches: payment ids alone repeat across
    databases sharing a provider account."""
    repo = PaymentRepository(session)
    payment = await repo.by_reference(provider, reference)
    if payment is None and payment_id is not None:
        # Opened at the provider, but the process stopped before recording its reference: adopt it now.
        found = await session.get(Payment, payment_id)
        if found is not None and found.provider == provider and found.status == "creating":
            if not await _names_order(session, found, order_ref, required=True):
                return await _wrong_order(session, provider=provider, event_id=event_id, kind=kind, payment=found,
                                          reference=reference, amount_minor=amount_minor, currency=currency)
            found.reference, found.status = reference, "pending"
            await session.flush()
            payment = found
    elif payment is not None and order_ref and not await _names_order(session, payment, order_ref, required=False):
        return await _wrong_order(session, provider=provider, event_id=event_id, kind=kind, payment=payment,
                                  reference=reference, amount_minor=amount_minor, currency=currency)
    if payment is None:
        # Signed by the provider, so a real payment somewhere (another shop on the account, a dashboard test): a
        # person may need to look. Recorded (a replay is a duplicate); logged by ids only, like wrong_order.
        if not await _seen_once(session, provider=provider, event_id=event_id, kind=kind, order_id=None,
                                outcome="ignored", detail={"reference": reference, "payment_id": payment_id}):
            return "duplicate"
        log.warning("%s event %s for %s matches no payment of ours (named payment %s): ignored", provider, event_id,
                    reference, payment_id)
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
        order.attention = (f"{provider} reported {_minor_money(amount_minor, currency)} for a payment of "
                           f"{format_money(payment.amount, payment.currency)}; not marked paid.")[:300]
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


async def _names_order(session: AsyncSession, payment: Payment, order_ref: str | None, *, required: bool) -> bool:
    """Whether the provider's `order_ref` is the public reference of `payment`'s order (`required`: a missing one
    does not match)."""
    if not order_ref:
        return not required
    order = await session.get(Order, payment.order_id)
    return order is not None and order.public_ref == order_ref


async def _wrong_order(session: AsyncSession, *, provider: str, event_id: str, kind: str, payment: Payment,
                       reference: str, amount_minor: int, currency: str) -> str:
    """An event naming our payment for another order: recorded (a replay is a duplicate) and logged, never applied.
    The log names the event, the provider's payment and ours, never the order references (they open pay pages)."""
    if not await _seen_once(session, provider=provider, event_id=event_id, kind=kind, order_id=payment.order_id,
                            outcome="wrong_order",
                            detail={"reference": reference, "payment_id": payment.id, "amount_minor": amount_minor,
                                    "currency": currency.upper()}):
        return "duplicate"
    log.warning("%s event %s for %s names payment %s but another order: not applied", provider, event_id,
                reference, payment.id)
    return "wrong_order"


def _minor_money(amount_minor: int, currency: str) -> str:
    """A provider's amount in minor units as people read it; the raw figure when its currency is not one we know."""
    try:
        return format_money(Decimal(amount_minor).scaleb(-minor_units(currency)), currency)
    except ShopTalkError:
        return f"{amount_minor} {currency.upper()} (minor units)"


async def mark_offline_received(session: AsyncSession, *, order_id: int, provider: PaymentProvider,
                                reference: str, actor: str) -> str:
    """A person saw the bank transfer (or the carrier's cash) arrive: the order's offline payment is recorded as
    paid once, with the reference they saw (bank statement line, receipt number). The outcome as record_payment's:
    a second press is a duplicate, an order no longer pending is flagged (late), never paid twice."""
    if provider.name not in OFFLINE:
        raise PaymentNotPossible(f"{provider.name} is not an offline payment.", field="provider")
    reference = reference.strip()
    if not reference:
        raise InvalidInput("Give the reference on the bank statement or receipt.", code="missing_reference",
                           field="reference", message=Message("error.offline_reference"))
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    payment = next((p for p in reversed(await repo.for_order(order.id)) if p.provider == provider.name), None)
    if payment is None:
        payment = await start_payment(session, order_id=order.id, provider=provider)
    # The person confirms the payment's own amount; record_payment still checks it against the order's total.
    return await record_payment(session, provider=provider.name, event_id=f"manual:{payment.id}",
                                kind=f"received by {actor}"[:80], reference=payment.reference,
                                amount_minor=to_minor(quantize(payment.amount, payment.currency),
                                                      minor_units(payment.currency)),
                                currency=payment.currency, succeeded=True, charge_id=reference[:200])


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
    named = str((intent.get("metadata") or {}).get("payment_id") or "")
    return await record_payment(session, provider="stripe", event_id=str(event["id"]), kind=kind,
                                reference=str(intent.get("id")), amount_minor=int(amount or 0),
                                currency=str(intent.get("currency", "")), succeeded=succeeded,
                                charge_id=str(charge_id) if charge_id else None,
                                payment_id=int(named) if named.isdigit() and len(named) < 10 else None,
                                order_ref=str((intent.get("metadata") or {}).get("order_ref") or "") or None)


# Goods are with the shopper (or on their way): a refund is a return and follows the destination's return policy.
RETURNS = frozenset({"fulfilled", "shipped", "delivered", "return_requested"})


async def _policy_breaches(session: AsyncSession, order: Order, line_skus: Sequence[str]) -> dict[str, Any]:
    """Which rules of the destination's return policy a return of `line_skus` from `order` breaks ({} : none):
    window (days since delivery) and non_returnable (categories)."""
    if order.status not in RETURNS or not order.country:
        return {}
    try:
        policy = await cross_border.return_policy(session, country=order.country)
    except ShopTalkError:
        return {}  # no policy for this destination: nothing to follow
    breaches: dict[str, Any] = {}
    delivered = await PaymentRepository(session).delivered_at(order.id)
    if delivered is not None and utcnow() > delivered + timedelta(days=policy.window_days):
        breaches["window"] = {"window_days": policy.window_days, "delivered_at": delivered.isoformat()}
    banned = set(policy.non_returnable_categories)
    if banned and line_skus:
        still_sold = await find_variants(session, skus=list(line_skus))  # a deleted SKU has no category left
        variants = await get_variants(session, skus=list(still_sold))  # with product and category loaded
        hit = sorted({v.product.category.slug for v in variants.values()} & banned)
        if hit:
            breaches["non_returnable"] = {"categories": hit}
    return breaches


async def refund(session: AsyncSession, *, order_id: int, provider: PaymentProvider, idempotency_key: str,
                 amount: Decimal | None = None, lines: Sequence[RefundLineIn] | None = None,
                 reason: str | None = None, restock: bool = True, override_reason: str | None = None,
                 may_override: bool = False, actor: str | None = None,
                 cancelling: bool = False) -> tuple[PaymentRefund, bool]:
    """Refund through the provider that took the payment: `lines` (order line, quantity) priced by the
    destination's return policy (goods, their taxes and duties, minus a restocking fee...), or `amount`, or
    (neither) all that is left. Never more than was paid and not yet refunded; a line never more than was bought.

    Once the goods left the shop, the destination's return policy applies: outside its window or for a
    non-returnable category the refund is refused (RefundOutsidePolicy) unless `may_override` (a supervisor or the
    owner) gives `override_reason`, which is recorded. `restock` puts the refunded lines' units back on hand. The
    order becomes refunded when nothing is left. (refund, created): the same idempotency key returns the first
    refund, created False. `cancelling` (cancel_order): the order neither becomes refunded nor is the refund told
    on its own (the cancellation says it), and a refund the provider cannot make (no provider id) is owed."""
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    paid = [p for p in await repo.for_order(order.id) if p.status == "succeeded"]
    if not paid or order.status not in REFUNDABLE | {"cancelled", "expired"}:
        raise RefundNotPossible(f"Order {order.number} has no payment to refund ({order.status}).",
                                message=Message("error.refund_no_payment", {
                                    "number": order.number, "status": Message(f"status.{order.status}")}))
    payment = paid[-1]
    if payment.provider != provider.name:
        raise RefundNotPossible(f"Order {order.number} was paid with {payment.provider}.", provider=payment.provider,
                                message=Message("error.refund_other_provider",
                                                {"number": order.number, "provider": payment.provider}))
    earlier = await repo.refund_by_key(payment.id, idempotency_key)
    if earlier is not None:
        return earlier, False
    left = payment.amount - payment.amount_refunded
    order_lines = {line.id: line for line in await repo.order_lines(order.id)}
    returned = await repo.returned_quantities([p.id for p in paid])
    chosen: list[dict[str, Any]] = []
    for wanted_line in lines or []:
        line = order_lines.get(wanted_line.line_id)
        if line is None:
            raise RefundNotPossible(f"Order {order.number} has no line {wanted_line.line_id}.",
                                    code="unknown_order_line", field="lines", line_id=wanted_line.line_id,
                                    message=Message("error.refund_unknown_line",
                                                    {"number": order.number, "line_id": wanted_line.line_id}))
        still = line.quantity - returned.get(line.id, 0) - sum(c["quantity"] for c in chosen if c["line_id"] == line.id)
        if wanted_line.quantity > still:
            raise RefundNotPossible(f"Only {still} of {line.sku} can still be refunded.", code="refund_quantity",
                                    field="lines", line_id=line.id, refundable_quantity=still,
                                    message=Message("error.refund_quantity", {"quantity": still, "sku": line.sku}))
        chosen.append({"line_id": line.id, "sku": line.sku, "quantity": wanted_line.quantity,
                       "amount": str(quantize(line.unit_price * wanted_line.quantity, order.currency))})
    if not lines and amount is None and restock:  # everything that is left comes back
        chosen = [{"line_id": line.id, "sku": line.sku, "quantity": line.quantity - returned.get(line.id, 0),
                   "amount": str(quantize(line.unit_price * (line.quantity - returned.get(line.id, 0)),
                                          order.currency))}
                  for line in order_lines.values() if line.quantity > returned.get(line.id, 0)]
    breaches = await _policy_breaches(session, order, [c["sku"] for c in chosen] or
                                      [line.sku for line in order_lines.values()])
    override = (override_reason or "").strip() or None
    if breaches and not (may_override and override):
        detail, message = _outside_policy(order.number, breaches, may_override=may_override)
        raise RefundOutsidePolicy(detail, breaches=breaches, may_override=may_override, message=message)
    if lines and amount is None:
        policy_refund = await _line_refund(session, order, sum((Decimal(c["amount"]) for c in chosen), Decimal(0)))
        wanted = min(policy_refund, left)
    else:
        wanted = quantize(amount if amount is not None else left, payment.currency)
    if wanted <= 0 or wanted > left:
        raise RefundNotPossible(f"At most {format_money(left, payment.currency)} can be refunded.",
                                refundable=str(quantize(left, payment.currency)), currency=payment.currency,
                                field="amount",
                                message=Message("error.refund_at_most", {"amount": Money(left, payment.currency)}))
    provider_ref = await provider.refund(reference=payment.reference, currency=payment.currency,
                                         amount_minor=to_minor(wanted, minor_units(payment.currency)),
                                         idempotency_key=f"refund-{payment.id}-{idempotency_key}")
    now = utcnow()
    row = PaymentRefund(payment_id=payment.id, idempotency_key=idempotency_key, amount=wanted,
                        currency=payment.currency, provider_ref=provider_ref, reason=reason, created_at=now,
                        lines=chosen, restocked=bool(restock and chosen),
                        override_reason=override if breaches else None, actor=actor,
                        status="owed" if cancelling and provider_ref is None else "done")
    session.add(row)
    payment.amount_refunded += wanted
    payment.updated_at = now
    order.amount_refunded += wanted
    await session.flush()
    if restock:
        for entry in chosen:
            reservation_id = order_lines[entry["line_id"]].reservation_id
            if reservation_id is not None and order.status not in ("cancelled", "expired"):
                await return_units(session, reservation_id=reservation_id, quantity=int(entry["quantity"]))
    if cancelling:
        pass  # cancel_order moves the order and tells the shopper of both at once
    elif payment.amount_refunded == payment.amount and "refunded" in TRANSITIONS[order.status]:
        await transition_order(session, order_id=order.id, to_status="refunded", note=reason)
    else:  # the status stays: the shopper is told of the refund itself
        await _tell_refund(session, order, row)
    return row, True


def _outside_policy(number: str, breaches: dict[str, Any], *, may_override: bool) -> tuple[str, Message]:
    """Why a refund breaks the destination's return policy and who may override it: English (logs, the CLI) and as
    catalog words for the reader."""
    parts: list[tuple[str, Message]] = []
    if "window" in breaches:
        days = breaches["window"]["window_days"]
        parts.append((f"outside the return window of {days} days", Message("error.refund_rule_window", {"days": days})))
    if "non_returnable" in breaches:
        categories = ", ".join(breaches["non_returnable"]["categories"])
        parts.append((f"a non-returnable category ({categories})",
                      Message("error.refund_rule_non_returnable", {"categories": categories})))
    rules = parts[0][1] if len(parts) == 1 else \
        Message("error.refund_rule_both", {"window": parts[0][1], "non_returnable": parts[1][1]})
    hint = ("Give a reason to override it.", "error.refund_override_give_reason") if may_override else \
        ("A supervisor or the owner can override it.", "error.refund_override_ask")
    detail = (f"Order {number}: the refund is {' and '.join(text for text, _ in parts)} of the destination's return "
              f"policy. {hint[0]}")
    return detail, Message("error.refund_outside_policy", {"number": number, "rules": rules,
                                                           "hint": Message(hint[1])})


async def _tell_refund(session: AsyncSession, order: Order, row: PaymentRefund, **extra: str) -> None:
    """The shopper's "refunded" message for `row` (outbox, once per refund)."""
    await enqueue(session, topic=REFUNDED_TOPIC, idempotency_key=f"order-refund:{row.id}",
                  payload={"order_id": order.id, "number": order.number, "external_id": order.external_id,
                           "from_status": order.status, "status": "refund", "refund_id": row.id,
                           "amount": str(row.amount), "currency": row.currency, **extra})


# Goods still in the shop: cancelling is allowed (TRANSITIONS); after that the refund is a return (refund()).
CANCEL_KEY = "cancel-{order_id}"


async def cancel_order(session: AsyncSession, *, order_id: int, providers: Callable[[str], PaymentProvider],
                       note: str | None = None, actor: str | None = None
                       ) -> tuple[Order, PaymentRefund | None, bool]:
    """Cancel an order not yet shipped: its units go back to stock and what is left of its payment is refunded
    through the provider that took it, in the same transaction; (order, refund or None when nothing was paid,
    cancelled now: False when it already was).

    Stripe: refunded now, with an idempotency key per order (`refund-<payment>-cancel-<order>`), so a retry after
    an ambiguous failure is the same refund. The provider down: ProviderUnavailable and nothing changed (the order
    stays as it was; the caller says "try again"). Telegram Payments and offline payments: the refund is recorded
    as owed and the order flagged (`attention`) for a person to send it. A second cancel (double click) returns the
    cancelled order and its refund, nothing more. The shopper is told once, in their language, on their channel
    (the status change carries the refund). A shipped order cannot be cancelled (IllegalTransition): its refund is
    a return under the destination's return policy (refund())."""
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    key = CANCEL_KEY.format(order_id=order.id)
    payments = await repo.for_order(order.id)
    paid = [p for p in payments if p.status == "succeeded"]
    if order.status == "cancelled":  # a double click: what the first cancel did
        earlier = await repo.refund_by_key(paid[-1].id, key) if paid else None
        return await get_order(session, order_id=order.id), earlier, False
    if "cancelled" not in TRANSITIONS[order.status]:
        as_return = order.status in RETURNS | {"delivered"}
        hint = " Refund it as a return instead." if as_return else ""
        raise IllegalTransition(f"Order {order.number} is {order.status} and cannot be cancelled.{hint}",
                                current_status=order.status,
                                message=Message("error.cancel_not_allowed_return" if as_return else
                                                "error.cancel_not_allowed",
                                                {"number": order.number, "status": status_words(order.status)}))
    row: PaymentRefund | None = None
    left = paid[-1].amount - paid[-1].amount_refunded if paid else Decimal(0)
    if left > 0:
        payment = paid[-1]
        row, _ = await refund(session, order_id=order.id, provider=providers(payment.provider),
                              idempotency_key=key, reason=note or "order cancelled", restock=False, actor=actor,
                              cancelling=True)
        if row.status == "owed":
            order.attention = (f"Refund owed: {format_money(row.amount, row.currency)} for {payment.provider} payment "
                               f"{payment.reference}; send it by hand and mark it sent.")[:300]
    await _close_open_payments(session, payments)
    notice = None
    if row is not None:
        notice = {"notice": "cancelled_refund_owed" if row.status == "owed" else "cancelled_refund",
                  "amount": str(row.amount), "currency": row.currency, "refund_id": str(row.id)}
    await session.flush()
    cancelled = await transition_order(session, order_id=order.id, to_status="cancelled", note=note, notice=notice)
    return cancelled, row, True


async def _close_open_payments(session: AsyncSession, payments: Sequence[Payment]) -> None:
    """The order's open payments can no longer be paid (a late payment is flagged): expired here, and those opened
    (or maybe opened) at a remote provider closed there by the outbox after the commit (close_at_provider)."""
    now = utcnow()
    for payment in payments:
        if payment.status not in ("pending", "creating"):
            continue
        opened = payment.status == "pending"
        payment.status, payment.updated_at = "expired", now
        if payment.provider == "stripe":
            # ~2 h of retries (backoff capped at 5 min) before a person sees it dead in the outbox
            await enqueue(session, topic=CANCEL_INTENT_TOPIC, idempotency_key=f"payment-cancel:{payment.id}",
                          payload={"payment_id": payment.id, "provider": payment.provider, "opened": opened},
                          max_attempts=30)


async def close_at_provider(database: Database, *, payment_id: int, opened: bool, provider: PaymentProvider,
                            reference: str | None = None) -> str:
    """Close at its provider a payment whose order was cancelled or expired (CANCEL_INTENT_TOPIC), with no
    transaction held; the provider's answer (PaymentProvider.cancel), or "none" when a payment that was still being
    opened never was. `reference`: that provider payment (one made after the order was closed), else the payment's
    own. Idempotent: a redelivery finds it cancelled. ProviderUnavailable: the outbox retries."""
    async with database.sessions() as session:
        payment = await session.get(Payment, payment_id)
        if payment is None:
            return "none"
        order = await session.get(Order, payment.order_id)
        assert order is not None
        charge = replace(charge_of(order), payment_id=payment.id)
        reference = reference or payment.reference
    if not opened:  # its create's answer was lost (or never sent): the intent Stripe may have made for it
        found = await provider.find(charge=charge)
        if found is None:
            return "none"
        reference = found.reference
    outcome = await provider.cancel(reference=reference)
    if outcome == "paid":
        log.warning("%s payment %s was paid before its order was closed: not cancelled (the order is flagged)",
                    provider.name, payment_id)
    return outcome


async def mark_refund_sent(session: AsyncSession, *, order_id: int, refund_id: int, reference: str,
                           actor: str) -> tuple[PaymentRefund, bool]:
    """A person sent an owed refund (cancel_order of a Telegram or offline payment) by hand: it becomes done with the
    reference they give (bank statement line, the provider dashboard's refund id), the order's "Refund owed" flag
    is cleared and the shopper is told (notify.refund). (refund, changed): a second press changes nothing."""
    reference = reference.strip()
    if not reference:
        raise InvalidInput("Give the reference of the refund you sent (bank statement line, refund id).",
                           code="missing_reference", field="reference", message=Message("error.refund_sent_reference"))
    repo = PaymentRepository(session)
    order = await repo.lock_order(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    row = await session.get(PaymentRefund, refund_id, populate_existing=True)
    payment = await session.get(Payment, row.payment_id) if row is not None else None
    if row is None or payment is None or payment.order_id != order.id:
        raise RefundNotPossible(f"Order {order.number} has no refund {refund_id}.", field="refund",
                                message=Message("error.refund_unknown",
                                                {"number": order.number, "refund_id": refund_id}))
    if row.status != "owed":
        return row, False
    row.status, row.provider_ref = "done", reference[:200]
    if order.attention and order.attention.startswith("Refund owed"):
        order.attention = None
    await _tell_refund(session, order, row, sent_by=actor)
    await session.flush()
    return row, True


async def _line_refund(session: AsyncSession, order: Order, goods: Decimal) -> Decimal:
    """What returning `goods` (value) refunds under the destination's policy; the goods alone without one."""
    if order.country:
        try:
            policy = await cross_border.return_policy(session, country=order.country)
        except ShopTalkError:
            return quantize(goods, order.currency)
        return cross_border.refund_amount(order, policy=policy, returned_goods=goods).total
    return quantize(goods, order.currency)


async def payment_state(session: AsyncSession, *, order_id: int) -> tuple[Order, list[Payment], list[PaymentRefund]]:
    repo = PaymentRepository(session)
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    payments = list(await repo.for_order(order_id))
    return order, payments, list(await repo.refunds_for([p.id for p in payments]))


ORDER_EXPIRY_KEY = "order_expiry_minutes"
ORDER_EXPIRY_RANGE = (1, 60 * 24 * 14)


async def order_expiry_minutes(session: AsyncSession, *, default: int) -> int:
    """How long an unpaid order holds its stock: the merchant's setting, `default` (from settings) when unset."""
    row = await PaymentRepository(session).setting(ORDER_EXPIRY_KEY)
    return int(row.value) if row is not None and row.value.isdigit() else default


async def set_order_expiry_minutes(session: AsyncSession, *, minutes: int) -> int:
    """Change the merchant's order expiry (1 minute to 14 days); orders placed from now on use it, and the expiry
    job uses it for pending orders placed without an expiry of their own."""
    low, high = ORDER_EXPIRY_RANGE
    if not low <= minutes <= high:
        raise InvalidInput(f"Order expiry must be between {low} and {high} minutes.", code="invalid_order_expiry",
                           field="order_expiry_minutes")
    repo = PaymentRepository(session)
    row = await repo.setting(ORDER_EXPIRY_KEY)
    if row is None:
        session.add(PaymentSetting(key=ORDER_EXPIRY_KEY, value=str(minutes)))
    else:
        row.value = str(minutes)
    await session.flush()
    return minutes


async def expire_orders(session: AsyncSession, *, now: datetime | None = None, limit: int = 200,
                        default_expiry_minutes: int = 60) -> int:
    """Unpaid orders past their expiry (their own, or placed longer ago than the merchant's order expiry when
    they have none) become expired and release their reservation; how many."""
    now = now or utcnow()
    minutes = await order_expiry_minutes(session, default=default_expiry_minutes)
    repo = PaymentRepository(session)
    expired = 0
    for order_id in await repo.expired_order_ids(now, limit, created_before=now - timedelta(minutes=minutes)):
        order = await repo.lock_order(order_id)
        if order is None or order.status != "pending_payment":
            continue  # paid (or cancelled) meanwhile
        await transition_order(session, order_id=order_id, to_status="expired", note="not paid in time")
        await _close_open_payments(session, await repo.for_order(order_id))
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

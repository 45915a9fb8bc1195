"""Order rules: idempotent creation per (channel, external id), legal status changes, stock follows."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.service import get_variants, localized, variant_price
from commerce.inventory.availability import shipping_warehouse
from commerce.inventory.service import commit_reservation, reserve_stock, return_to_stock
from commerce.money import require_currency
from commerce.orders.errors import (
    ChannelNotFound,
    CurrencyMismatch,
    EmptyOrder,
    IllegalTransition,
    OrderNotFound,
    UnknownStatus,
)
from commerce.orders.models import Order, OrderLine, OrderStatusChange
from commerce.orders.refs import new_public_ref, parse_public_ref
from commerce.orders.repository import OrderRepository
from commerce.orders.schemas import STATUSES, TRANSITIONS, OrderIn
from kit.clock import utcnow
from kit.errors import InvalidInput, Message
from kit.ids import new_uuid
from kit.outbox import enqueue

# Outbox topic of every status change: the bot tells the shopper on the channel where the order was placed.
STATUS_CHANGED_TOPIC = "order.status_changed"

NUMBER_BASE = 10000
SHIPPED_OR_LATER = frozenset({"shipped", "fulfilled", "delivered", "return_requested", "refunded"})


async def create_order(session: AsyncSession, *, data: OrderIn, number: str | None = None,
                       reserve: bool = True) -> tuple[Order, bool]:
    """Create an order in pending_payment, reserving its stock; (order, created).

    Idempotent on (channel, external id): a repeated delivery returns the first order and reserves nothing.
    Either every line is reserved and the order exists, or nothing changed.
    """
    repo = OrderRepository(session)
    channel = await repo.channel_by_code(data.channel)
    if channel is None:
        raise ChannelNotFound(f"No sales channel {data.channel!r}.")
    existing = await repo.by_external(channel.id, data.external_id)
    if existing is not None:
        return existing, False
    if not data.lines:
        raise EmptyOrder("An order needs at least one line.")
    currency = require_currency(data.currency)
    variants = await get_variants(session, skus=[line.sku for line in data.lines])
    now = utcnow()
    try:
        async with session.begin_nested():
            order = Order(number=number or f"t{new_uuid()[:18]}", public_ref=new_public_ref(),
                          channel_id=channel.id, external_id=data.external_id, shopper_id=data.shopper_id,
                          email=data.email, postcode=data.postcode, country=data.country, currency=currency,
                          subtotal=Decimal(0), shipping=data.shipping, shipping_service=data.shipping_service,
                          duties=data.duties, taxes=data.taxes, insurance=data.insurance, fees=data.fees,
                          due_on_delivery=data.due_on_delivery, incoterm=data.incoterm,
                          exchange_rates=data.exchange_rates, recipient=data.recipient, phone=data.phone,
                          address=data.address, summary_digest=data.summary_digest, expires_at=data.expires_at,
                          total=Decimal(0), status="pending_payment", created_at=now, updated_at=now)
            session.add(order)
            await session.flush()
            if number is None:
                order.number = str(NUMBER_BASE + order.id)
            subtotal = Decimal(0)
            for line in data.lines:
                variant = variants[line.sku]
                product = variant.product
                if line.unit_price is None and product.currency != currency:
                    raise CurrencyMismatch(
                        f"{line.sku} is priced in {product.currency}; give unit_price in {currency}.")
                unit_price = line.unit_price if line.unit_price is not None else variant_price(variant, product)
                reservation_id = None
                if reserve:
                    # Units are held where they can be sent from: the warehouse that ships to the order's
                    # destination (as search counts them), any location when no zone names one.
                    reservation = await reserve_stock(session, sku=line.sku, quantity=line.quantity,
                                                      location=await shipping_warehouse(session, country=data.country),
                                                      reference=f"order:{data.channel}:{data.external_id}")
                    reservation_id = reservation.id
                line_total = unit_price * line.quantity
                subtotal += line_total
                session.add(OrderLine(order_id=order.id, sku=line.sku, title=localized(product.title, "en"),
                                      quantity=line.quantity, unit_price=unit_price, line_total=line_total,
                                      reservation_id=reservation_id))
            order.subtotal = subtotal
            charged = subtotal + data.shipping + data.insurance + data.fees + data.duties + data.taxes
            if data.due_on_delivery > data.duties + data.taxes + data.fees:
                raise InvalidInput("due_on_delivery can only be duties, taxes and fees.", code="bad_due_on_delivery")
            order.total = charged - data.due_on_delivery
            session.add(OrderStatusChange(order_id=order.id, from_status=None, to_status="pending_payment",
                                          note=None, changed_at=now))
            await session.flush()
    except IntegrityError:
        # A concurrent delivery of the same (channel, external id) won the race; return its order.
        existing = await repo.by_external(channel.id, data.external_id)
        if existing is None:
            raise
        return existing, False
    return await get_order(session, order_id=order.id), True


async def get_order(session: AsyncSession, *, order_id: int) -> Order:
    order = await OrderRepository(session).by_id(order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return order


async def get_order_by_number(session: AsyncSession, *, number: str) -> Order:
    order = await OrderRepository(session).by_number(number.strip().lstrip("#"))
    if order is None:
        raise OrderNotFound(f"No order {number}.")
    return order


async def get_order_by_public_ref(session: AsyncSession, *, public_ref: str) -> Order:
    """The order with this public reference, typed in any accepted form (case, dashes, O/I/L); OrderNotFound
    for anything else."""
    canonical = parse_public_ref(public_ref)
    order = await OrderRepository(session).by_public_ref(canonical) if canonical else None
    if order is None:
        raise OrderNotFound(f"No order {public_ref[:40]!r}.")
    return order


async def orders_for_shopper(session: AsyncSession, *, shopper_id: int, limit: int = 10) -> list[Order]:
    return list(await OrderRepository(session).for_shopper(shopper_id, limit))


async def link_guest_orders(session: AsyncSession, *, email: str, shopper_id: int) -> int:
    """Orders placed with this e-mail (any case) that belong to no shopper yet become this shopper's (a storefront
    vouched for the e-mail, e.g. a signed web chat identity); returns how many."""
    return await OrderRepository(session).link_guest_orders(email=email.strip().lower(), shopper_id=shopper_id)


async def list_orders(session: AsyncSession, *, status: str | None = None, after_id: int = 0,
                      limit: int = 50) -> list[Order]:
    if status is not None and status not in STATUSES:
        raise UnknownStatus(f"{status!r} is not an order status.")
    return list(await OrderRepository(session).page(status=status, after_id=after_id, limit=limit))


async def recent_destinations(session: AsyncSession, *, orders: int = 500, limit: int = 6) -> list[str]:
    """The countries the shop's latest `orders` orders went to, most frequent first, at most `limit`."""
    return await OrderRepository(session).recent_countries(orders=orders, limit=limit)


async def _restock(session: AsyncSession, order: Order) -> None:
    for line in order.lines:
        if line.reservation_id is not None:
            await return_to_stock(session, reservation_id=line.reservation_id)


async def transition_order(session: AsyncSession, *, order_id: int, to_status: str, note: str | None = None,
                           carrier: str | None = None, tracking_number: str | None = None,
                           notice: dict[str, str] | None = None) -> Order:
    """Move an order to a new status if the lifecycle allows it; stock follows.

    paid commits the reservations; cancelled gives the units back (released, or restocked if already paid).
    `notice` goes with the status change to the shopper's message (e.g. {"notice": "cancelled_refund", "amount",
    "currency"}: the cancellation says what was refunded). A paid order is cancelled by
    commerce.payments.service.cancel_order, which refunds it first.
    """
    if to_status not in STATUSES:
        raise UnknownStatus(f"{to_status!r} is not an order status; expected one of {', '.join(STATUSES)}.")
    order = await OrderRepository(session).by_id(order_id, for_update=True)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    if to_status not in TRANSITIONS[order.status]:
        allowed = ", ".join(sorted(TRANSITIONS[order.status])) or "none"
        raise IllegalTransition(f"An order that is {order.status} cannot become {to_status} (allowed: {allowed}).",
                                current_status=order.status)
    tracked = (carrier or order.carrier) and (tracking_number or order.tracking_number)
    if to_status in ("shipped", "fulfilled") and not tracked:
        raise InvalidInput("Shipping needs a carrier and a tracking number.", code="tracking_required",
                           message=Message("error.tracking_required"))
    if to_status == "paid":
        for line in order.lines:
            if line.reservation_id is not None:
                await commit_reservation(session, reservation_id=line.reservation_id)
    elif to_status in ("cancelled", "expired"):
        await _restock(session, order)
    now = utcnow()
    history_from = order.status
    session.add(OrderStatusChange(order_id=order.id, from_status=order.status, to_status=to_status, note=note,
                                  changed_at=now))
    order.status = to_status
    order.updated_at = now
    if carrier:
        order.carrier = carrier
    if tracking_number:
        order.tracking_number = tracking_number
    await enqueue(session, topic=STATUS_CHANGED_TOPIC,
                  payload={"order_id": order.id, "number": order.number, "external_id": order.external_id,
                           "from_status": history_from, "status": to_status, **(notice or {})},
                  idempotency_key=f"order:{order.id}:{len(order.history)}:{to_status}", flush=False)
    await session.flush()
    return await get_order(session, order_id=order.id)

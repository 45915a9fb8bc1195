"""Checkout: price a cart for a destination (one summary with its digest), then place exactly that order.

The chat skill, the web chat and the REST API all call this; the summary's `pay_now` is the amount charged, to
the currency's minor unit, and the order stores goods, shipping, insurance, fees, duties and taxes apart.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commerce import cross_border
from commerce.catalog.service import get_variants, is_sellable_to, localized, variant_price
from commerce.checkout.address import validate_address
from commerce.checkout.errors import EmptyCart, SummaryChanged
from commerce.checkout.models import DeliveryAddress
from commerce.checkout.repository import CheckoutRepository
from commerce.checkout.schemas import (
    Address,
    AddressIn,
    CartLineIn,
    CheckoutSummary,
    RateUsed,
    ServiceChoice,
    SummaryCharge,
    SummaryItem,
)
from commerce.money import minor_units, quantize, require_currency
from commerce.orders.models import Order
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.orders.service import create_order
from kit.clock import utcnow
from kit.errors import ShopTalkError

SHOP, CARRIER = "shop_at_checkout", "carrier_on_delivery"
DIGEST_CHARS = 16  # "checkout:place:<digest>" stays within Telegram's 64 bytes of callback data
# Errors that end a checkout (the shopper is told why); any other quote refusal leaves a goods-only summary.
_FATAL = (cross_border.DestinationNotServed, cross_border.NotSellableToDestination, cross_border.ProductUnavailable,
          cross_border.NoExchangeRate, cross_border.StaleExchangeRate, cross_border.UnknownCountry)


def option_label(attributes: dict[str, str]) -> str:
    """A variant's options as a shopper reads them ("Red / M"); "" when it has none."""
    return " / ".join(str(value) for value in attributes.values() if str(value).strip())


def _digest(summary: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()[:DIGEST_CHARS]


async def summarize(session: AsyncSession, *, lines: Sequence[CartLineIn], country: str, currency: str,
                    service: str | None = None, address: Address | None = None, email: str | None = None,
                    locale: str = "en") -> CheckoutSummary:
    """What placing this cart for `country` would charge now, in `currency`, line by line.

    Raises EmptyCart, UnknownSku, and the cross-border refusals that end a checkout (DestinationNotServed,
    NotSellableToDestination, ProductUnavailable, NoExchangeRate, StaleExchangeRate). A service the destination
    does not offer falls back to its default. Without landed-cost rules for the destination the summary has the
    goods only (incoterm None)."""
    if not lines:
        raise EmptyCart("The cart is empty.")
    country, target = country.upper(), require_currency(currency)
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    variants = await get_variants(session, skus=list(wanted))
    for sku, variant in variants.items():
        product = variant.product
        if not (product.active and variant.active):
            raise cross_border.ProductUnavailable(f"{localized(product.title, 'en')} is no longer sold.", sku=sku)
        if not is_sellable_to(product, country):
            name = cross_border.country_name(country)
            raise cross_border.NotSellableToDestination(f"{localized(product.title, 'en')} can't be sold to {name}.",
                                                        sku=sku, country=country, country_name=name)
    quote_lines = [{"sku": sku, "quantity": quantity} for sku, quantity in wanted.items()]
    quote: cross_border.Quote | None
    try:
        try:
            quote = await cross_border.quote(session, lines=quote_lines, destination=country, currency=target,
                                             service=service)
        except cross_border.ServiceNotOffered:
            quote = await cross_border.quote(session, lines=quote_lines, destination=country, currency=target)
    except _FATAL:
        raise
    except ShopTalkError:
        quote = None

    items: list[SummaryItem] = []
    rates: list[RateUsed] = []
    charges: list[SummaryCharge] = []
    services: list[ServiceChoice] = []
    chosen: ServiceChoice | None = None
    if quote is not None:
        for item in quote.items:
            variant = variants[item.sku]
            items.append(SummaryItem(sku=item.sku, title=localized(variant.product.title, locale),
                                     options=option_label(variant.attributes), quantity=item.quantity,
                                     unit_price=item.unit_price, line_total=item.line_total))
        for charge in quote.charges:
            if charge.kind == "goods" or (charge.amount == 0 and charge.kind != "shipping"):
                continue
            charges.append(SummaryCharge(kind=charge.kind, label=charge.label, amount=charge.amount,
                                         collected_by=charge.collected_by))
        rates = [RateUsed(from_currency=r.from_currency, to_currency=r.to_currency, rate=r.rate,
                          as_of=r.as_of.isoformat(), markup_percent=r.markup_percent) for r in quote.rates]
        services = await _service_choices(session, quote, quote_lines)
        chosen = next((s for s in services if s.service == quote.delivery.service), None)
        if chosen is None:
            shipping_line = next(c.amount for c in quote.charges if c.kind == "shipping")
            chosen = ServiceChoice(service=quote.delivery.service, name=quote.delivery.service_name,
                                   shipping=shipping_line, min_days=quote.delivery.min_days,
                                   max_days=quote.delivery.max_days)
    else:
        for sku, quantity in wanted.items():
            variant = variants[sku]
            product = variant.product
            conversion = await cross_border.convert(session, amount=variant_price(variant, product),
                                                    from_currency=product.currency, to_currency=target)
            unit_price = quantize(conversion.amount, target)
            if product.currency != target and all(r.from_currency != product.currency for r in rates):
                rates.append(RateUsed(from_currency=product.currency, to_currency=target, rate=conversion.rate,
                                      as_of=conversion.as_of.isoformat(), markup_percent=conversion.markup_percent))
            items.append(SummaryItem(sku=sku, title=localized(product.title, locale),
                                     options=option_label(variant.attributes), quantity=quantity,
                                     unit_price=unit_price, line_total=unit_price * quantity))

    def total(kind: str) -> Decimal:
        return sum((c.amount for c in charges if c.kind == kind), Decimal(0))

    goods = sum((i.line_total for i in items), Decimal(0))
    due = sum((c.amount for c in charges if c.collected_by == CARRIER), Decimal(0))
    pay_now = quantize(goods + sum((c.amount for c in charges if c.collected_by == SHOP), Decimal(0)), target)
    incoterm = None if quote is None else ("DAP" if due > 0 else "DDP")
    shown = {"country": country, "currency": target, "email": email,
             "address": address.model_dump(mode="json") if address else None,
             "items": [[i.sku, i.quantity, str(i.unit_price)] for i in items],
             "charges": [[c.kind, str(c.amount), c.collected_by] for c in charges],
             "service": chosen.service if chosen else None, "pay_now": str(pay_now), "due": str(due)}
    return CheckoutSummary(
        country=country, currency=target, minor_units=minor_units(target), items=items, goods=goods,
        charges=charges, shipping=total("shipping"), insurance=total("insurance"), fees=total("fees"),
        duties=total("duty"), taxes=total("import_tax"), pay_now=pay_now, due_on_delivery=quantize(due, target),
        incoterm=incoterm, service=chosen, services=services, exchange_rates=rates, address=address, email=email,
        digest=_digest(shown))


async def _service_choices(session: AsyncSession, quote: cross_border.Quote,
                           quote_lines: list[dict[str, object]]) -> list[ServiceChoice]:
    """Every service to the destination that takes the parcel, each priced by the quote engine itself, so a
    button's price is the summary's shipping line once it is chosen."""
    try:
        offered = await cross_border.shipping_options(
            session, destination=quote.destination, currency=quote.currency,
            weight_grams=sum(item.weight_grams * item.quantity for item in quote.items),
            value=sum((item.line_total for item in quote.items), Decimal(0)))
    except ShopTalkError:
        return []
    choices = []
    for option in offered:
        try:
            priced = (quote if option.service == quote.delivery.service else await cross_border.quote(
                session, lines=quote_lines, destination=quote.destination, currency=quote.currency,
                service=option.service))
        except ShopTalkError:
            continue  # this service cannot carry the parcel after all: not offered
        shipping = next(c.amount for c in priced.charges if c.kind == "shipping")
        choices.append(ServiceChoice(service=option.service, name=option.name, shipping=shipping,
                                     min_days=option.min_days, max_days=option.max_days))
    return choices


async def place_order(session: AsyncSession, *, digest: str, lines: Sequence[CartLineIn], country: str,
                      currency: str, channel: str, external_id: str, service: str | None = None,
                      address: Address | None = None, email: str | None = None, shopper_id: int | None = None,
                      expires_in_minutes: int | None = None, locale: str = "en") -> tuple[Order, bool]:
    """Reserve the stock and create the order in pending_payment exactly as the summary with `digest` showed;
    (order, created).

    Idempotent on (channel, external_id): a second "Place order" returns the first order. SummaryChanged (with
    the new summary in `extra["summary"]`) when anything charged differs from what the shopper saw."""
    summary = await summarize(session, lines=lines, country=country, currency=currency, service=service,
                              address=address, email=email, locale=locale)
    if summary.digest != digest:
        raise SummaryChanged("Prices, stock or delivery changed since the summary was shown.",
                             summary=summary.model_dump(mode="json"))
    data = OrderIn(
        channel=channel, external_id=external_id, currency=summary.currency, shopper_id=shopper_id, email=email,
        postcode=address.postcode if address else None, country=summary.country,
        lines=[OrderLineIn(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price) for i in summary.items],
        shipping=summary.shipping, shipping_service=summary.service.service if summary.service else None,
        insurance=summary.insurance, fees=summary.fees, duties=summary.duties, taxes=summary.taxes,
        due_on_delivery=summary.due_on_delivery, incoterm=summary.incoterm,
        exchange_rates=[r.model_dump(mode="json") for r in summary.exchange_rates],
        recipient=address.recipient if address else None, phone=address.phone if address else None,
        address=address.model_dump(mode="json") if address else None, summary_digest=summary.digest,
        expires_at=utcnow() + timedelta(minutes=expires_in_minutes) if expires_in_minutes else None)
    order, created = await create_order(session, data=data)
    if created and order.total != summary.pay_now:  # the order is the summary; anything else is our bug
        raise AssertionError(f"order total {order.total} != summary {summary.pay_now}")
    return order, created


async def save_address(session: AsyncSession, *, owner: str, data: AddressIn,
                       shopper_id: int | None = None) -> Address:
    """Validate `data` for its country and keep it as `owner`'s newest address; InvalidAddress names the field."""
    address = validate_address(data)
    session.add(DeliveryAddress(owner=owner, shopper_id=shopper_id, country=address.country,
                                fields=address.model_dump(mode="json"), created_at=utcnow()))
    await session.flush()
    return address


async def last_address(session: AsyncSession, *, owner: str, shopper_id: int | None = None) -> Address | None:
    """The newest address this chat (or this shopper on any channel) gave; None for a first-time shopper."""
    row = await CheckoutRepository(session).last_address(owner=owner, shopper_id=shopper_id)
    return Address.model_validate(row.fields) if row is not None else None

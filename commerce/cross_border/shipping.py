"""Shipping: the zone that serves a country, service prices by weight and value, delivery times."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.cross_border.errors import DestinationNotServed, InvalidWeight, ServiceNotOffered, TooHeavy
from commerce.cross_border.fx import convert, settings
from commerce.cross_border.geography import add_business_days, country_name, require_country
from commerce.cross_border.models import ShippingService, ShippingZone
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import ShippingOption
from commerce.money import quantize, require_currency
from kit.clock import utcnow

GRAMS_PER_KG = 1000


async def zone_for(session: AsyncSession, *, country: str) -> ShippingZone:
    """The zone that ships to `country`, or DestinationNotServed ("we can't ship to Brazil")."""
    code = require_country(country)
    for zone in await CrossBorderRepository(session).zones():
        if code in zone.countries:
            if zone.served and zone.services:
                return zone
            break
    name = country_name(code)
    raise DestinationNotServed(f"We can't ship to {name}.", country=code, country_name=name)


async def served_destinations(session: AsyncSession, *, limit: int) -> list[str]:
    """Up to `limit` countries the shop ships to, taken in turn from each served zone (its first country, then the
    next zone's...): a spread of the shop's zones, for a question where the shopper picks a destination."""
    lists = [list(zone.countries) for zone in await CrossBorderRepository(session).zones()
             if zone.served and zone.services and zone.countries]
    out: list[str] = []
    for round_ in range(max((len(c) for c in lists), default=0)):
        for countries in lists:
            if round_ < len(countries) and countries[round_].upper() not in out:
                out.append(countries[round_].upper())
            if len(out) == limit:
                return out
    return out


def pick_service(zone: ShippingZone, service: str | None) -> ShippingService:
    wanted = (service or "standard").strip().lower()
    for candidate in zone.services:
        if candidate.service == wanted:
            return candidate
    offered = ", ".join(s.service for s in zone.services)
    raise ServiceNotOffered(f"{wanted!r} delivery is not offered to this destination; choose one of: {offered}.",
                            service=wanted, offered=[s.service for s in zone.services])


def check_weight(weight_grams: int) -> None:
    if weight_grams <= 0:
        raise InvalidWeight("The parcel weighs nothing; the product's weight must be set before we can quote "
                            "shipping.", weight_grams=weight_grams)


def shipping_price(service: ShippingService, *, weight_grams: int, goods_value: Decimal) -> Decimal:
    """Price in the service's currency: base + price per started kg, free at or over `free_over` goods value."""
    check_weight(weight_grams)
    if weight_grams > service.max_weight_grams:
        raise TooHeavy(f"The parcel weighs {weight_grams} g; {service.name} takes at most "
                       f"{service.max_weight_grams} g.", weight_grams=weight_grams,
                       max_weight_grams=service.max_weight_grams)
    if service.free_over is not None and goods_value >= service.free_over:
        return Decimal(0)
    started_kg = -(-weight_grams // GRAMS_PER_KG)
    return service.base_price + service.price_per_kg * started_kg


async def shipping_options(session: AsyncSession, *, destination: str, weight_grams: int, value: Decimal,
                           currency: str | None = None, on: date | None = None) -> list[ShippingOption]:
    """Every delivery service to `destination` for a parcel of `weight_grams` worth `value`, priced in `currency`.

    `currency` (default: the shop's base currency) is both the currency of `value` and of the prices returned.
    Raises DestinationNotServed, InvalidWeight, UnknownCountry, UnknownCurrency, StaleExchangeRate.
    """
    target = require_currency(currency or (await settings(session))["fx_base"])
    check_weight(weight_grams)
    zone = await zone_for(session, country=destination)
    today = on or utcnow().date()
    options: list[ShippingOption] = []
    for service in zone.services:
        if weight_grams > service.max_weight_grams:
            continue
        goods_in_service = (await convert(session, amount=value, from_currency=target,
                                          to_currency=service.currency, on=today)).amount
        price = shipping_price(service, weight_grams=weight_grams, goods_value=goods_in_service)
        shown = (await convert(session, amount=price, from_currency=service.currency, to_currency=target,
                               on=today)).amount
        options.append(ShippingOption(
            service=service.service, name=service.name, price=quantize(shown, target), currency=target,
            insurance=quantize(value * service.insurance_percent / 100, target),
            min_days=service.min_days, max_days=service.max_days,
            earliest=add_business_days(today, service.min_days), latest=add_business_days(today, service.max_days),
            ships_from=zone.warehouse))
    if not options:
        raise TooHeavy(f"No service to {country_name(require_country(destination))} "
                       f"takes a parcel of {weight_grams} g.", weight_grams=weight_grams)
    return options

"""Landed-cost quotes: goods, shipping, insurance, duty, import tax and fees, and who collects each."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.service import get_variants, is_sellable_to, localized, variant_price
from commerce.cross_border.errors import (
    InvalidQuoteRequest,
    NoImportRule,
    NotSellableToDestination,
    ProductUnavailable,
)
from commerce.cross_border.fx import Conversion, convert, exchange_rate
from commerce.cross_border.geography import add_business_days, country_name, require_country
from commerce.cross_border.models import DutyRate, ImportRule, ImportTaxRate
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import (
    DeliveryEstimate,
    Quote,
    QuoteCharge,
    QuoteItem,
    QuoteLineIn,
    RateUsed,
    Source,
)
from commerce.cross_border.shipping import check_weight, pick_service, shipping_price, zone_for
from commerce.money import format_money, quantize, require_currency
from kit.clock import utcnow

SHOP, CARRIER = "shop_at_checkout", "carrier_on_delivery"
HUNDRED = Decimal(100)


@dataclass
class _Pricing:
    """Conversions done for one quote, remembered so the quote can say which rates it used and how old."""

    session: AsyncSession
    on: date
    used: dict[tuple[str, str], RateUsed] = field(default_factory=dict)

    rates: dict[tuple[str, str, bool], Conversion] = field(default_factory=dict)

    async def _rate(self, source: str, target: str, *, markup: bool) -> Conversion:
        key = (source, target, markup)
        if key not in self.rates:
            # One lookup per currency pair and quote: convert() checks freshness and applies the markup.
            unit = await convert(self.session, amount=Decimal(1), from_currency=source, to_currency=target,
                                 on=self.on)
            if not markup and unit.markup_percent:
                mid, _ = await exchange_rate(self.session, from_currency=source, to_currency=target, on=self.on)
                unit = replace(unit, amount=mid, rate=mid, markup_percent=Decimal(0))
            self.rates[key] = unit
            if markup and source != target:
                self.used[(source, target)] = RateUsed(
                    from_currency=source, to_currency=target, rate=unit.rate, as_of=unit.as_of, age_days=unit.age,
                    markup_percent=unit.markup_percent)
        return self.rates[key]

    async def price(self, amount: Decimal, source: str, target: str) -> Decimal:
        """A shop price in the shopper's currency (the merchant's markup applies)."""
        return amount * (await self._rate(source, target, markup=True)).rate

    async def mid(self, amount: Decimal, source: str, target: str) -> Decimal:
        """Thresholds and official charges: the mid rate, no markup (but never a stale rate)."""
        if source == target:
            return amount
        return amount * (await self._rate(source, target, markup=False)).rate


def _normalise_lines(lines: Sequence[QuoteLineIn | dict[str, Any]]) -> dict[str, int]:
    if not lines:
        raise InvalidQuoteRequest("A quote needs at least one product line.")
    merged: dict[str, int] = {}
    for raw in lines:
        line = raw if isinstance(raw, QuoteLineIn) else QuoteLineIn.model_validate(raw)
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    return merged


def _duty_rate(rates: Sequence[DutyRate], chapter: str | None, origin: str | None) -> DutyRate | None:
    """Most specific row wins: chapter+origin, chapter, default+origin, default."""
    def score(row: DutyRate) -> int | None:
        if row.hs_chapter not in (None, chapter) or row.origin not in (None, origin):
            return None
        return (2 if row.hs_chapter is not None else 0) + (1 if row.origin is not None else 0)
    ranked = [(s, r.effective_from, r.id, r) for r in rates if (s := score(r)) is not None]
    return max(ranked, key=lambda t: (t[0], t[1], t[2]))[3] if ranked else None


def _source(title: str, url: str, notes: str = "") -> Source:
    return Source(title=title, url=url, notes=notes)


async def quote(session: AsyncSession, *, lines: Sequence[QuoteLineIn | dict[str, Any]], destination: str,
                currency: str, service: str | None = None, on: date | None = None) -> Quote:
    """The landed cost of `lines` ({sku, quantity}) delivered to `destination`, priced in `currency`.

    Every charge is a line (goods, shipping, insurance when the service insures, customs duty, import
    VAT/GST/sales tax, fees) rounded to the currency's minor unit, and `total` is their sum. Each line says
    whether the shop collects it at checkout (DDP: EU IOSS <= EUR 150, UK <= GBP 135, AU GST <= AUD 1000, ...)
    or the carrier collects it on delivery (DAP). `on` quotes as of another day (rules have effective dates).

    Raises (each with a stable code): UnknownCountry, UnknownCurrency, UnknownSku, DestinationNotServed,
    NotSellableToDestination, ProductUnavailable, InvalidWeight, ServiceNotOffered, TooHeavy,
    NoExchangeRate, StaleExchangeRate, NoImportRule.
    """
    country = require_country(destination)
    target = require_currency(currency)
    today = on or utcnow().date()
    wanted = _normalise_lines(lines)
    zone = await zone_for(session, country=country)
    chosen = pick_service(zone, service)
    name = country_name(country)
    variants = await get_variants(session, skus=list(wanted))
    pricing = _Pricing(session, today)
    repo = CrossBorderRepository(session)

    items: list[QuoteItem] = []
    weight = 0
    for sku, quantity in wanted.items():
        variant = variants[sku]
        product = variant.product
        title = localized(product.title, "en")
        if not (product.active and variant.active):
            raise ProductUnavailable(f"{title} is no longer sold.", sku=sku)
        if not is_sellable_to(product, country):
            raise NotSellableToDestination(f"{title} can't be sold to {name}.", sku=sku, country=country,
                                           country_name=name)
        unit_weight = variant.weight_grams if variant.weight_grams is not None else product.weight_grams
        check_weight(unit_weight or 0)
        weight += unit_weight * quantity
        unit_price = quantize(await pricing.price(variant_price(variant, product), product.currency, target), target)
        items.append(QuoteItem(sku=sku, title=title, quantity=quantity, hs_chapter=product.category.hs_chapter,
                               unit_price=unit_price, line_total=unit_price * quantity, currency=target,
                               weight_grams=unit_weight))
    goods = sum((i.line_total for i in items), Decimal(0))

    goods_in_service_currency = await pricing.mid(goods, target, chosen.currency)
    shipping_native = shipping_price(chosen, weight_grams=weight, goods_value=goods_in_service_currency)
    shipping = quantize(await pricing.price(shipping_native, chosen.currency, target), target)
    insurance = quantize(goods * chosen.insurance_percent / HUNDRED, target)

    dest_tax = await repo.tax_rate(country=country, on=today)
    dest_region = dest_tax.region if dest_tax else country
    origin = zone.origin_country
    origin_tax = await repo.tax_rate(country=origin, on=today) if origin else None
    origin_region = origin_tax.region if origin_tax else origin
    sources: list[Source] = []

    charges = [
        QuoteCharge(kind="goods", label="Goods", amount=goods, currency=target, collected_by=SHOP),
        QuoteCharge(kind="shipping", label=f"Shipping ({chosen.name})", amount=shipping, currency=target,
                    collected_by=SHOP),
    ]
    if chosen.insurance_percent > 0:
        charges.append(QuoteCharge(kind="insurance", label="Insurance", amount=insurance, currency=target,
                                   collected_by=SHOP, rate_percent=chosen.insurance_percent, basis=goods))

    scheme: str | None
    if origin_region is not None and origin_region == dest_region:
        # Same customs territory (e.g. Rotterdam to Berlin): no customs; destination VAT charged by the shop.
        if dest_tax is None:
            raise NoImportRule(f"We have no tax rate for {name}.", country=country)
        tax_base = goods + shipping + insurance
        tax = quantize(tax_base * dest_tax.rate / HUNDRED, target)
        charges += [
            QuoteCharge(kind="duty", label="Customs duty", amount=Decimal(0), currency=target, collected_by=SHOP,
                        note="No customs: shipped within the same customs territory."),
            QuoteCharge(kind="import_tax", label=f"{dest_tax.tax_name} {dest_tax.rate.normalize():f}% ({name})",
                        amount=tax, currency=target, collected_by=SHOP, rate_percent=dest_tax.rate, basis=tax_base),
            QuoteCharge(kind="fees", label="Fees", amount=Decimal(0), currency=target, collected_by=SHOP),
        ]
        customs = "domestic"
        scheme = None
        who = (f"No customs. The shop charges {dest_tax.tax_name} at checkout; nothing to pay on delivery."
               if tax else "No customs and nothing to pay on delivery.")
        sources.append(_source(dest_tax.source_title, dest_tax.source_url, dest_tax.notes))
    else:
        rule = await repo.import_rule(region=dest_region, on=today)
        if rule is None or dest_tax is None:
            raise NoImportRule(f"We can't estimate import duties and taxes for {name} yet.", country=country,
                               country_name=name)
        customs_charges, customs, who = await _import_charges(
            pricing, rule=rule, tax=dest_tax, duty_rates=await repo.duty_rates(region=dest_region, on=today),
            items=items, origin=origin, goods=goods, shipping=shipping, insurance=insurance, target=target,
            country_label=name)
        charges += customs_charges
        scheme = rule.scheme if customs == "low_value" and rule.low_value_collector == "shop" else None
        sources.append(_source(rule.source_title, rule.source_url, rule.notes))
        sources.append(_source(dest_tax.source_title, dest_tax.source_url, dest_tax.notes))

    for charge in charges:
        charge.amount = quantize(charge.amount, target)  # zeros too, so every amount shows the minor unit
    total = sum((c.amount for c in charges), quantize(Decimal(0), target))
    on_delivery = sum((c.amount for c in charges if c.collected_by == CARRIER), quantize(Decimal(0), target))
    rates = list(pricing.used.values())
    return Quote(
        destination=country, destination_name=name, currency=target, items=items, charges=charges, total=total,
        pay_at_checkout=total - on_delivery, pay_on_delivery=on_delivery,
        incoterm="DAP" if on_delivery > 0 else "DDP", customs=customs, who_collects=who, scheme=scheme,
        delivery=DeliveryEstimate(service=chosen.service, service_name=chosen.name, min_days=chosen.min_days,
                                  max_days=chosen.max_days, earliest=add_business_days(today, chosen.min_days),
                                  latest=add_business_days(today, chosen.max_days), ships_from=zone.warehouse),
        rates=rates, oldest_rate_age_days=max((r.age_days for r in rates), default=0), sources=sources,
        quoted_on=today)


async def _import_charges(pricing: _Pricing, *, rule: ImportRule, tax: ImportTaxRate, duty_rates: Sequence[DutyRate],
                          items: list[QuoteItem], origin: str | None, goods: Decimal, shipping: Decimal,
                          insurance: Decimal, target: str, country_label: str) -> tuple[list[QuoteCharge], str, str]:
    """Duty, import tax and fee lines for a consignment entering `rule.region`, with who collects them."""
    transport = shipping + insurance
    # Customs value of the goods: Japan values goods bought for personal use at 60% of the retail price.
    valued_share = rule.personal_use_value_percent / HUNDRED
    customs_goods = goods * valued_share
    counted = customs_goods + transport if rule.threshold_basis == "goods_shipping" else customs_goods
    value_in_rule_currency = await pricing.mid(counted, target, rule.currency)
    low_value = rule.low_value_max is not None and value_in_rule_currency <= rule.low_value_max
    collector = rule.low_value_collector if low_value else rule.high_value_collector
    collected_by = SHOP if collector == "shop" else CARRIER

    duty_mode = rule.low_value_duty if low_value else "normal"
    duty_note: str | None = None
    duty_rate_shown: Decimal | None = None
    if duty_mode == "none":
        duty = Decimal(0)
        duty_note = "No customs duty below the low-value threshold."
    elif duty_mode == "flat_per_item":
        tariff_items = len({i.hs_chapter or i.sku for i in items})
        flat = (rule.flat_duty_amount or Decimal(0)) * tariff_items
        duty = quantize(await pricing.mid(flat, rule.currency, target), target)
        duty_note = f"Flat {rule.flat_duty_amount} {rule.currency} per tariff item x {tariff_items}."
    else:
        extra_share = (transport / customs_goods if rule.duty_basis == "goods_shipping" and customs_goods > 0
                       else Decimal(0))
        raw = Decimal(0)
        shown: set[Decimal] = set()
        for item in items:
            row = _duty_rate(duty_rates, item.hs_chapter, origin)
            rate = row.rate if row else Decimal(0)
            shown.add(rate)
            raw += item.line_total * valued_share * (1 + extra_share) * rate / HUNDRED
        duty = quantize(raw, target)
        duty_rate_shown = shown.pop() if len(shown) == 1 else None
        duty_note = "Estimated from the duty rate of each product's HS chapter."

    if low_value and rule.low_value_tax == "none":
        import_tax = Decimal(0)
        multiplier = Decimal(0)
        tax_base = Decimal(0)
    else:
        multiplier = rule.low_value_tax_multiplier if low_value else Decimal(1)
        tax_base = customs_goods + transport + duty
        import_tax = quantize(tax_base * tax.rate / HUNDRED * multiplier, target)
    effective_tax_rate = tax.rate * multiplier

    owed = duty + import_tax
    fee = Decimal(0)
    if collected_by == CARRIER and owed > 0 and rule.clearance_fee > 0:
        fee = quantize(await pricing.mid(rule.clearance_fee, rule.currency, target), target)
    fee_collector = collected_by if fee else SHOP

    threshold = (f"{format_money(rule.low_value_max, rule.currency)}" if rule.low_value_max is not None else None)
    if owed == 0:
        who = (f"Nothing to pay on delivery: the parcel is within the {threshold} limit for {country_label}."
               if low_value and threshold else "No duty or import tax is due.")
        collected_by = SHOP
    else:
        owed_names = " and ".join(n for n, a in (("duty", duty), (tax.tax_name, import_tax)) if a)
        if collected_by == SHOP:
            who = (f"The shop collects {owed_names} at checkout ({rule.scheme or 'low-value scheme'}, parcels up "
                   f"to {threshold}); nothing to pay on delivery.")
        else:
            why = f"above the {threshold} limit" if threshold and not low_value else "on every parcel"
            who = f"You pay {owed_names} to the carrier on delivery ({why}); the amounts shown are our estimate."

    tax_label = f"Import {tax.tax_name} {effective_tax_rate.normalize():f}%"
    charges = [
        QuoteCharge(kind="duty", label="Customs duty", amount=duty, currency=target, collected_by=collected_by,
                    rate_percent=duty_rate_shown, note=duty_note),
        QuoteCharge(kind="import_tax", label=tax_label, amount=import_tax, currency=target, collected_by=collected_by,
                    rate_percent=effective_tax_rate, basis=tax_base if import_tax else None,
                    note=tax.notes or None),
        QuoteCharge(kind="fees", label="Customs clearance fee", amount=fee, currency=target,
                    collected_by=fee_collector),
    ]
    return charges, "low_value" if low_value else "full", who

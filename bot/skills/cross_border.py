"""Delivered prices (goods, shipping, duty, VAT, who collects, delivery days), shipping times, returns rules."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from bot import i18n
from bot.messages import Button
from bot.skills import faq
from bot.skills.base import Answer, Press, Question, Skill, Turn
from commerce import cross_border
from commerce.catalog.errors import UnknownSku
from commerce.catalog.service import get_product
from commerce.inventory.service import available_stock
from commerce.orders.service import recent_destinations
from commerce.search.service import search_products
from kit.errors import NotFound, ShopTalkError

MENTIONS_CART = re.compile(r"\b(cart|basket|order)\b|购物车|订单", re.IGNORECASE)
REFERS_TO_THIS = re.compile(r"\b(this|it|these|that|them|those)\b|这个|这款|这件|它|这些|那个", re.IGNORECASE)
TYPICAL_PARCEL_GRAMS = 500
TYPICAL_VALUE = Decimal(50)
COMMON_DESTINATIONS = 6  # country buttons offered when the bot asks where to deliver
_ORDERS_READ = 500  # latest orders counted for the shop's common destinations


async def common_destinations(turn: Turn) -> list[str]:
    """The countries this shop delivers to most (its latest orders), the shop's default country first; with few or
    no orders, filled up with countries its shipping zones serve (one of each zone in turn). Read from the shop's
    own database on each question (one grouped statement over the latest orders, one over the zones), so two shops
    or databases in one process never share an answer."""
    default = turn.deps.settings.locale.default_country.upper()
    countries = [default, *await recent_destinations(turn.session, orders=_ORDERS_READ, limit=COMMON_DESTINATIONS)]
    if len(dict.fromkeys(countries)) < COMMON_DESTINATIONS:
        countries += await cross_border.served_destinations(turn.session, limit=COMMON_DESTINATIONS + 1)
    return list(dict.fromkeys(countries))[:COMMON_DESTINATIONS]


async def destination_buttons(turn: Turn, *, payload: str = "country:set:") -> list[Button]:
    """A button per common destination, named in the shopper's language, pressing `payload` + the country code."""
    return [turn.button_text(turn.country_name(code), f"{payload}{code}") for code in await common_destinations(turn)]


async def ask_country(turn: Turn, intent: str, *, question: str | None = None) -> None:
    """Ask where to deliver, with a button per common destination (never assume one silently); `question`: the
    message to answer from the FAQ once the country is known."""
    buttons = await destination_buttons(turn)
    turn.ask(intent=intent, slot="country", key="ask_quote_country_buttons", buttons=buttons,
             data={"question": question} if question else None)


def _take_destination(turn: Turn) -> str | None:
    """The country named in the message becomes the delivery country; the currency named becomes the display one."""
    country = turn.entity("country")
    if country:
        turn.conversation.country = str(country).upper()
    currency = turn.entity("currency")
    if currency:
        turn.conversation.currency = str(currency).upper()
    return turn.conversation.country


async def _lines_in_context(turn: Turn, *, implicit: bool) -> tuple[list[dict[str, int | str]], str | None]:
    """What the question is about: a product named in it, "this" (the last product shown), or "my cart"."""
    named = turn.entity("product")
    if named:
        result = await search_products(turn.session, query=str(named), limit=1)
        if result.hits:
            product = await get_product(turn.session, product_id=result.hits[0].product_id)
            return [{"sku": result.hits[0].sku, "quantity": 1}], turn.title(product)
    cart: list[dict[str, int | str]] = [{"sku": str(x["sku"]), "quantity": int(x["quantity"])}
                                        for x in turn.conversation.cart or []]
    if MENTIONS_CART.search(turn.text) and cart:
        return cart, None
    if not (implicit or REFERS_TO_THIS.search(turn.text)):
        return [], None  # "do you ship to Japan?" is about delivery, not about the product shown last
    for product_id in (turn.conversation.last_products or [])[:1]:
        try:
            product = await get_product(turn.session, product_id=product_id)
        except NotFound:
            break
        stock = await available_stock(turn.session, skus=[v.sku for v in product.variants])
        sku = next((v.sku for v in product.variants if stock.get(v.sku, 0) > 0), product.variants[0].sku)
        return [{"sku": sku, "quantity": 1}], turn.title(product)
    return cart, None


async def answer(turn: Turn, intent: str) -> bool:
    """Answer a shipping / customs / currency / returns question; False when the FAQ should answer instead."""
    had_country = turn.entity("country") is not None
    country = _take_destination(turn)
    if intent == "return_refund":
        if not await returns(turn, country or turn.country):
            return False
        if country is None:  # the shop's default was assumed: say so, and how to change it
            turn.say("assumed_country", country=turn.country_name(turn.country))
        return True
    # A customs question right after seeing a product is about that product, even without "this".
    lines, title = await _lines_in_context(turn, implicit=intent == "customs_duties")
    if intent == "currency_payment" and not lines:
        if turn.entity("currency"):
            turn.say("currency_set", currency=turn.conversation.currency)
            return True
        return False
    if intent == "shipping_info" and not lines:
        if country is None:
            await ask_country(turn, intent)
            return True
        return await shipping_times(turn, country)
    if not lines:
        if intent == "customs_duties" and country is None:
            # "do i pay customs": who pays depends on the destination (the FAQ answers per country), so ask first
            # rather than answer for a country the shopper never named.
            await ask_country(turn, intent, question=turn.text)
            return True
        return False
    if country is None and not had_country:
        await ask_country(turn, intent)
        return True
    await quote(turn, lines, title, country or turn.country)
    return True


async def continue_with_country(turn: Turn, intent: str, data: dict[str, Any] | None = None) -> bool:
    if not turn.entity("country"):
        turn.ask(intent=intent, slot="country", key="bad_country", data=data)
        return True
    turn.conversation.pending = None
    return await _answer_with_country(turn, intent, data or {})


async def _answer_with_country(turn: Turn, intent: str, data: dict[str, Any]) -> bool:
    """The question that waited for the country, answered now: by the skill, else the FAQ for the message asked
    before (`data["question"]`); False when neither has an answer."""
    if await answer(turn, intent):
        return True
    question = str(data.get("question") or "")
    if not question:
        return False
    if not await faq.answer(turn, question=question):
        faq.say_none(turn)
    return True


async def quote(turn: Turn, lines: list[dict[str, int | str]], title: str | None, country: str) -> None:
    name = turn.country_name(country)
    # No savepoint around these read-only look-ups: a refusal (ShopTalkError) is raised in Python and leaves the
    # transaction as it was; a database error is not caught here and fails the turn as a whole.
    try:
        landed = await cross_border.quote(turn.session, lines=lines, destination=country, currency=turn.currency)
    except cross_border.DestinationNotServed:
        turn.say("not_shipped", country=name)
        return
    except (cross_border.NotSellableToDestination, cross_border.ProductUnavailable):
        turn.say("not_sellable_there", country=name)
        return
    except UnknownSku:
        turn.say("product_gone")
        return
    except cross_border.UnknownCountry:
        turn.say("bad_country")
        return
    except ShopTalkError:
        turn.say("quote_unavailable", country=name)
        return
    sums = {"goods": Decimal(0), "shipping": Decimal(0), "duty": Decimal(0), "import_tax": Decimal(0)}
    for charge in landed.charges:
        key = charge.kind if charge.kind in sums else "shipping"
        sums[key] += charge.amount
    currency = landed.currency
    collector = "quote_collect_carrier" if landed.pay_on_delivery > 0 else "quote_collect_seller"
    product_part = turn.t("quote.product_part", title=title) if title else ""
    turn.say("quote", country=name, product_part=product_part, goods=turn.money(sums["goods"], currency),
             shipping=turn.money(sums["shipping"], currency), duties=turn.money(sums["duty"], currency),
             taxes=turn.money(sums["import_tax"], currency), total=turn.money(landed.total, currency),
             collector=turn.t(collector), days_min=landed.delivery.min_days, days_max=landed.delivery.max_days,
             custom={"quote": landed.model_dump(mode="json", include={"destination", "currency", "total",
                                                                       "pay_at_checkout", "pay_on_delivery",
                                                                       "incoterm", "who_collects"})})


async def shipping_times(turn: Turn, country: str) -> bool:
    name = turn.country_name(country)
    try:  # read-only: no savepoint (see quote)
        options = await cross_border.shipping_options(turn.session, destination=country,
                                                      weight_grams=TYPICAL_PARCEL_GRAMS, value=TYPICAL_VALUE,
                                                      currency=turn.currency)
    except cross_border.DestinationNotServed:
        turn.say("not_shipped", country=name)
        return True
    except cross_border.UnknownCountry:
        turn.say("bad_country")
        return True
    except ShopTalkError:
        turn.say("quote_unavailable", country=name)
        return True
    if not options:
        turn.say("not_shipped", country=name)
        return True
    cheapest = min(options, key=lambda o: o.price)
    turn.say("shipping_times", country=name, days_min=min(o.min_days for o in options),
             days_max=max(o.max_days for o in options), shipping=turn.money(cheapest.price, cheapest.currency))
    return True


async def returns(turn: Turn, country: str) -> bool:
    try:  # read-only: no savepoint (see quote)
        policy = await cross_border.return_policy(turn.session, country=country, locale=turn.locale)
    except ShopTalkError:
        return False
    # Each sentence ends as its own language does (an untranslated policy quotes English for a Chinese shopper).
    sentences = [*policy.conditions, *([policy.notes] if policy.notes else [])]
    conditions = "".join(i18n.t(policy.locale, "returns_sentence", text=s.rstrip(" .。")) for s in sentences)
    turn.say("returns_rules", n=policy.window_days, country=turn.country_name(country), days=policy.window_days,
             conditions=conditions,
             payer=turn.t(f"payer.{policy.return_shipping_paid_by}"),
             duties=turn.t("word.yes" if policy.duties_refundable else "word.no"))
    return True


INTENTS = ("shipping_info", "customs_duties", "currency_payment", "return_refund")
skill = Skill("cross_border")


@skill.intent(*INTENTS)
async def for_intent(turn: Turn, intent: str) -> None:
    if not await answer(turn, intent) and not await faq.answer(turn):
        faq.say_none(turn)


def set_pressed_country(turn: Turn, press: Press) -> str | None:
    """The country code a destination button carries, now the conversation's country; None (said) when the
    payload is no two-letter code (a crafted press)."""
    code = press.arg.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        turn.say("bad_country")
        return None
    turn.conversation.country = code
    return code


@skill.payload("country:set:")
async def country_button(turn: Turn, press: Press) -> None:
    """A destination button: deliver there, then answer the question that asked for it."""
    code = set_pressed_country(turn, press)
    if code is None:
        return
    pending = turn.conversation.pending or {}
    intent = str(pending.get("intent") or "")
    turn.conversation.pending = None
    if intent in INTENTS and await _answer_with_country(turn, intent, pending.get("data") or {}):
        return
    turn.say("country_set", country=turn.country_name(code))


@skill.answer(*INTENTS, slot="country")
def read_country(turn: Turn, question: Question) -> Answer | None:
    if turn.entity("country") or not question.confident_other:
        return lambda: continue_with_country(turn, question.intent, question.data)
    return None

"""Checkout in the chat: country, e-mail and the delivery address asked and validated per country, the order
summary from `commerce.checkout` (what is paid now, what is due on delivery), "Place order", then payment with the
methods the merchant offers for the destination and channel. The rules live in commerce; this module only asks,
shows and calls."""
from __future__ import annotations

import re
import uuid
from typing import Any

from bot import i18n
from bot.conversations.service import remember_verified_order, verified_order
from bot.skills import faq, order_status
from bot.skills.base import Answer, Press, Question, Skill, Turn
from bot.skills.recommend import count_outcome
from commerce import cross_border
from commerce.catalog.errors import UnknownSku
from commerce.catalog.service import get_variant
from commerce.channels import service as sales_channels
from commerce.checkout import service as checkout_service
from commerce.checkout.address import address_fields, expected
from commerce.checkout.errors import EmptyCart, InvalidAddress, SummaryChanged
from commerce.checkout.schemas import Address, AddressIn, CartLineIn, CheckoutSummary
from commerce.inventory.errors import InsufficientStock
from commerce.orders.errors import OrderNotFound
from commerce.orders.models import Order
from commerce.orders.service import get_order_by_number
from commerce.payments import service as payments
from commerce.payments.errors import NoPaymentMethod, PaymentNotPossible, ProviderRefused, ProviderUnavailable
from commerce.payments.providers import provider_for
from kit.clock import utcnow
from kit.errors import NotFound
from kit.text import is_email_address

SERVICE_CODE = re.compile(r"^[a-z0-9_-]{1,40}$")  # "checkout:ship:<service>" (a shipping zone's service code)
SALES_CHANNEL_OF = {"telegram": ("telegram",), "webchat": ("webchat", "web"), "rest": ("web", "webchat")}
NO_POSTCODE = "-"  # conversation.postcode when the chosen address's country has no postcodes
FIELD_CHARS = 120
# Asking how checkout or paying works ("how do I pay", "怎么付款"), not asking to do it now.
HOW_TO = re.compile(r"^\s*(how (do|can|should|would|does) (i|we|you|one|it)|how to)\b|怎么|如何|怎样", re.IGNORECASE)


def _owner(turn: Turn) -> str:
    return f"{turn.inbound.channel}:{turn.inbound.sender_id}"[:240]


def _cart(turn: Turn) -> list[CartLineIn]:
    return [CartLineIn(sku=str(line["sku"]), quantity=int(line["quantity"])) for line in turn.conversation.cart or []]


async def start(turn: Turn) -> None:
    """Ask for what is missing (country, e-mail, delivery address), then show the order summary to confirm."""
    conversation = turn.conversation
    if not conversation.cart:
        # "how do I pay" with nothing in the cart asks how paying works: the shop's FAQ says it (payment methods).
        if HOW_TO.search(turn.text) and await faq.answer(turn):
            return
        turn.say("checkout_empty", buttons=[turn.button("button.search", "menu:search")])
        return
    if turn.entity("country"):
        conversation.country = str(turn.entity("country")).upper()
    if turn.entity("email") and is_email_address(str(turn.entity("email"))):
        conversation.email = str(turn.entity("email"))
    if not conversation.country:
        turn.ask(intent="checkout", slot="country", key="ask_country")
        return
    if not conversation.email:
        turn.ask(intent="checkout", slot="email", key="ask_email")
        return
    address = await _chosen_address(turn)
    if address is None:
        await _offer_saved_or_ask(turn)
        return
    summary = await _summarize(turn, address)
    if summary is not None:
        _show_summary(turn, summary)


# ---------------------------------------------------------------- delivery address

async def _chosen_address(turn: Turn) -> Address | None:
    """The address this checkout uses: the one given (or confirmed) last, while it is for the delivery country."""
    conversation = turn.conversation
    if not conversation.postcode:
        return None
    last = await checkout_service.last_address(turn.session, owner=_owner(turn), shopper_id=turn.shopper_id)
    if last is None or last.country != conversation.country or (last.postcode or NO_POSTCODE) != conversation.postcode:
        return None
    return last


def format_address(address: Address) -> str:
    parts = [address.recipient, *address.street, " ".join(p for p in (address.postcode, address.city) if p),
             address.district or "", address.region or "", address.country, address.phone]
    return ", ".join(p for p in parts if p)


async def _offer_saved_or_ask(turn: Turn) -> None:
    last = await checkout_service.last_address(turn.session, owner=_owner(turn), shopper_id=turn.shopper_id)
    if last is not None and last.country == turn.conversation.country:
        turn.ask(intent="checkout", slot="address_same", key="address.same", address=format_address(last),
                 buttons=[turn.button("button.same_address", "checkout:address:same"),
                          turn.button("button.new_address", "checkout:address:new")])
        return
    _ask_field(turn, {}, _fields(turn)[0])


def _fields(turn: Turn) -> list[str]:
    assert turn.conversation.country is not None
    return address_fields(turn.conversation.country)


def _ask_field(turn: Turn, collected: dict[str, str], field: str) -> None:
    assert turn.conversation.country is not None
    hint = expected(turn.conversation.country, field, region=collected.get("region"))
    key = f"address.ask_{field}" + ("_example" if hint and field in ("region", "postcode", "phone") else "")
    turn.ask(intent="checkout", slot="address", key=key, data={"fields": collected, "field": field},
             expected=hint, country=turn.country_name(turn.conversation.country))


async def use_saved_address(turn: Turn, same: bool) -> None:
    turn.conversation.pending = None
    last = await checkout_service.last_address(turn.session, owner=_owner(turn), shopper_id=turn.shopper_id)
    if same and last is not None and last.country == turn.conversation.country:
        turn.conversation.postcode = last.postcode or NO_POSTCODE
        await start(turn)
        return
    _ask_field(turn, {}, _fields(turn)[0])


async def fill_address(turn: Turn, data: dict[str, Any]) -> bool:
    """One answer of the address questions; when all are in, validate the address for its country (the wrong
    field is named with what it expects, and asked again) and go on to the summary."""
    conversation = turn.conversation
    assert conversation.country is not None
    collected = {str(k): str(v) for k, v in dict(data.get("fields") or {}).items()}
    field = str(data.get("field") or "recipient")
    answer = " ".join(turn.text.split())[:FIELD_CHARS]
    if not answer:
        _ask_field(turn, collected, field)
        return False
    collected[field] = answer
    fields = _fields(turn)
    missing = [f for f in fields if f not in collected]
    if missing:
        _ask_field(turn, collected, missing[0])
        return True
    try:
        address = await checkout_service.save_address(turn.session, owner=_owner(turn), shopper_id=turn.shopper_id,
                                                       data=AddressIn(
            country=conversation.country, recipient=collected.get("recipient", ""),
            street=[collected.get("street", "")], city=collected.get("city"), region=collected.get("region"),
            postcode=collected.get("postcode"), phone=collected.get("phone", "")))
    except InvalidAddress as error:
        wrong = str(error.extra.get("field", "street"))
        wrong = wrong if wrong in fields else fields[0]
        collected.pop(wrong, None)
        key = "address.required" if error.extra.get("reason") == "required" else "address.invalid"
        turn.say(key, field=turn.t(f"address.field.{wrong}"), country=turn.country_name(conversation.country),
                 expected=str(error.extra.get("expected") or "-"))
        _ask_field(turn, collected, wrong)
        return False
    except ValueError:  # a field longer than an address allows (pydantic)
        collected.pop(field, None)
        _ask_field(turn, collected, field)
        return False
    conversation.postcode = address.postcode or NO_POSTCODE
    conversation.pending = None
    await start(turn)
    return True


# ---------------------------------------------------------------- summary

async def _sales_channel(turn: Turn) -> str:
    candidates = SALES_CHANNEL_OF.get(turn.inbound.channel, ("web",))
    for code in candidates:
        try:
            await sales_channels.get_channel(turn.session, code=code)
            return code
        except NotFound:
            continue
    return candidates[0]


async def _catalogue_currency(turn: Turn) -> str | None:
    for line in turn.conversation.cart or []:
        try:
            return (await get_variant(turn.session, sku=str(line["sku"]))).product.currency
        except UnknownSku:
            continue
    return None


async def _summarize(turn: Turn, address: Address) -> CheckoutSummary | None:
    """The summary in the shopper's currency (the catalogue's when no fresh rate is known); None after saying why
    the cart can't be ordered."""
    conversation = turn.conversation
    assert conversation.country is not None
    currencies = [turn.currency]
    fallback = await _catalogue_currency(turn)
    if fallback and fallback not in currencies:
        currencies.append(fallback)
    for currency in currencies:
        try:
            return await checkout_service.summarize(
                turn.session, lines=_cart(turn), country=conversation.country, currency=currency,
                service=conversation.shipping_service, address=address, email=conversation.email,
                locale=turn.locale)
        except (cross_border.NoExchangeRate, cross_border.StaleExchangeRate):
            continue
        except EmptyCart:
            turn.say("checkout_empty", buttons=[turn.button("button.search", "menu:search")])
            return None
        except cross_border.NotSellableToDestination as error:
            turn.say("checkout_not_sellable", title=await _title(turn, str(error.extra.get("sku", ""))),
                     country=turn.country_name(conversation.country))
            return None
        except cross_border.DestinationNotServed:
            turn.say("not_shipped", country=turn.country_name(conversation.country))
            return None
        except (cross_border.ProductUnavailable, UnknownSku):
            turn.say("product_gone")
            return None
    turn.say("apology", code="no_exchange_rate")
    return None


async def _title(turn: Turn, sku: str) -> str:
    try:
        return turn.title((await get_variant(turn.session, sku=sku)).product)
    except UnknownSku:
        return sku


def _service_name(turn: Turn, service: str, name: str) -> str:
    """The shop's name for a delivery service; in another language, the shipped services' translation."""
    key = f"service.{service}"
    return turn.t(key) if turn.locale != i18n.DEFAULT_LOCALE and i18n.has_text(turn.locale, key) else name


def summary_texts(turn: Turn, summary: CheckoutSummary) -> dict[str, str]:
    """The summary's lines in the shopper's language: items, each charge on its own line, pay now, on delivery."""
    currency = summary.currency
    items = "\n".join(turn.t("cart_line", quantity=i.quantity, title=i.title,
                             sku=f"{i.options}, {i.sku}" if i.options else i.sku,
                             amount=turn.money(i.line_total, currency)) for i in summary.items)
    charges: list[str] = []
    on_delivery: list[str] = []
    for charge in summary.charges:
        amount = turn.money(charge.amount, currency)
        if charge.kind == "shipping" and summary.service is not None:
            text = turn.t("summary.shipping", service=_service_name(turn, summary.service.service,
                                                                  summary.service.name),
                          days_min=summary.service.min_days, days_max=summary.service.max_days, amount=amount)
        else:
            text = turn.t(f"summary.{charge.kind}", amount=amount)
        (on_delivery if charge.collected_by == "carrier_on_delivery" else charges).append(text)
    if summary.incoterm == "DAP":
        due = turn.t("summary.due_on_delivery", amount=turn.money(summary.due_on_delivery, currency),
                     items="; ".join(on_delivery))
    elif summary.incoterm == "DDP":
        due = turn.t("summary.ddp")
    else:
        due = turn.t("summary.no_estimate")
    return {"lines": items, "goods": turn.money(summary.goods, currency), "charges": "\n".join(charges),
            "pay_now": turn.money(summary.pay_now, currency), "on_delivery": due}


def _show_summary(turn: Turn, summary: CheckoutSummary) -> None:
    conversation = turn.conversation
    assert summary.address is not None
    # The other delivery services, each with exactly the shipping line the summary will show with it.
    switch = [turn.button("button.ship_with", f"checkout:ship:{choice.service}",
                          service=_service_name(turn, choice.service, choice.name), days_min=choice.min_days,
                          days_max=choice.max_days, price=turn.money(choice.shipping, summary.currency))
              for choice in summary.services if summary.service is None or choice.service != summary.service.service]
    attempt = uuid.uuid4().hex[:12]  # both presses of a double click read this one: one order
    turn.ask(intent="checkout", slot="confirm", key="checkout.summary",
             data={"digest": summary.digest, "attempt": attempt, "currency": summary.currency},
             buttons=[turn.button("button.place_order", f"checkout:place:{summary.digest}"), *switch,
                      turn.button("button.change_address", "checkout:address:new"),
                      turn.button("button.change_cart", "cart:view")],
             address=format_address(summary.address), email=conversation.email, **summary_texts(turn, summary))


async def choose_service(turn: Turn, service: str) -> None:
    """The shopper picked a delivery service on the summary ("checkout:ship:<code>"): show the summary with it.
    A code the destination does not offer (or a forged one) gets the destination's default service."""
    if SERVICE_CODE.match(service):
        turn.conversation.shipping_service = service
    await start(turn)


# ---------------------------------------------------------------- placing the order

async def confirm(turn: Turn, digest: str | None) -> None:
    """"Place order" (its button carries the summary's digest) or a clear yes (digest None: the summary asked
    about). Places the order only when the summary is still what the shopper saw; otherwise shows the new one."""
    conversation = turn.conversation
    pending = conversation.pending or {}
    data = (pending.get("data") or {}) if pending.get("slot") == "confirm" else {}
    seen = digest or data.get("digest")
    if not conversation.cart:
        conversation.pending = None
        turn.say("checkout_empty", buttons=[turn.button("button.search", "menu:search")])
        return
    address = await _chosen_address(turn) if conversation.country and conversation.email else None
    if address is None:
        await start(turn)
        return
    assert conversation.country is not None
    attempt = str(data.get("attempt") or seen)
    currency = str(data.get("currency") or await _summary_currency(turn, address) or turn.currency)
    lines = list(conversation.cart or [])
    try:
        order, _ = await checkout_service.place_order(
            turn.session, digest=str(seen), lines=_cart(turn), country=conversation.country,
            currency=currency,
            channel=await _sales_channel(turn), external_id=f"chat:{conversation.id}:{attempt}"[:120],
            service=conversation.shipping_service, address=address, email=conversation.email,
            shopper_id=turn.shopper_id, expires_in_minutes=await payments.order_expiry_minutes(
                turn.session, default=turn.deps.settings.payments.order_expiry_minutes),
            locale=turn.locale)
    except SummaryChanged:
        summary = await _summarize(turn, address)
        if summary is not None:
            turn.say("checkout_changed")
            _show_summary(turn, summary)
        return
    except InsufficientStock as error:
        available = int(error.extra.get("available", 0))
        turn.say("checkout_no_stock", n=available, sku=error.extra.get("sku", ""), available=available,
                 buttons=[turn.button("button.view_cart", "cart:view")])
        return
    conversation.pending = None
    for line in lines:
        if line.get("impression") is not None:
            await count_outcome(turn, int(line["impression"]), "purchase", order_id=order.id)
    conversation.cart = []
    conversation.postcode = None  # the next checkout offers this address again ("same as last time?")
    remember_verified_order(conversation, order.number, now=utcnow())  # the shopper who placed it may ask about it
    await offer_payment(turn, order, key="order.placed")


async def _summary_currency(turn: Turn, address: Address) -> str | None:
    """The currency the summary was shown in (the shopper's, or the catalogue's without a fresh rate)."""
    summary = await _summarize(turn, address)
    return summary.currency if summary is not None else None


# ---------------------------------------------------------------- paying

async def offer_payment(turn: Turn, order: Order, *, key: str = "pay.choose") -> None:
    """The order's amounts and a button per payment method the merchant offers for its country and channel."""
    methods = [m for m in await payments.methods_for(turn.session, country=order.country or "*",
                                                     channel=turn.inbound.channel)
               if m.provider != "telegram" or turn.inbound.channel == "telegram"]  # invoices exist in Telegram only
    buttons = [turn.button(f"button.pay.{m.provider}", f"pay:{m.provider}:{order.number}") for m in methods]
    due = (turn.t("summary.due_on_delivery", amount=turn.money(order.due_on_delivery, order.currency), items="")
           if order.due_on_delivery > 0 else "")
    expires = i18n.format_day(turn.locale, order.expires_at) if order.expires_at else "-"
    turn.say(key, number=order.number, ref=order.public_ref, pay_now=turn.money(order.total, order.currency),
             on_delivery=due, expires=expires, buttons=buttons,
             custom={"order_number": order.number, "order_ref": order.public_ref, "total": str(order.total),
                     "currency": order.currency, "due_on_delivery": str(order.due_on_delivery),
                     "status": order.status})
    if not methods:
        turn.say("pay.none")


def owns(turn: Turn, order: Order) -> bool:
    """Placed in this conversation, or proved here (order status' e-mail/postcode check) not long ago."""
    if order.external_id.startswith(f"chat:{turn.conversation.id}:"):
        return True
    return verified_order(turn.conversation, order.number, now=utcnow(),
                          ttl_seconds=turn.deps.settings.security.verified_order_ttl_seconds)


async def pay(turn: Turn, provider_name: str, number: str) -> None:
    """"pay:<provider>:<order number>": open (or re-send) the payment of an order this shopper owns."""
    try:
        order = await get_order_by_number(turn.session, number=number)
    except OrderNotFound:
        order = None
    if order is None or not owns(turn, order):
        turn.say("order_not_matched")  # someone else's order and an unknown one read the same
        return
    methods = {m.provider: m for m in await payments.methods_for(turn.session, country=order.country or "*",
                                                               channel=turn.inbound.channel)}
    method = methods.get(provider_name)
    if method is None or provider_name == "telegram" and turn.inbound.channel != "telegram":
        await offer_payment(turn, order)
        return
    retry = [turn.button("button.retry", f"pay:{provider_name}:{order.number}")]
    try:
        provider = provider_for(provider_name, turn.deps.settings.payments)
        payment = await payments.start_payment(turn.session, order_id=order.id, provider=provider,
                                               method_types=method.method_types)
    except PaymentNotPossible:
        turn.say("pay.not_possible", number=order.number, status=turn.t(f"status.{order.status}"))
        return
    except (ProviderUnavailable, ProviderRefused, NoPaymentMethod):
        turn.say("pay.unavailable", number=order.number, buttons=retry)  # the order stays pending; nothing lost
        return
    amount = turn.money(payment.amount, payment.currency)
    if provider_name == "stripe":
        turn.say("pay.link", number=order.number, amount=amount, url=payment.url or "",
                 custom={"order_number": order.number, "payment_url": payment.url})
    elif provider_name == "telegram":
        turn.say("pay.invoice", number=order.number, amount=amount,
                 custom={"order_number": order.number, "invoice": {
                     "payload": payment.reference, "currency": payment.currency,
                     "amount_minor": payments.charge_of(order).amount_minor,
                     "title": turn.t("pay.invoice_title", number=order.number),
                     "description": turn.t("pay.invoice_description", ref=order.public_ref)}})
    elif provider_name == "bank_transfer":
        turn.say("pay.bank_transfer", number=order.number, amount=amount, ref=payment.reference,
                 instructions=method.instructions or "")
    else:
        turn.say("pay.cash_on_delivery", number=order.number, amount=amount, ref=payment.reference)


# ---------------------------------------------------------------- wiring

skill = Skill("checkout")


@skill.intent("checkout")
async def for_intent(turn: Turn, intent: str) -> None:
    named = order_status.order_number_in(turn)
    if named:  # "how do I pay for order 10031?": that order (its owner gets its status and "Pay now")
        await order_status.with_number(turn, named)
        return
    await start(turn)


@skill.payload("checkout:start")
async def checkout_button(turn: Turn, press: Press) -> None:
    await start(turn)


@skill.payload("checkout:place:")
async def place_button(turn: Turn, press: Press) -> None:
    await confirm(turn, press.arg)


@skill.payload("checkout:ship:")
async def service_button(turn: Turn, press: Press) -> None:
    await choose_service(turn, press.arg)


@skill.payload("checkout:address:")
async def address_button(turn: Turn, press: Press) -> None:
    await use_saved_address(turn, press.arg == "same")


@skill.payload("pay:")
async def pay_button(turn: Turn, press: Press) -> None:
    provider_name, _, number = press.arg.partition(":")
    await pay(turn, provider_name, number)


async def fill_slot(turn: Turn, slot: str) -> bool:
    """Read the answer to a checkout question; False (and the question asked again) when it isn't one."""
    text = turn.text.strip()
    conversation = turn.conversation
    if slot == "country":
        country = turn.entity("country")
        if not country:
            turn.ask(intent="checkout", slot="country", key="bad_country")
            return False
        conversation.country = str(country).upper()
    elif slot == "email":
        email = turn.entity("email") or text
        if not is_email_address(str(email)):
            turn.ask(intent="checkout", slot="email", key="bad_email")
            return False
        conversation.email = str(email)
    elif slot == "confirm":
        return await _confirm_by_text(turn)
    conversation.pending = None
    await start(turn)
    return True


async def _confirm_by_text(turn: Turn) -> bool:
    """A typed answer to the summary: a clear yes (or "place the order") confirms; anything else asks again."""
    parsed = turn.parsed
    clear = parsed is not None and parsed.intent in ("affirm", "checkout") and \
        parsed.confidence >= turn.deps.policy.answer_at
    if clear:
        await confirm(turn, None)
        return True
    pending = turn.conversation.pending or {}
    data = dict(pending.get("data") or {})
    digest = str(data.get("digest", ""))
    turn.ask(intent="checkout", slot="confirm", key="checkout_confirm_ask", data=data,
             buttons=[turn.button("button.place_order", f"checkout:place:{digest}"),
                      turn.button("button.change_cart", "cart:view")])
    return False


@skill.answer("checkout")
def read_answer(turn: Turn, question: Question) -> Answer | None:
    answer = turn.text.strip()
    if question.slot == "address":
        # Any text answers an address question, unless the message clearly asks something else.
        if question.confident_other and "?" in answer:
            return None
        return lambda: fill_address(turn, question.data)
    if question.slot == "address_same":
        parsed = turn.parsed
        if parsed is not None and parsed.intent in ("affirm", "deny"):
            return lambda: use_saved_address(turn, parsed.intent == "affirm")
        return None if question.confident_other else (lambda: use_saved_address(turn, False))
    looks_like = {"country": turn.entity("country") is not None,
                  "email": turn.entity("email") is not None or "@" in answer}
    if looks_like.get(question.slot) or not question.confident_other:
        return lambda: fill_slot(turn, question.slot)
    return None

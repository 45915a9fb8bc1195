"""Cart (stored on the conversation) and checkout: the order summary to confirm, then reserve stock and create the
order in pending_payment.

Over 500 lines on purpose: checkout's summary, its digest and placing the order share the cart's pricing helpers."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot import i18n
from bot.conversations.service import remember_verified_order
from bot.skills.base import Answer, Press, Question, Skill, Turn
from bot.skills.recommend import count_outcome
from bot.skills.search import note_search_used
from commerce import cross_border
from commerce.catalog.errors import UnknownSku
from commerce.catalog.models import Product, Variant
from commerce.catalog.service import get_product, get_variant, is_sellable_to, variant_price
from commerce.channels import service as sales_channels
from commerce.cross_border.schemas import DeliveryEstimate
from commerce.inventory.errors import InsufficientStock
from commerce.inventory.service import available_stock
from commerce.money import quantize
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.orders.service import create_order
from commerce.search.service import SearchFilters, search_products
from kit.clock import utcnow
from kit.errors import NotFound, ShopTalkError
from kit.text import is_email_address

MAX_QUANTITY = 99
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
# Which sales channel an order placed in a chat belongs to.
DIGEST_CHARS = 16  # "checkout:place:<digest>" stays well within Telegram's 64 bytes of callback data
SERVICE_CODE = re.compile(r"^[a-z0-9_-]{1,40}$")  # "checkout:ship:<service>" (a shipping zone's service code)
SALES_CHANNEL_OF = {"telegram": ("telegram",), "webchat": ("webchat", "web"), "rest": ("web", "webchat")}


def cart_lines(turn: Turn) -> list[dict[str, Any]]:
    return [dict(line) for line in turn.conversation.cart or []]


def _quantity(turn: Turn) -> int:
    value = turn.entity("quantity")
    try:
        return max(1, min(MAX_QUANTITY, int(value))) if value is not None else 1
    except (TypeError, ValueError):
        return 1


async def add(turn: Turn, sku: str, quantity: int = 1, *, impression_id: int | None = None) -> bool:
    """Put `quantity` of `sku` in the cart if that many are in stock and it can go to the shopper's country."""
    if not 1 <= quantity <= MAX_QUANTITY:  # a crafted button payload (cart:add:SKU:-1) must not lower the cart
        turn.say("cart_bad_quantity", most=MAX_QUANTITY, buttons=[turn.button("button.view_cart", "cart:view")])
        return False
    try:
        variant = await get_variant(turn.session, sku=sku)
    except UnknownSku:
        turn.say("product_gone")
        return False
    product = variant.product
    if not (product.active and variant.active):
        turn.say("product_gone")
        return False
    if not is_sellable_to(product, turn.country):
        turn.say("not_sellable_there", country=turn.country_name(turn.country))
        return False
    lines = cart_lines(turn)
    line = next((x for x in lines if x["sku"] == sku), None)
    wanted = min(MAX_QUANTITY, (line["quantity"] if line else 0) + quantity)
    available = (await available_stock(turn.session, skus=[sku]))[sku]
    if available < wanted:
        turn.say("cart_no_stock", n=available, available=available, title=turn.title(product))
        return False
    if line is None:
        line = {"sku": sku, "quantity": wanted}
        lines.append(line)
    else:
        line["quantity"] = wanted
    if impression_id is not None:
        line["impression"] = impression_id  # a purchase later counts for the recommendation
    turn.conversation.cart = lines
    await note_search_used(turn)
    turn.say("cart_added", n=quantity, quantity=quantity, title=turn.title(product),
             buttons=[turn.button("button.view_cart", "cart:view"), turn.button("button.checkout", "checkout:start")])
    return True


async def add_from_text(turn: Turn) -> None:
    """ "add two of the kettle to my cart": a product named in the message, else the one just shown."""
    quantity = _quantity(turn)
    named = turn.entity("product")
    colour, size = turn.entity("colour"), turn.entity("size")
    if named:
        result = await search_products(turn.session, query=str(named), country=turn.country, limit=1,
                                       filters=SearchFilters(colour=colour, size=size))
        if result.hits:
            await add(turn, result.hits[0].sku, quantity)
            return
    shown = list(turn.conversation.last_products or [])
    if len(shown) == 1:
        picked = await _pick_variant(turn, shown[0], colour=colour, size=size)
        if picked is not None:
            await add(turn, picked[1].sku, quantity)
            return
    if shown:
        cards = []
        for product_id in shown[:5]:
            picked = await _pick_variant(turn, product_id, colour=colour, size=size)
            if picked is not None:
                cards.append(await turn.card(*picked))
        if cards:
            turn.say("cart_which", cards=cards)
            return
    turn.say("search_ask")


async def _pick_variant(turn: Turn, product_id: int, *, colour: str | None,
                        size: str | None) -> tuple[Product, Variant] | None:
    try:
        product = await get_product(turn.session, product_id=product_id)
    except NotFound:
        return None
    stock = await available_stock(turn.session, skus=[v.sku for v in product.variants])
    shown = set((turn.conversation.last_search or {}).get("shown") or [])
    for variant in sorted(product.variants, key=lambda v: v.sku not in shown):
        attributes = {k: str(v).lower() for k, v in variant.attributes.items()}
        if colour and colour.lower() not in attributes.get("colour", colour.lower()):
            continue
        if size and size.lower() != attributes.get("size", size.lower()):
            continue
        if variant.active and stock.get(variant.sku, 0) > 0:
            return product, variant
    return None


async def remove(turn: Turn, sku: str) -> None:
    lines = cart_lines(turn)
    kept = [x for x in lines if x["sku"] != sku]
    if len(kept) == len(lines):
        turn.say("cart_not_in", sku=sku)
        return
    turn.conversation.cart = kept
    title = sku
    try:
        title = turn.title((await get_variant(turn.session, sku=sku)).product)
    except UnknownSku:
        pass
    turn.say("cart_removed", title=title, buttons=[turn.button("button.view_cart", "cart:view")])


async def set_quantity(turn: Turn, sku: str, quantity: int) -> None:
    if quantity < 0 or quantity > MAX_QUANTITY:  # 0 is the "less" button on a single item: it removes the line
        turn.say("cart_bad_quantity", most=MAX_QUANTITY, buttons=[turn.button("button.view_cart", "cart:view")])
        return
    if quantity == 0:
        await remove(turn, sku)
        return
    lines = cart_lines(turn)
    line = next((x for x in lines if x["sku"] == sku), None)
    if line is None:
        turn.say("cart_not_in", sku=sku)
        return
    variant = await get_variant(turn.session, sku=sku)
    quantity = min(MAX_QUANTITY, quantity)
    available = (await available_stock(turn.session, skus=[sku]))[sku]
    if available < quantity:
        turn.say("cart_no_stock", n=available, available=available, title=turn.title(variant.product))
        return
    line["quantity"] = quantity
    turn.conversation.cart = lines
    turn.say("cart_updated", title=turn.title(variant.product), quantity=quantity,
             buttons=[turn.button("button.view_cart", "cart:view")])


async def view(turn: Turn) -> None:
    lines = cart_lines(turn)
    if not lines:
        turn.say("cart_empty", buttons=[turn.button("button.search", "menu:search")])
        return
    texts, subtotal, currency = [], Decimal(0), turn.currency
    buttons = []
    for line in lines:
        try:
            variant = await get_variant(turn.session, sku=line["sku"])
        except UnknownSku:
            continue
        amount, shown = await turn.in_shopper_currency(variant_price(variant, variant.product) * line["quantity"],
                                                       variant.product.currency)
        currency = shown
        subtotal += amount
        texts.append(turn.t("cart_line", quantity=line["quantity"], title=turn.title(variant.product),
                            sku=line["sku"], amount=turn.money(amount, shown)))
        quantity = int(line["quantity"])
        buttons.append(turn.button("button.more", f"cart:set:{line['sku']}:{quantity + 1}", sku=line["sku"]))
        buttons.append(turn.button("button.less", f"cart:set:{line['sku']}:{quantity - 1}", sku=line["sku"]))
        buttons.append(turn.button("button.remove", f"cart:remove:{line['sku']}", sku=line["sku"]))
    buttons.append(turn.button("button.checkout", "checkout:start"))
    turn.say("cart_view", lines="\n".join(texts), subtotal=turn.money(subtotal, currency), buttons=buttons)


# ---------------------------------------------------------------- checkout

async def checkout(turn: Turn) -> None:
    """Ask for what is missing (country, e-mail, postcode), then show the order summary to confirm."""
    conversation = turn.conversation
    if not conversation.cart:
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
    if not conversation.postcode:
        turn.ask(intent="checkout", slot="postcode", key="ask_postcode")
        return
    prepared = await _prepare(turn)
    if prepared is not None:
        _show_summary(turn, prepared)


async def confirm(turn: Turn, digest: str | None) -> None:
    """"Place order" (its button carries the summary's digest) or a clear yes to the summary (digest None: the
    one asked about). Places the order only when the summary is still what the shopper saw; otherwise shows
    the new one."""
    pending = turn.conversation.pending or {}
    asked = (pending.get("data") or {}).get("digest") if pending.get("slot") == "confirm" else None
    seen = digest or asked
    if not turn.conversation.cart:
        turn.conversation.pending = None
        turn.say("checkout_empty", buttons=[turn.button("button.search", "menu:search")])
        return
    if not (turn.conversation.country and turn.conversation.email and turn.conversation.postcode):
        await checkout(turn)
        return
    prepared = await _prepare(turn)
    if prepared is None:
        turn.conversation.pending = None
        return
    if seen != prepared.digest:
        turn.say("checkout_changed")
        _show_summary(turn, prepared)
        return
    turn.conversation.pending = None
    await _place(turn, prepared)


async def choose_service(turn: Turn, service: str) -> None:
    """The shopper picked a delivery service on the summary ("checkout:ship:<code>"): show the summary with it.
    A code the destination does not offer (or a forged one) gets the destination's default service."""
    if SERVICE_CODE.match(service):
        turn.conversation.shipping_service = service
    await checkout(turn)


async def fill_checkout_slot(turn: Turn, slot: str) -> bool:
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
    elif slot == "postcode":
        if not POSTCODE.match(text):
            turn.ask(intent="checkout", slot="postcode", key="bad_postcode")
            return False
        conversation.postcode = text.upper()
    elif slot == "confirm":
        return await _confirm_by_text(turn)
    conversation.pending = None
    await checkout(turn)
    return True


async def _sales_channel(turn: Turn) -> str:
    candidates = SALES_CHANNEL_OF.get(turn.inbound.channel, ("web",))
    for code in candidates:
        try:
            await sales_channels.get_channel(turn.session, code=code)
            return code
        except NotFound:
            continue
    return candidates[0]


async def _convertible(turn: Turn, variants: list[tuple[Variant, Product, int]], currency: str) -> bool:
    for _, product, _ in variants:
        if await turn.rate(product.currency, currency) is None:
            return False
    return True


@dataclass(frozen=True)
class PreparedOrder:
    """What "Place order" would create now; `digest` changes with anything the summary shows."""

    currency: str
    lines: list[tuple[str, str, int, Decimal]]  # sku, title, quantity, unit price in `currency`
    shipping: Decimal
    duties: Decimal
    taxes: Decimal
    digest: str
    delivery: DeliveryEstimate | None = None  # the chosen service; None: no landed-cost quote
    options: tuple[cross_border.ShippingOption, ...] = ()  # every service to the destination, priced

    @property
    def goods(self) -> Decimal:
        return sum((price * quantity for _, _, quantity, price in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.goods + self.shipping + self.duties + self.taxes


async def _prepare(turn: Turn) -> PreparedOrder | None:
    """Price the cart for the delivery country in the shopper's currency (landed cost); None after saying why
    it can't be ordered."""
    conversation = turn.conversation
    assert conversation.country is not None
    country = conversation.country
    currency = turn.currency
    variants: list[tuple[Variant, Product, int]] = []
    for line in cart_lines(turn):
        try:
            variant = await get_variant(turn.session, sku=line["sku"])
        except UnknownSku:
            turn.say("product_gone")
            return None
        if not is_sellable_to(variant.product, country):
            turn.say("checkout_not_sellable", title=turn.title(variant.product), country=turn.country_name(country))
            return None
        variants.append((variant, variant.product, int(line["quantity"])))
    if not await _convertible(turn, variants, currency):
        currency = variants[0][1].currency  # no fresh rate: charge in the catalogue's currency
        if not await _convertible(turn, variants, currency):
            turn.say("apology", code="no_exchange_rate")
            return None
    order_lines = []
    for variant, product, quantity in variants:
        converted = await turn.convert(variant_price(variant, product), product.currency, currency)
        assert converted is not None
        order_lines.append((variant.sku, turn.title(product), quantity, quantize(converted, currency)))
    shipping = duties = taxes = Decimal(0)
    quote_lines = [{"sku": s, "quantity": q} for s, _, q, _ in order_lines]
    try:  # read-only look-ups: no savepoint (a refusal is raised in Python and changes nothing)
        try:
            quote = await cross_border.quote(turn.session, destination=country, currency=currency,
                                             lines=quote_lines, service=conversation.shipping_service)
        except cross_border.ServiceNotOffered:
            conversation.shipping_service = None  # not offered to this destination (any more): its default
            quote = await cross_border.quote(turn.session, destination=country, currency=currency, lines=quote_lines)
    except (cross_border.NotSellableToDestination, cross_border.DestinationNotServed):
        turn.say("not_shipped", country=turn.country_name(country))
        return None
    except ShopTalkError:
        quote = None  # no landed-cost rules for this destination: the order carries goods only
    options: list[cross_border.ShippingOption] = []
    if quote is not None:
        try:
            options = await cross_border.shipping_options(
                turn.session, destination=country, currency=currency,
                weight_grams=sum(item.weight_grams * item.quantity for item in quote.items),
                value=sum((item.line_total for item in quote.items), Decimal(0)))
        except ShopTalkError:
            options = []  # the summary still shows the chosen service; the shopper just cannot switch
    for charge in quote.charges if quote is not None else []:
        if charge.kind in ("shipping", "insurance", "fees"):
            shipping += charge.amount
        elif charge.kind == "duty":
            duties += charge.amount
        elif charge.kind == "import_tax":
            taxes += charge.amount
    delivery = quote.delivery if quote is not None else None
    shown = {"to": [country, conversation.postcode, conversation.email], "currency": currency,
             "lines": [[s, q, str(p)] for s, _, q, p in order_lines],
             "charges": [str(shipping), str(duties), str(taxes)], "service": delivery.service if delivery else None}
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:DIGEST_CHARS]
    return PreparedOrder(currency=currency, lines=order_lines, shipping=shipping, duties=duties, taxes=taxes,
                         digest=digest, delivery=delivery, options=tuple(options))


def _service_name(turn: Turn, service: str, name: str) -> str:
    """The shop's name for a delivery service; in another language, the shipped services' translation."""
    key = f"service.{service}"
    return turn.t(key) if turn.locale != i18n.DEFAULT_LOCALE and i18n.has_text(turn.locale, key) else name


def _show_summary(turn: Turn, prepared: PreparedOrder) -> None:
    conversation, currency = turn.conversation, prepared.currency
    lines = "\n".join(turn.t("cart_line", quantity=q, title=title, sku=sku, amount=turn.money(p * q, currency))
                      for sku, title, q, p in prepared.lines)
    assert conversation.country is not None
    delivery = prepared.delivery
    # The other delivery services, each with its shipping price: pressing one shows the summary with it.
    switch = [turn.button("button.ship_with", f"checkout:ship:{option.service}",
                          service=_service_name(turn, option.service, option.name), days_min=option.min_days,
                          days_max=option.max_days, price=turn.money(option.price, option.currency))
              for option in prepared.options if delivery is None or option.service != delivery.service]
    turn.ask(intent="checkout", slot="confirm", key="checkout_summary", data={"digest": prepared.digest},
             buttons=[turn.button("button.place_order", f"checkout:place:{prepared.digest}"), *switch,
                      turn.button("button.change_cart", "cart:view")],
             service=_service_name(turn, delivery.service, delivery.service_name) if delivery else "-",
             days_min=delivery.min_days if delivery else "-", days_max=delivery.max_days if delivery else "-",
             lines=lines, goods=turn.money(prepared.goods, currency), shipping=turn.money(prepared.shipping, currency),
             duties=turn.money(prepared.duties, currency), taxes=turn.money(prepared.taxes, currency),
             total=turn.money(prepared.total, currency), country=turn.country_name(conversation.country),
             postcode=conversation.postcode, email=conversation.email)


async def _confirm_by_text(turn: Turn) -> bool:
    """A typed answer to the summary: a clear yes (or "place the order") confirms; anything else asks again."""
    parsed = turn.parsed
    clear = parsed is not None and parsed.intent in ("affirm", "checkout") and \
        parsed.confidence >= turn.deps.policy.answer_at
    if clear:
        await confirm(turn, None)
        return True
    pending = turn.conversation.pending or {}
    digest = str((pending.get("data") or {}).get("digest", ""))
    turn.ask(intent="checkout", slot="confirm", key="checkout_confirm_ask", data={"digest": digest},
             buttons=[turn.button("button.place_order", f"checkout:place:{digest}"),
                      turn.button("button.change_cart", "cart:view")])
    return False


async def _place(turn: Turn, prepared: PreparedOrder) -> None:
    """Reserve the stock and create the order in pending_payment, exactly as summarised."""
    conversation = turn.conversation
    assert conversation.country is not None
    lines = cart_lines(turn)
    channel = await _sales_channel(turn)
    data = OrderIn(channel=channel, external_id=f"chat:{conversation.id}:{turn.inbound.message_id}"[:120],
                   currency=prepared.currency, shopper_id=turn.shopper_id, email=conversation.email,
                   postcode=conversation.postcode, country=conversation.country, shipping=prepared.shipping,
                   shipping_service=prepared.delivery.service if prepared.delivery else None,
                   duties=prepared.duties, taxes=prepared.taxes,
                   lines=[OrderLineIn(sku=s, quantity=q, unit_price=p) for s, _, q, p in prepared.lines])
    try:
        order, _ = await create_order(turn.session, data=data)
    except InsufficientStock as error:
        available = int(error.extra.get("available", 0))
        turn.say("checkout_no_stock", n=available, sku=error.extra.get("sku", ""), available=available,
                 buttons=[turn.button("button.view_cart", "cart:view")])
        return
    for line in lines:
        if line.get("impression") is not None:
            await count_outcome(turn, int(line["impression"]), "purchase", order_id=order.id)
    conversation.cart = []
    number = order.number
    remember_verified_order(conversation, number, now=utcnow())  # the shopper who placed it may ask about it
    turn.say("order_created", number=number, ref=order.public_ref, goods=turn.money(order.subtotal, order.currency),
             shipping=turn.money(order.shipping, order.currency), duties=turn.money(order.duties, order.currency),
             taxes=turn.money(order.taxes, order.currency), total=turn.money(order.total, order.currency),
             custom={"order_number": number, "order_ref": order.public_ref, "total": str(order.total),
                     "currency": order.currency})


skill = Skill("cart")


@skill.intent("add_to_cart", "view_cart", "checkout")
async def for_intent(turn: Turn, intent: str) -> None:
    await {"add_to_cart": add_from_text, "view_cart": view, "checkout": checkout}[intent](turn)


@skill.command("cart")
async def cart_command(turn: Turn) -> None:
    await view(turn)


@skill.payload("cart:view")
async def view_button(turn: Turn, press: Press) -> None:
    await view(turn)


@skill.payload("cart:add:")
async def add_button(turn: Turn, press: Press) -> None:
    sku, _, quantity = press.arg.partition(":")
    if await add(turn, sku, int(quantity) if quantity else 1, impression_id=press.impression_id) and \
            press.impression_id is not None:
        await count_outcome(turn, press.impression_id, "add_to_cart")


@skill.payload("cart:remove:")
async def remove_button(turn: Turn, press: Press) -> None:
    await remove(turn, press.arg)


@skill.payload("cart:set:")
async def set_button(turn: Turn, press: Press) -> None:
    sku, _, quantity = press.arg.rpartition(":")
    await set_quantity(turn, sku, int(quantity))


@skill.payload("checkout:start")
async def checkout_button(turn: Turn, press: Press) -> None:
    await checkout(turn)


@skill.payload("checkout:place:")
async def place_button(turn: Turn, press: Press) -> None:
    await confirm(turn, press.arg)


@skill.payload("checkout:ship:")
async def service_button(turn: Turn, press: Press) -> None:
    await choose_service(turn, press.arg)


@skill.answer("checkout")
def read_checkout_answer(turn: Turn, question: Question) -> Answer | None:
    answer = turn.text.strip()
    looks_like = {"country": turn.entity("country") is not None,
                  "email": turn.entity("email") is not None or "@" in answer,
                  "postcode": bool(POSTCODE.match(answer)) and any(c.isdigit() for c in answer)}
    if looks_like.get(question.slot) or not question.confident_other:
        return lambda: fill_checkout_slot(turn, question.slot)
    return None

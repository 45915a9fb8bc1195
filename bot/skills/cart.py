"""Cart (stored on the conversation): add, change, remove, view. Checkout is `bot.skills.checkout`."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from bot.skills.base import Press, Skill, Turn
from bot.skills.cross_border import common_destinations, destination_buttons, set_pressed_country
from bot.skills.product_qa import asked_colour, option_matches
from bot.skills.product_routing import asks_a_fact, is_question
from bot.skills.recommend import count_outcome
from bot.skills.search import note_search_used
from bot.understanding import ParsedMessage
from commerce.catalog.errors import UnknownSku
from commerce.catalog.models import Product, Variant
from commerce.catalog.service import get_product, get_variant, is_sellable_to, variant_price
from commerce.checkout.service import option_label
from commerce.inventory.availability import stock_by_reach
from commerce.search.service import SearchFilters, search_products
from kit.errors import NotFound

MAX_QUANTITY = 99
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
COUNTRY_PAYLOAD = "cart:to:"  # cart:to:<country>:<add|offer|set>:<sku>:<quantity>, under a refusal for an assumed one
# Which sales channel an order placed in a chat belongs to.
DIGEST_CHARS = 16  # "checkout:place:<digest>" stays well within Telegram's 64 bytes of callback data
SERVICE_CODE = re.compile(r"^[a-z0-9_-]{1,40}$")  # "checkout:ship:<service>" (a shipping zone's service code)
SALES_CHANNEL_OF = {"telegram": ("telegram",), "webchat": ("webchat", "web"), "rest": ("web", "webchat")}


# An order to change the cart in so many words ("can you add two to my cart?", "加入购物车"). A question without one
# ("can i get the pack as 3 black tees instead", "will it fit my cup holder") asks; it never changes the cart.
CART_ORDER = re.compile(r"\b(add|adding|cart|basket|checkout)\b|购物车|加购|下单", re.IGNORECASE)


def asks_rather_than_orders(text: str) -> bool:
    """Whether a message read as "add to cart" is a question rather than an order ("can i get it in black?")."""
    return is_question(text) and CART_ORDER.search(text) is None


def asks_before_buying(parsed: ParsedMessage) -> bool:
    """A question about a product's facts that is not an order to change the cart: the policy answers it as a
    product question instead of adding to the cart."""
    return asks_rather_than_orders(parsed.text) and asks_a_fact(parsed)


def cart_lines(turn: Turn) -> list[dict[str, Any]]:
    return [dict(line) for line in turn.conversation.cart or []]


def _quantity(turn: Turn) -> int:
    value = turn.entity("quantity")
    try:
        return max(1, min(MAX_QUANTITY, int(value))) if value is not None else 1
    except (TypeError, ValueError):
        return 1


async def _obtainable(turn: Turn, sku: str, quantity: int, *, action: str, again: int | None = None) -> Variant | None:
    """The variant of `sku` when `quantity` of it can be had by this shopper (it exists, is sold, can go to their
    country, is in stock where it ships from); otherwise None, having said why. `action` (add, offer, set) is what a
    destination button under a refusal does again once the shopper says where it should go, with `again` units (the
    quantity pressed, when `quantity` counts what the cart already holds)."""
    try:
        variant = await get_variant(turn.session, sku=sku)
    except UnknownSku:
        turn.say("product_gone")
        return None
    product = variant.product
    if not (product.active and variant.active):
        turn.say("product_gone")
        return None
    if not is_sellable_to(product, turn.country):
        turn.say("not_sellable_there", country=turn.country_name(turn.country))
        return None
    if await _in_reach(turn, product, sku, quantity, action=action, again=again):
        return variant
    return None


async def _in_reach(turn: Turn, product: Product, sku: str, quantity: int, *, action: str,
                    again: int | None = None) -> bool:
    """Whether `quantity` of `sku` is in stock where it ships to the shopper from, as an order reserves it (the
    destination's warehouse, `stock_by_reach`); if not, say so. Units held only for other destinations are named,
    and when the destination was only assumed the shopper picks theirs and `action` runs again for it."""
    near, anywhere = (await stock_by_reach(turn.session, skus=[sku], country=turn.country))[sku]
    if near >= quantity:
        return True
    title, country = turn.title(product), turn.country_name(turn.country)
    if anywhere <= near:
        turn.say("cart_no_stock", n=near, available=near, title=title)
    elif turn.conversation.country is None:
        others = [code for code in await common_destinations(turn) if code != turn.country]
        # The destinations the stock can reach (a statement each, only on this refusal); all of them if none can.
        reached = [code for code in others
                   if (await stock_by_reach(turn.session, skus=[sku], country=code))[sku][0] >= quantity]
        pressed = again or quantity
        buttons = [turn.button_text(turn.country_name(code), f"{COUNTRY_PAYLOAD}{code}:{action}:{sku}:{pressed}")
                   for code in reached or others]
        turn.say("cart_no_stock_assumed_country", n=near, available=near, title=title, country=country,
                 buttons=buttons)
    else:
        turn.say("cart_no_stock_there", n=near, available=near, title=title, country=country)
    return False


async def _say_assumed_country(turn: Turn) -> None:
    """After an add or offer judged for the shop's default country (the shopper never named theirs): say which,
    with a button per common destination, as a search does."""
    if turn.conversation.country is None:
        turn.say("cart_assumed_country", country=turn.country_name(turn.country),
                 buttons=await destination_buttons(turn))


async def add(turn: Turn, sku: str, quantity: int = 1, *, impression_id: int | None = None) -> bool:
    """Put `quantity` of `sku` in the cart if that many are in stock and it can go to the shopper's country."""
    if not 1 <= quantity <= MAX_QUANTITY:  # a crafted button payload (cart:add:SKU:-1) must not lower the cart
        turn.say("cart_bad_quantity", most=MAX_QUANTITY, buttons=[turn.button("button.view_cart", "cart:view")])
        return False
    lines = cart_lines(turn)
    line = next((x for x in lines if x["sku"] == sku), None)
    wanted = min(MAX_QUANTITY, (line["quantity"] if line else 0) + quantity)
    variant = await _obtainable(turn, sku, wanted, action="add", again=quantity)
    if variant is None:
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
    turn.say("cart_added", n=quantity, quantity=quantity, title=turn.title(variant.product),
             buttons=[turn.button("button.view_cart", "cart:view"), turn.button("button.checkout", "checkout:start")])
    await _say_assumed_country(turn)
    return True


async def offer(turn: Turn, sku: str, quantity: int = 1) -> bool:
    """Say that `quantity` of `sku` can be had and offer the button that adds it; the cart is not changed."""
    variant = await _obtainable(turn, sku, quantity, action="offer")
    if variant is None:
        return False
    product = variant.product
    label = option_label(dict(variant.attributes))
    turn.say("cart_offer", n=quantity, quantity=quantity, title=turn.title(product) + (f" ({label})" if label else ""),
             buttons=[turn.button("button.add_to_cart", f"cart:add:{sku}:{quantity}"),
                      turn.button("button.details", f"product:details:{product.id}")])
    await _say_assumed_country(turn)
    return True


async def add_from_text(turn: Turn) -> None:
    """ "add two of the kettle to my cart": a product named in the message, else the one just shown."""
    quantity = _quantity(turn)
    named = turn.entity("product")
    # The colour as asked ("lavender", not its family "purple"), compared with options as the answers compare them.
    entities = turn.parsed.entities if turn.parsed is not None else ()
    colours = [asked_colour(turn.text, e) for e in entities if e.entity == "colour"]
    colour, size = (colours[0] if colours else None), turn.entity("size")
    # A question changes nothing: it gets the option and an "Add to cart" button to press.
    put = offer if asks_rather_than_orders(turn.text) else add
    if named:
        result = await search_products(turn.session, query=str(named), country=turn.country, limit=1,
                                       filters=SearchFilters(colour=colour, size=size))
        if result.hits:
            await put(turn, result.hits[0].sku, quantity)
            return
    shown = list(turn.conversation.last_products or [])
    if len(shown) == 1:
        picked = await _pick_variant(turn, shown[0], colour=colour, size=size)
        if picked is not None:
            await put(turn, picked[1].sku, quantity)
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
    reach = await stock_by_reach(turn.session, skus=[v.sku for v in product.variants], country=turn.country)
    shown = set((turn.conversation.last_search or {}).get("shown") or [])
    # An option that ships to the shopper first; else one held elsewhere, which the cart's check then explains.
    for variant in sorted(product.variants, key=lambda v: (reach[v.sku][0] <= 0, v.sku not in shown)):
        attributes = {k: str(v) for k, v in variant.attributes.items()}
        if colour and "colour" in attributes and not option_matches(attributes["colour"], colour):
            continue
        if size and "size" in attributes and not option_matches(attributes["size"], size):
            continue
        if variant.active and reach[variant.sku][1] > 0:
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
    if not await _in_reach(turn, variant.product, sku, quantity, action="set"):
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
        options = option_label(variant.attributes)
        texts.append(turn.t("cart_line", quantity=line["quantity"], title=turn.title(variant.product),
                            sku=f"{options}, {line['sku']}" if options else line["sku"],
                            amount=turn.money(amount, shown)))
        quantity = int(line["quantity"])
        # Buttons name the item as the shopper reads it ("Hoodie Red / M"), never a bare SKU.
        label = f"{turn.title(variant.product)} {options}".strip()
        buttons.append(turn.button("button.more", f"cart:set:{line['sku']}:{quantity + 1}", sku=label))
        buttons.append(turn.button("button.less", f"cart:set:{line['sku']}:{quantity - 1}", sku=label))
        buttons.append(turn.button("button.remove", f"cart:remove:{line['sku']}", sku=label))
    buttons.append(turn.button("button.checkout", "checkout:start"))
    turn.say("cart_view", lines="\n".join(texts), subtotal=turn.money(subtotal, currency), buttons=buttons)


skill = Skill("cart")


@skill.intent("add_to_cart", "view_cart")
async def for_intent(turn: Turn, intent: str) -> None:
    await {"add_to_cart": add_from_text, "view_cart": view}[intent](turn)


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


@skill.payload(COUNTRY_PAYLOAD)
async def country_button(turn: Turn, press: Press) -> None:
    """A destination offered under a refusal judged for an assumed country: deliver there, then try again."""
    code, _, rest = press.arg.partition(":")
    action, _, rest = rest.partition(":")
    sku, _, quantity = rest.rpartition(":")
    if action not in ("add", "offer", "set") or not sku or not quantity.isdigit():  # a crafted press
        turn.say("unknown_button")
        return
    if set_pressed_country(turn, Press(arg=code, impression_id=None)) is None:
        return
    turn.say("country_set", country=turn.country_name(turn.conversation.country or code))
    if action == "set":
        await set_quantity(turn, sku, int(quantity))
    else:
        await (add if action == "add" else offer)(turn, sku, int(quantity))


@skill.payload("cart:remove:")
async def remove_button(turn: Turn, press: Press) -> None:
    await remove(turn, press.arg)


@skill.payload("cart:set:")
async def set_button(turn: Turn, press: Press) -> None:
    sku, _, quantity = press.arg.rpartition(":")
    await set_quantity(turn, sku, int(quantity))

"""A cart link an agent sent from the console (`bot.handoff.cart_links`), pressed by the shopper: the link is
claimed once, its lines go into the conversation's cart through the cart skill's own checks, and the chat's
checkout starts as if the shopper had pressed "Checkout"."""
from __future__ import annotations

from bot.handoff import cart_links
from bot.skills import cart, checkout
from bot.skills.base import Press, Skill, Turn
from commerce.catalog.errors import UnknownSku
from commerce.catalog.service import get_variant, is_sellable_to
from commerce.inventory.service import available_stock

skill = Skill("cart_link")


@skill.payload(cart_links.PAYLOAD)
async def open_link(turn: Turn, press: Press) -> None:
    secret = turn.deps.settings.security.secret_key.get_secret_value()
    try:
        link = await cart_links.claim(turn.session, conversation_id=turn.conversation.id, arg=press.arg, secret=secret)
    except cart_links.CartLinkRefused as refused:
        turn.say(f"cart_link.{refused.reason}", buttons=[turn.button("button.view_cart", "cart:view")])
        return
    lines = cart.cart_lines(turn)
    stock = await available_stock(turn.session, skus=[sku for sku, _ in link.lines])
    put, left_out = 0, []
    for sku, quantity in link.lines:
        try:
            variant = await get_variant(turn.session, sku=sku)
        except UnknownSku:
            left_out.append(turn.t("cart_link.gone", sku=sku))
            continue
        product = variant.product
        if not (product.active and variant.active):
            left_out.append(turn.t("cart_link.gone", sku=turn.title(product)))
        elif not is_sellable_to(product, turn.country):
            left_out.append(turn.t("cart_link.not_there", title=turn.title(product),
                                   country=turn.country_name(turn.country)))
        elif stock.get(sku, 0) < quantity:
            left_out.append(turn.t("cart_link.short", title=turn.title(product),
                                   available=stock.get(sku, 0)))
        else:
            # Exactly the link's quantity of each line; what else the cart held stays.
            line = next((x for x in lines if x["sku"] == sku), None)
            if line is None:
                lines.append({"sku": sku, "quantity": quantity})
            else:
                line["quantity"] = quantity
            put += 1
    turn.conversation.cart = lines
    if left_out:
        turn.say_text("\n".join([turn.t("cart_link.left_out"), *left_out]))
    if put == 0:
        await cart.view(turn)
        return
    await checkout.start(turn)

"""A cart link an agent sent from the console (`bot.handoff.cart_links`), pressed by the shopper: the link is
claimed once, its lines go into the conversation's cart through the cart skill's own checks, and the chat's
checkout starts as if the shopper had pressed "Checkout"."""
from __future__ import annotations

from bot.handoff import cart_links
from bot.skills import cart, checkout
from bot.skills.base import Press, Skill, Turn
from commerce.catalog.service import find_variants
from commerce.inventory.availability import available_for_country

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
    variants = await find_variants(turn.session, skus=[sku for sku, _ in link.lines])
    stock = await available_for_country(turn.session, skus=list(variants), country=turn.country)  # as the cart
    put, left_out = 0, []
    for sku, quantity in link.lines:
        variant = variants.get(sku)
        available = stock.get(sku, 0)
        problem = cart_links.problem_of(variant, country=turn.country, available=available, quantity=quantity)
        if variant is None or problem == "not_sold":
            left_out.append(turn.t("cart_link.gone", sku=turn.title(variant.product) if variant else sku))
        elif problem == "not_sellable_there":
            left_out.append(turn.t("cart_link.not_there", title=turn.title(variant.product),
                                   country=turn.country_name(turn.country)))
        elif problem == "no_stock":
            left_out.append(turn.t("cart_link.short", title=turn.title(variant.product), available=available))
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

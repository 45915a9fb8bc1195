"""Recommendations (commerce.recommend: history, bought together with the cart, popular) and "more like this"."""
from __future__ import annotations

from bot import i18n
from bot.skills.base import Press, Skill, Turn
from commerce.catalog.errors import ProductNotFound
from commerce.catalog.service import get_product, get_products
from commerce.recommend import service as recommendations
from commerce.search.service import similar_products
from kit.errors import ShopTalkError

SHOWN = 5


async def _viewing_sku(turn: Turn) -> str | None:
    """The product in view: the one whose details were shown last (a single product), as a SKU."""
    shown = turn.conversation.last_products or []
    if len(shown) != 1:
        return None
    try:
        product = await get_product(turn.session, product_id=int(shown[0]))
    except (ProductNotFound, ValueError):
        return None
    return next((v.sku for v in product.variants if v.active), None)


async def recommend(turn: Turn) -> None:
    """In-stock products for this shopper (history, cart, product in view, country), each with the reason in
    the shopper's language; what is shown is recorded per channel so clicks and sales can be counted."""
    cart = [str(line["sku"]) for line in turn.conversation.cart or []]
    picked = await recommendations.recommend(turn.session, shopper_id=turn.shopper_id, country=turn.country,
                                             cart_skus=cart, viewing_sku=await _viewing_sku(turn), limit=SHOWN,
                                             settings=turn.deps.settings)
    if not picked:
        turn.say("recommendations_none")
        return
    impressions = await recommendations.record_impressions(turn.session, recommendations=picked,
                                                           shopper_id=turn.shopper_id, channel=turn.inbound.channel)
    products = await get_products(turn.session, product_ids=[item.product_id for item in picked])
    cards = []
    for item, impression_id in zip(picked, impressions, strict=True):
        product = products.get(item.product_id)
        if product is None:
            continue
        variant = next(v for v in product.variants if v.sku == item.sku)
        key = f"reason.{item.reason_code}"
        reason = turn.t(key, anchor=item.anchor_title or "", country=turn.country_name(turn.country)) \
            if i18n.has_text(i18n.DEFAULT_LOCALE, key) else item.reason
        cards.append(await turn.card(product, variant, subtitle=reason, impression_id=impression_id))
    turn.conversation.last_products = [c.product_id for c in cards]
    turn.say("recommendations", cards=cards)


async def count_outcome(turn: Turn, impression_id: int, kind: str, *, order_id: int | None = None) -> None:
    """A click, add-to-cart or purchase on a recommendation shown earlier (unknown impressions are ignored).
    Adding a recommended product straight from its card is a click too."""
    kinds = ["click", kind] if kind == "add_to_cart" else [kind]
    for each in kinds:
        try:
            async with turn.session.begin_nested():
                await recommendations.record_outcome(turn.session, impression_id=impression_id, kind=each,
                                                     order_id=order_id)
        except ShopTalkError:
            return


async def more_like(turn: Turn, product_id: int) -> None:
    hits = await similar_products(turn.session, product_id=product_id, country=turn.country, limit=SHOWN,
                                  encoder=turn.deps.encoder)
    products = await get_products(turn.session, product_ids=[hit.product_id for hit in hits])
    cards = []
    for hit in hits:
        product = products.get(hit.product_id)
        if product is None:
            continue
        variant = next(v for v in product.variants if v.sku == hit.sku)
        cards.append(await turn.card(product, variant))
    if not cards:
        turn.say("more_like_this_none")
        return
    turn.conversation.last_products = [c.product_id for c in cards]
    turn.say("more_like_this", cards=cards)


skill = Skill("recommend")


@skill.intent("recommend")
async def for_intent(turn: Turn, intent: str) -> None:
    await recommend(turn)


@skill.payload("more_like:")
async def more_like_button(turn: Turn, press: Press) -> None:
    await more_like(turn, int(press.arg))

"""Recommendations: "more like this", bought together with the cart, the shopper's history, popular; in stock only."""
from __future__ import annotations

from collections import Counter

from bot.skills.base import Turn
from commerce.catalog.errors import ProductNotFound
from commerce.catalog.service import all_products, get_product, is_sellable_to
from commerce.inventory.service import available_stock
from commerce.orders.service import list_orders, orders_for_shopper
from commerce.search.service import similar_products

SHOWN = 5
HISTORY_ORDERS = 500


async def _order_baskets(turn: Turn) -> list[list[str]]:
    baskets: list[list[str]] = []
    after = 0
    while len(baskets) < HISTORY_ORDERS:
        page = await list_orders(turn.session, after_id=after, limit=100)
        if not page:
            break
        baskets.extend([line.sku for line in order.lines] for order in page if order.status != "cancelled")
        after = page[-1].id
    return baskets


async def ranked_skus(turn: Turn) -> list[str]:
    """Bought together with the cart or the shopper's past orders first, then popular."""
    baskets = await _order_baskets(turn)
    anchors = {str(line["sku"]) for line in turn.conversation.cart or []}
    if turn.shopper_id is not None:
        for order in await orders_for_shopper(turn.session, shopper_id=turn.shopper_id, limit=20):
            anchors.update(line.sku for line in order.lines)
    together: Counter[str] = Counter()
    popular: Counter[str] = Counter()
    for basket in baskets:
        popular.update(set(basket))
        if anchors & set(basket):
            together.update(set(basket) - anchors)
    ranked = [sku for sku, _ in together.most_common()]
    ranked += [sku for sku, _ in popular.most_common() if sku not in anchors and sku not in ranked]
    return ranked


async def recommend(turn: Turn) -> None:
    ranked = await ranked_skus(turn)
    products = {v.sku: (p, v) for p in await all_products(turn.session) for v in p.variants}
    # Products never sold still get shown after the sold ones, so a new shop has suggestions.
    ranked += [sku for sku in products if sku not in ranked]
    stock = await available_stock(turn.session, skus=[s for s in ranked if s in products])
    cards, seen = [], set()
    in_cart = {str(line["sku"]) for line in turn.conversation.cart or []}
    for sku in ranked:
        if sku not in products or sku in in_cart or stock.get(sku, 0) <= 0:
            continue
        product, variant = products[sku]
        if product.id in seen or not is_sellable_to(product, turn.country) or not variant.active:
            continue
        seen.add(product.id)
        cards.append(await turn.card(product, variant))
        if len(cards) >= SHOWN:
            break
    if not cards:
        turn.say("recommendations_none")
        return
    turn.conversation.last_products = [c.product_id for c in cards]
    turn.say("recommendations", cards=cards)


async def more_like(turn: Turn, product_id: int) -> None:
    hits = await similar_products(turn.session, product_id=product_id, country=turn.country, limit=SHOWN,
                                  encoder=turn.deps.encoder)
    cards = []
    for hit in hits:
        try:
            product = await get_product(turn.session, product_id=hit.product_id)
        except ProductNotFound:
            continue
        variant = next(v for v in product.variants if v.sku == hit.sku)
        cards.append(await turn.card(product, variant))
    if not cards:
        turn.say("more_like_this_none")
        return
    turn.conversation.last_products = [c.product_id for c in cards]
    turn.say("more_like_this", cards=cards)

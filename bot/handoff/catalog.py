"""The catalog from the agent's reply box: search products and send them as product cards, written in the
shopper's language and shown by their channel the way the bot's own cards are."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations import service as conversations
from bot.conversations.models import Conversation
from bot.handoff.delivery import send
from bot.handoff.errors import BadAgentInput, NotInHumanMode
from bot.handoff.inbox import require_owner, thread_of_shop
from bot.handoff.models import Agent
from bot.handoff.replies import MAX_REPLY_CHARS, check_filled, clean_text
from bot.messages import Button, ProductCard
from bot.skills.base import cached_rate, shopper_currency
from commerce.catalog import service as catalog
from commerce.catalog.models import Product, Variant
from commerce.money import format_money
from commerce.search import service as search

MAX_CARDS = 10


def _card(product: Product, variant: Variant, locale: str, price_text: str) -> ProductCard:
    options = ", ".join(str(v) for v in variant.attributes.values())
    return ProductCard(
        sku=variant.sku, product_id=product.id, title=catalog.localized(product.title, locale),
        subtitle=" / ".join(p for p in (product.brand, options) if p) or None,
        price_text=price_text,
        image_url=product.image_url,
        buttons=[Button(title=i18n.t(locale, "button.details"), payload=f"product:details:{product.id}"),
                 Button(title=i18n.t(locale, "button.add_to_cart"), payload=f"cart:add:{variant.sku}")])


async def _cards(session: AsyncSession, conversation: Conversation, items: list[tuple[Product, Variant]], *,
                 default_currency: str) -> list[ProductCard]:
    """Cards as the bot's search shows them: prices in the shopper's currency at the shop's rate (the product's own
    currency when no fresh rate is known)."""
    locale = _locale(conversation)
    currency = shopper_currency(conversation, default=default_currency)
    rates: dict[tuple[str, str], Decimal | None] = {}
    cards = []
    for product, variant in items:
        amount, shown = catalog.variant_price(variant, product), product.currency
        rate = await cached_rate(session, rates, product.currency, currency)
        if rate is not None:
            amount, shown = amount * rate, currency
        cards.append(_card(product, variant, locale, format_money(amount, shown, locale)))
    return cards


def _locale(conversation: Conversation) -> str:
    return i18n.supported_locale(conversation.locale) or i18n.DEFAULT_LOCALE


async def search_cards(session: AsyncSession, *, agent: Agent, conversation_id: int, query: str,
                       default_currency: str, limit: int = 6) -> list[ProductCard]:
    """Products matching `query` that can be sold to the shopper's country, as the cards the shopper would get."""
    await thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    text = query.strip()
    if not text:
        return []
    result = await search.search_products(session, query=text[:200], country=conversation.country,
                                          limit=max(1, min(limit, MAX_CARDS)))
    products = await search.hit_products(session, product_ids=[h.product_id for h in result.hits])
    found = []
    for hit in result.hits:
        product = products.get(hit.product_id)
        variant = next((v for v in product.variants if v.sku == hit.sku), None) if product else None
        if product is not None and variant is not None:
            found.append((product, variant))
    return await _cards(session, conversation, found, default_currency=default_currency)


async def send_cards(session: AsyncSession, *, agent: Agent, conversation_id: int, skus: list[str],
                     default_currency: str, text: str | None = None) -> int:
    """Send product cards (with the agent's words, or "You might like these:" in the shopper's language) to the
    shopper through the outbox; returns the stored message id."""
    wanted = list(dict.fromkeys(s.strip() for s in skus if s.strip()))
    if not wanted or len(wanted) > MAX_CARDS:
        raise BadAgentInput(f"Send 1 to {MAX_CARDS} products.", code="invalid_cards")
    require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    if conversation.mode != "human":
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    locale = _locale(conversation)
    body = i18n.t(locale, "recommendations") if text is None or not text.strip() else \
        clean_text(text, limit=MAX_REPLY_CHARS, what="reply")
    check_filled(body)
    variants = await catalog.get_variants(session, skus=wanted)  # UnknownSku names the ones that do not exist
    products = await catalog.get_products(session, product_ids=[v.product_id for v in variants.values()])
    cards = await _cards(session, conversation, [(products[variants[s].product_id], variants[s]) for s in wanted],
                         default_currency=default_currency)
    return await send(session, conversation=conversation, agent_id=agent.id, source="own", text=body, cards=cards)

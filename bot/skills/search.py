"""Product search: free text plus filters from entities, results as paged product cards."""
from __future__ import annotations

import asyncio
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.messages import ProductCard
from bot.skills.base import Answer, Press, Question, Skill, Turn
from bot.skills.cross_border import destination_buttons, set_pressed_country
from bot.skills.recommend import count_outcome
from bot.understanding import usable_embedding
from commerce.catalog.errors import ProductNotFound
from commerce.catalog.service import find_variants, get_product, localized, variant_price
from commerce.inventory.availability import stock_by_reach
from commerce.inventory.service import available_stock
from commerce.search.service import SearchFilters, mark_search_used, query_words, search_products

MAX_HITS = 50
ALTERNATIVES = 3  # close alternatives shown after the last match, labelled as such (never padding)
_UPPER = re.compile(r"\b(under|below|less than|cheaper than|max|up to|at most|within)\b|以下|以内|不超过|低于|之内",
                    re.IGNORECASE)
_LOWER = re.compile(r"\b(over|above|more than|at least|min|from)\b|以上|超过|高于", re.IGNORECASE)
# Entities that become filters are cut out of the text before ranking.
_FILTER_ENTITIES = frozenset({"money", "colour", "size", "quantity", "country", "currency", "category"})


def price_bounds(text: str, money: list[dict[str, Any]]) -> tuple[Decimal | None, Decimal | None, str | None]:
    """(min, max, currency) from money entities and words like "under" / "以下"."""
    amounts: list[tuple[Decimal, str | None, int]] = []
    for item in money:
        try:
            amounts.append((Decimal(str(item["value"]["amount"])), item["value"].get("currency"), item["start"]))
        except (KeyError, TypeError, InvalidOperation):
            continue
    if not amounts:
        return None, None, None
    currency = next((c for _, c, _ in amounts if c), None)
    if len(amounts) >= 2:
        low, high = sorted(a for a, _, _ in amounts[:2])
        return low, high, currency
    amount, _, start = amounts[0]
    before = text[max(0, start - 16):start]
    after = text[start:start + 24]
    if _LOWER.search(before) or re.search(r"(以上|起)", after):
        return amount, None, currency
    return None, amount, currency


def _query_and_filters(turn: Turn) -> tuple[str, dict[str, Any]]:
    entities = [e.to_rasa() for e in turn.parsed.entities] if turn.parsed is not None else []
    return query_and_filters(turn.text, entities, currency=turn.currency)


def query_and_filters(text: str, entities: list[dict[str, Any]], *, currency: str | None) -> tuple[str, dict[str, Any]]:
    """The words to rank by (the filter entities cut out) and the filters of a message; `currency`: the shopper's,
    for a price named without one (bench/search_quality.py calls this too)."""

    def entity(name: str) -> Any | None:
        return next((e["value"] for e in entities if e["entity"] == name), None)

    spans = sorted((e["start"], e["end"]) for e in entities if e["entity"] in _FILTER_ENTITIES)
    query, cursor = [], 0
    for start, end in spans:
        if start >= cursor:
            query.append(text[cursor:start])
            cursor = end
    query.append(text[cursor:])
    query = [_LOWER.sub(" ", _UPPER.sub(" ", part)) for part in query]
    low, high, named = price_bounds(text, [e for e in entities if e["entity"] == "money"])
    filters: dict[str, Any] = {
        "category": entity("category"), "colour": entity("colour"), "size": entity("size"),
        "price_min": str(low) if low is not None else None, "price_max": str(high) if high is not None else None,
        "currency": named or (currency if low is not None or high is not None else None),
    }
    return " ".join(" ".join(query).split()), filters


def _filters(data: dict[str, Any]) -> SearchFilters:
    return SearchFilters(category=data.get("category"), colour=data.get("colour"), size=data.get("size"),
                         price_min=Decimal(data["price_min"]) if data.get("price_min") else None,
                         price_max=Decimal(data["price_max"]) if data.get("price_max") else None,
                         currency=data.get("currency"))


async def search(turn: Turn) -> None:
    """Search with the message's words and entities, show page 1."""
    query, filters = _query_and_filters(turn)
    if not query and not any(filters.values()):
        turn.ask(intent="product_search", slot="query", key="search_ask")
        return
    country = turn.entity("country")
    if country:  # "kettles that ship to Japan": the shopper said where
        turn.conversation.country = str(country).upper()
    await run_search(turn, query=query, filters=filters, embedding=usable_embedding(turn.parsed))


async def run_search(turn: Turn, *, query: str, filters: dict[str, Any], embedding: Any | None) -> None:
    """One search (one stock read) for the conversation's country and page 1 of its results. With no country known,
    the shop's default is assumed and said, matches in stock only for other destinations are counted rather than
    hidden, and the common destinations are offered as buttons that search again for them."""
    assumed = turn.conversation.country is None
    result = await search_products(turn.session, query=query, embedding=embedding,
                                   filters=_filters(filters), country=turn.country, limit=MAX_HITS,
                                   encoder=turn.deps.encoder, convert=turn.convert, channel=turn.inbound.channel,
                                   language=turn.locale, elsewhere=assumed)
    matches = [h for h in result.hits if not h.alternative]
    shown = [*matches, *[h for h in result.hits if h.alternative][:ALTERNATIVES]]
    turn.conversation.last_search = {"query": query, "filters": filters, "search_id": result.search_id,
                                     "hits": [[h.product_id, h.sku] for h in shown], "matched": len(matches)}
    country_name = turn.country_name(turn.country)
    if not result.hits:
        turn.conversation.last_products = []
        if result.elsewhere:
            # In stock, just not for the country we guessed: "none" would turn away a shopper we can serve.
            buttons = await destination_buttons(turn, payload="search:country:")
            turn.say("search_none_assumed_country", n=len(result.elsewhere), count=len(result.elsewhere),
                     for_query=_for_query(turn, query), country=country_name, buttons=buttons)
            return
        turn.say("search_none", for_query=_for_query(turn, query), country=country_name)
        return
    await show_page(turn, page=1, stock_checked=True)
    if assumed:
        buttons = await destination_buttons(turn, payload="search:country:")
        if result.elsewhere:
            turn.say("search_assumed_country_elsewhere", n=len(result.elsewhere), count=len(result.elsewhere),
                     country=country_name, buttons=buttons)
        else:
            turn.say("search_assumed_country", country=country_name, buttons=buttons)


def _for_query(turn: Turn, query: str) -> str:
    query = query_words(query)
    if not query:
        return ""
    return turn.t("search.for_query", query=query)


async def show_page(turn: Turn, *, page: int, stock_checked: bool = False) -> None:
    """One page of the last search's results as product cards (payload search:page:N).

    `stock_checked`: the search that found these hits ran in this transaction and only returned variants in
    stock at the shopper's warehouse (so in stock overall), so stock is not read again for page 1."""
    last = turn.conversation.last_search or {}
    hits: list[list[Any]] = list(last.get("hits") or [])
    size = turn.deps.page_size
    start = (page - 1) * size
    if page < 1 or start >= len(hits):
        turn.say("search_no_more" if hits else "search_ask")
        return
    matched = int(last.get("matched", len(hits)))
    shown = [(int(product_id), str(sku), start + i >= matched)
             for i, (product_id, sku) in enumerate(hits[start:start + size])]
    if not stock_checked:
        reach = await stock_by_reach(turn.session, skus=[sku for _, sku, _ in shown], country=turn.country)
        # Hits sold out since the search ran (where they ship to the shopper from, as the search counted) are left out.
        shown = [hit for hit in shown if reach[hit[1]][0] > 0]
    variants = await find_variants(turn.session, skus=[sku for _, sku, _ in shown])
    cards: list[ProductCard] = []
    alternatives: list[ProductCard] = []
    for product_id, sku, alternative in shown:
        variant = variants.get(sku)
        if variant is not None and variant.product_id == product_id:  # else deleted since the search ran
            (alternatives if alternative else cards).append(await turn.card(variant.product, variant))
    turn.conversation.last_products = [c.product_id for c in [*cards, *alternatives]]
    buttons = []
    if start + size < len(hits):
        buttons.append(turn.button("search_results_more", f"search:page:{page + 1}"))
    for_query = _for_query(turn, str(last.get("query") or ""))
    if cards or not alternatives:
        turn.say("search_results", cards=cards, buttons=[] if alternatives else buttons, for_query=for_query,
                 first=start + 1, last=min(start + size, matched), total=matched)
    if alternatives:
        # What is not the kind of thing asked for is said to be so: "that's all we have", then labelled alternatives.
        turn.say("search_alternatives" if matched else "search_only_alternatives", cards=alternatives,
                 buttons=buttons, for_query=for_query)


async def note_search_used(turn: Turn) -> None:
    """The shopper acted on the last search's results, so the merchant's report does not count it abandoned."""
    last = turn.conversation.last_search or {}
    if last.get("search_id") and not last.get("used"):
        await mark_search_used(turn.session, search_id=int(last["search_id"]))
        turn.conversation.last_search = {**last, "used": True}


async def details(turn: Turn, product_id: int) -> None:
    """A product's description, price and the options in stock, with an add-to-cart button per option."""
    try:
        product = await get_product(turn.session, product_id=product_id)
    except ProductNotFound:
        turn.say("product_gone")
        return
    stock = await available_stock(turn.session, skus=[v.sku for v in product.variants])
    in_stock = [v for v in product.variants if v.active and stock.get(v.sku, 0) > 0]
    if not product.active:
        turn.say("product_gone")
        return
    if not in_stock:
        # Sold out everywhere, still listed: say so, keep it in view ("is it back in stock?" is about it) and offer
        # similar products, rather than "no longer available".
        turn.conversation.last_products = [product.id]
        turn.say("product_out_of_stock", title=turn.title(product),
                 buttons=[turn.button("button.more_like_this", f"more_like:{product.id}")])
        return
    await note_search_used(turn)
    options = ", ".join(" ".join(v.attributes.values()) or v.sku for v in in_stock)
    description = localized(product.description, turn.locale)
    price = await turn.price_text(variant_price(in_stock[0], product), product.currency)
    buttons = [turn.button("button.add_to_cart", f"cart:add:{v.sku}") for v in in_stock[:6]]
    if len(in_stock) > 1:
        buttons = [type(b)(title=f"{b.title}: {' '.join(v.attributes.values()) or v.sku}", payload=b.payload)
                   for b, v in zip(buttons, in_stock, strict=False)]
    buttons.append(turn.button("button.more_like_this", f"more_like:{product.id}"))
    turn.conversation.last_products = [product.id]
    turn.say("product_details", buttons=buttons, cards=[await turn.card(product, in_stock[0])],
             title=turn.title(product), description=description[:400], price=price, options=options)


skill = Skill("search")


@skill.intent("product_search")
async def for_intent(turn: Turn, intent: str) -> None:
    await search(turn)


@skill.payload("menu:search")
async def ask_query(turn: Turn, press: Press) -> None:
    turn.ask(intent="product_search", slot="query", key="search_ask")


@skill.payload("search:page:")
async def page_button(turn: Turn, press: Press) -> None:
    await show_page(turn, page=int(press.arg))


@skill.payload("search:country:")
async def country_button(turn: Turn, press: Press) -> None:
    """A destination offered under a search whose country was assumed: deliver there and search again."""
    code = set_pressed_country(turn, press)
    if code is None:
        return
    last = turn.conversation.last_search or {}
    turn.say("country_set", country=turn.country_name(code))
    if "query" in last:
        query = str(last.get("query") or "")
        encoder = turn.deps.encoder
        # The message's embedding is gone with its turn: the words searched for are encoded again (one text).
        embedding = (await asyncio.to_thread(encoder, [query]))[0] if encoder is not None and query else None
        await run_search(turn, query=query, filters=dict(last.get("filters") or {}), embedding=embedding)


@skill.payload("product:details:")
async def details_button(turn: Turn, press: Press) -> None:
    await details(turn, int(press.arg))
    if press.impression_id is not None:
        await count_outcome(turn, press.impression_id, "click")


@skill.answer("product_search", slot="query")
def read_query(turn: Turn, question: Question) -> Answer | None:
    if question.confident_other:
        return None

    async def run() -> None:
        turn.conversation.pending = None
        await search(turn)
    return run

"""Product search: free text plus filters, only products sellable to the shopper's country and in stock."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.models import Product, Variant
from commerce.catalog.service import all_products, is_sellable_to, variant_price
from commerce.inventory.service import available_stock
from commerce.search.index import (
    CJK_STOPWORDS,
    STOPWORDS,
    Encoder,
    Vector,
    bm25_scores,
    product_vectors,
    tokens,
)
from kit.errors import InvalidInput

# Converts an amount between currencies; None when no rate is known.
PriceConverter = Callable[[Decimal, str, str], Awaitable[Decimal | None]]
MAX_LIMIT = 50
# Below this cosine a product with no shared word is not shown as a match.
MIN_DENSE = 0.35
DENSE_WEIGHT = 0.6
LEXICAL_SATURATION = 3.0


@dataclass(frozen=True)
class SearchFilters:
    category: str | None = None  # slug, or a word of the category's name in any locale
    colour: str | None = None
    size: str | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    currency: str | None = None  # currency of price_min / price_max
    exclude_product_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ProductHit:
    product_id: int
    sku: str  # the best variant that matches the filters and is in stock
    score: float
    lexical: float
    dense: float


@dataclass
class SearchResult:
    hits: list[ProductHit] = field(default_factory=list)
    total: int = 0


def query_words(text: str) -> str:
    """The words of a query that carry meaning, for showing back to the shopper ("有水壶吗" -> "水壶")."""
    kept = []
    for word in text.split():
        bare = word.strip(".,!?;:'\"()[]“”‘’，。！？：；（）")
        if not bare or bare.lower() in STOPWORDS:
            continue
        bare = bare.strip("".join(CJK_STOPWORDS))
        if bare:
            kept.append(bare)
    return " ".join(kept)


def product_text(product: Product) -> str:
    """What a product is, in every language it has, for lexical and semantic matching."""
    titles = " ".join(product.title.values())
    attributes = " ".join(value for v in product.variants for value in v.attributes.values())
    category = " ".join([product.category.slug.replace("-", " "), *product.category.name.values()])
    return " ".join([titles, titles, " ".join(product.tags), product.brand or "", category, attributes,
                     " ".join(product.description.values())])


def embedding_text(product: Product) -> str:
    return ". ".join([*product.title.values(), ", ".join(product.tags)])


def _category_matches(product: Product, wanted: str) -> bool:
    needle = wanted.strip().lower()
    names = [product.category.slug, *product.category.name.values()]
    return any(needle in name.lower() or name.lower() in needle for name in names if name)


def _attribute(variant: Variant, name: str) -> str:
    for key in (name, "color" if name == "colour" else name):
        if key in variant.attributes:
            return str(variant.attributes[key]).lower()
    return ""


async def _variant_matches(variant: Variant, product: Product, filters: SearchFilters,
                           convert: PriceConverter | None) -> bool:
    if not variant.active:
        return False
    if filters.colour and filters.colour.lower() not in _attribute(variant, "colour"):
        return False
    if filters.size and filters.size.lower() != _attribute(variant, "size"):
        return False
    if filters.price_min is None and filters.price_max is None:
        return True
    price = variant_price(variant, product)
    wanted_currency = (filters.currency or product.currency).upper()
    if wanted_currency != product.currency:
        converted = await convert(price, product.currency, wanted_currency) if convert else None
        if converted is None:
            return True  # no rate: cannot judge the price, so do not hide the product
        price = converted
    if filters.price_min is not None and price < filters.price_min:
        return False
    return not (filters.price_max is not None and price > filters.price_max)


async def _dense_scores(products: list[Product], embedding: Vector | None,
                       encoder: Encoder | None) -> list[float]:
    if embedding is None or encoder is None or embedding.size == 0 or not products:
        return [0.0] * len(products)
    keys = [(p.id, p.updated_at.isoformat()) for p in products]
    # New products are encoded off the event loop; known ones come from the cache.
    rows = await asyncio.to_thread(product_vectors.vectors, keys, [embedding_text(p) for p in products], encoder)
    if rows.shape[1] != embedding.shape[-1]:
        return [0.0] * len(products)
    return [float(x) for x in rows @ np.asarray(embedding, dtype=np.float32)]


async def search_products(session: AsyncSession, *, query: str, embedding: Vector | None = None,
                          filters: SearchFilters | None = None, country: str | None = None, limit: int = 5,
                          offset: int = 0, encoder: Encoder | None = None,
                          convert: PriceConverter | None = None) -> SearchResult:
    """Products matching the text and filters, best first, sellable to `country` and in stock.

    Ranking fuses BM25 over the product's text in every language with the cosine between the message's
    embedding (reused, not recomputed) and the product's vector from `encoder`. An empty query lists every
    product that passes the filters.
    """
    if limit < 1 or limit > MAX_LIMIT or offset < 0:
        raise InvalidInput(f"limit must be 1..{MAX_LIMIT} and offset not negative.", code="invalid_page")
    filters = filters or SearchFilters()
    products = [p for p in await all_products(session)
                if is_sellable_to(p, country) and p.id not in filters.exclude_product_ids
                and (not filters.category or _category_matches(p, filters.category))]
    stock = await available_stock(session, skus=[v.sku for p in products for v in p.variants])
    chosen: list[tuple[Product, str]] = []
    for product in products:
        for variant in product.variants:
            if stock.get(variant.sku, 0) > 0 and await _variant_matches(variant, product, filters, convert):
                chosen.append((product, variant.sku))
                break
    query_tokens = tokens(query, drop_stopwords=True)
    lexical = bm25_scores(query_tokens, [tokens(product_text(p)) for p, _ in chosen])
    dense = await _dense_scores([p for p, _ in chosen], embedding, encoder) if query_tokens else [0.0] * len(chosen)
    has_dense = any(dense)
    hits: list[ProductHit] = []
    for (product, sku), lex, cos in zip(chosen, lexical, dense, strict=True):
        if query_tokens and lex <= 0 and (not has_dense or cos < MIN_DENSE):
            continue
        saturated = lex / (lex + LEXICAL_SATURATION)
        score = DENSE_WEIGHT * cos + (1 - DENSE_WEIGHT) * saturated if has_dense else saturated
        hits.append(ProductHit(product_id=product.id, sku=sku, score=round(score, 6), lexical=round(lex, 6),
                               dense=round(cos, 6)))
    hits.sort(key=lambda h: (-h.score, h.product_id))
    return SearchResult(hits=hits[offset:offset + limit], total=len(hits))


async def similar_products(session: AsyncSession, *, product_id: int, country: str | None = None, limit: int = 5,
                           encoder: Encoder | None = None) -> list[ProductHit]:
    """"More like this": products closest to one product, in stock and sellable to `country`."""
    source = next((p for p in await all_products(session) if p.id == product_id), None)
    if source is None:
        return []
    embedding = None
    if encoder is not None:
        embedding = (await asyncio.to_thread(product_vectors.vectors, [(source.id, source.updated_at.isoformat())],
                                             [embedding_text(source)], encoder))[0]
    query = " ".join([*source.title.values(), *source.tags, source.category.slug.replace("-", " ")])
    result = await search_products(session, query=query, embedding=embedding, country=country, limit=limit,
                                   filters=SearchFilters(exclude_product_ids=frozenset({product_id})),
                                   encoder=encoder)
    return result.hits


async def warm_product_vectors(session: AsyncSession, *, encoder: Encoder) -> int:
    """Encode every active product now (at start-up) so the first search does not wait; returns how many."""
    products = await all_products(session)
    keys = [(p.id, p.updated_at.isoformat()) for p in products]
    await asyncio.to_thread(product_vectors.vectors, keys, [embedding_text(p) for p in products], encoder)
    return len(products)


__all__ = ["PriceConverter", "ProductHit", "SearchFilters", "SearchResult", "query_words", "search_products",
           "similar_products", "warm_product_vectors"]

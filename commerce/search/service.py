"""Product search: free text plus filters, only products sellable to the shopper's country and in stock."""
# Over 500 lines: the warm catalog, its rules and search_products share the cached facts and their lock.
from __future__ import annotations

import asyncio
import math
import re
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.models import Product
from commerce.catalog.service import all_products, sellable_to, variant_price
from commerce.inventory.availability import stock_by_reach
from commerce.search.index import (
    CJK_STOPWORDS,
    STOPWORDS,
    Encoder,
    IndexedProduct,
    ProductIndex,
    RankedProduct,
    Vector,
    product_vectors,
    search_tokens,
)
from commerce.search.models import SearchLogEntry, SearchRule, SearchSynonym
from commerce.search.repository import SearchRepository, index_version
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound

# Converts an amount between currencies; None when no rate is known.
PriceConverter = Callable[[Decimal, str, str], Awaitable[Decimal | None]]
MAX_LIMIT = 50
# Longer queries are cut here (a pasted paragraph still searches on its start).
MAX_QUERY_CHARS = 200
BOOST = 0.25
BURY = 1.0
RULE_KINDS = ("boost", "bury", "pin")
# A hit whose words score at least this share of the best hit's BM25 is a match ("running shoes": both running
# shoes); below, it only shares a word or a meaning ("shoes": slippers, loafers) and is an alternative.
STRONG_MATCH = 0.5


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
    # Found by meaning or a few shared words only, not the kind of thing asked for: shown after the matches,
    # labelled as a close alternative (`STRONG_MATCH`).
    alternative: bool = False


@dataclass
class SearchResult:
    hits: list[ProductHit] = field(default_factory=list)
    total: int = 0
    search_id: int | None = None  # the search log row, when the search was recorded
    # With `elsewhere=True`: matches of the kind asked for that pass every filter but cannot go to `country` (not
    # in stock at its warehouse, or not sold there) while in stock at another location, best first.
    elsewhere: list[ProductHit] = field(default_factory=list)


def normalise_query(text: str) -> str:
    """Lower case, NFKC (full-width to half-width), single spaces, at most MAX_QUERY_CHARS."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return " ".join(folded.split())[:MAX_QUERY_CHARS]


def query_language(text: str) -> str:
    return "zh" if re.search(r"[\u3400-\u9fff]", text) else "en"


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


@dataclass(frozen=True)
class VariantFacts:
    sku: str
    attributes: dict[str, str]
    price: Decimal
    active: bool


@dataclass(frozen=True)
class ProductFacts:
    """What filtering needs of a product, kept in memory next to the index (no ORM objects)."""

    product_id: int
    slug: str
    category_names: tuple[str, ...]  # slug and names in every locale
    sellable_countries: frozenset[str]  # empty: everywhere
    currency: str
    variants: tuple[VariantFacts, ...]

    def sellable_to(self, country: str | None) -> bool:
        return sellable_to(self.sellable_countries, country)

    def in_category(self, wanted: str) -> bool:
        needle = wanted.strip().lower()
        return any(needle in name.lower() or name.lower() in needle for name in self.category_names if name)


def facts_of(product: Product) -> ProductFacts:
    return ProductFacts(
        product_id=product.id, slug=product.slug,
        category_names=(product.category.slug, *product.category.name.values()),
        sellable_countries=frozenset(product.sellable_countries), currency=product.currency,
        variants=tuple(VariantFacts(sku=v.sku, attributes={k: str(x) for k, x in v.attributes.items()},
                                    price=variant_price(v, product), active=v.active) for v in product.variants))


# The variant attributes that name a colour: a mug's "glaze: ocean blue" is blue as much as a bag's "colour: black"
# (a keyboard's "switch: linear red" is not red).
COLOUR_ATTRIBUTES = ("colour", "color", "glaze", "finish", "shade")


def _colours(variant: VariantFacts) -> str:
    return " / ".join(str(variant.attributes[key]).lower() for key in COLOUR_ATTRIBUTES if key in variant.attributes)


def _variant_fits(variant: VariantFacts, filters: SearchFilters) -> bool:
    """Active, and the colour and size asked for (the checks that need no stock and no rate)."""
    if not variant.active:
        return False
    if filters.colour and filters.colour.lower() not in _colours(variant):
        return False
    return not (filters.size and size_key(filters.size) != size_key(str(variant.attributes.get("size", ""))))


def size_key(size: str) -> str:
    """A size as compared: "EU 42", "size 42", "42码" and "42" are one size; "size s" and "S" too."""
    key = re.sub(r"^(?:size|eu)\s*|\s*(?:码|號|号)$", "", size.strip().lower())
    return re.sub(r"^(?:size|eu)\s*", "", key)


async def _price_matches(variant: VariantFacts, product: ProductFacts, filters: SearchFilters,
                         convert: PriceConverter | None) -> bool:
    if filters.price_min is None and filters.price_max is None:
        return True
    price = variant.price
    wanted_currency = (filters.currency or product.currency).upper()
    if wanted_currency != product.currency:
        converted = await convert(price, product.currency, wanted_currency) if convert else None
        if converted is None:
            return True  # no rate: cannot judge the price, so do not hide the product
        price = converted
    if filters.price_min is not None and price < filters.price_min:
        return False
    return not (filters.price_max is not None and price > filters.price_max)


def version_of(product: Product) -> str:
    """The product's version in the index and its vector cache (its category loaded)."""
    return index_version(product.updated_at, product.category.updated_at)


def indexed(product: Product) -> IndexedProduct:
    return IndexedProduct(
        product_id=product.id, version=version_of(product), titles=list(product.title.values()),
        tags=list(product.tags), brand=product.brand or "",
        category=[product.category.slug.replace("-", " "), *product.category.name.values()],
        attributes=[str(value) for v in product.variants for value in v.attributes.values()],
        descriptions=list(product.description.values()))


# How long a catalog signature (with the merchant controls' version) is trusted before the next search reads it
# again. Product and control writes made in this process are seen at once (see _note_watched_writes); other
# processes' within this time.
SIGNATURE_TTL = 0.5


class WarmCatalog:
    """The process's search index and product facts, kept in step with the catalog without reloading it.

    A search reads a one-row signature (active count, highest id, latest updated_at, per database; the same
    statement reads the merchant controls' version) unless one was read less than SIGNATURE_TTL ago and no
    statement of this process has written products, variants or the controls' version since (that query scans
    the products table: ~30 ms CPU at 100k products on SQLite).
    When it moved, the products changed since the last latest updated_at are read (ids and times, then just
    the stale ones in full) and re-indexed; only when the count still disagrees (a product retired), the
    time went backwards, or vectors are wanted for products indexed without, are all active ids compared.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = ProductIndex()
        self.facts: dict[int, ProductFacts] = {}
        self.without_vectors: set[int] = set()
        self.signature: tuple[str, int, int, datetime | None] | None = None
        self.clock = clock
        self.controls_version = 0  # search_settings_version, read with `signature`
        self.checked_at = -math.inf  # when `signature` was read (clock seconds)
        self.generation = 0  # moves on every product or control write seen in this process
        self._lock = threading.Lock()

    def recheck(self) -> None:
        """Products or merchant controls changed: the next search reads the signature again."""
        self.generation += 1
        self.checked_at = -math.inf

    async def refresh(self, session: AsyncSession, encoder: Encoder | None) -> None:
        repository = SearchRepository(session)
        database = str(getattr(session.bind, "url", ""))
        if (self.signature is not None and self.signature[0] == database
                and self.clock() - self.checked_at < SIGNATURE_TTL
                and (encoder is None or not self.without_vectors)):
            return
        generation, checked_at = self.generation, self.clock()
        count, top, latest, self.controls_version = await repository.catalog_signature()
        signature = (database, count, top, latest)
        await self._follow(repository, database, signature, encoder)
        if self.generation == generation and self.signature == signature:
            self.checked_at = checked_at  # a write seen meanwhile leaves it unchecked

    async def _follow(self, repository: SearchRepository, database: str,
                      signature: tuple[str, int, int, datetime | None], encoder: Encoder | None) -> None:
        _, count, _, latest = signature
        if signature == self.signature and (encoder is None or not self.without_vectors):
            return
        previous = self.signature
        since = previous[3] if previous is not None and previous[0] == database else None
        if (since is not None and latest is not None and latest >= since
                and not (encoder is not None and self.without_vectors)):
            # Only what changed since the last look; the full id list only if products were retired.
            versions = await repository.versions_since(since)
            await self._sync(repository, versions, [], encoder)
            if len(self.index) == count:
                self.signature = signature
                return
        versions = await repository.active_versions()
        await self._sync(repository, versions, [i for i in self.index.product_ids() if i not in versions], encoder)
        self.signature = signature

    async def _sync(self, repository: SearchRepository, versions: dict[int, str], gone: list[int],
                    encoder: Encoder | None) -> None:
        stale = [i for i, version in versions.items() if self._stale(i, version, encoder)]
        products = await repository.products(stale) if stale else []
        if products or gone:
            await asyncio.to_thread(self._apply, products, gone, encoder)

    def _stale(self, product_id: int, version: str, encoder: Encoder | None) -> bool:
        current = self.index.version_of(product_id)
        return current != f"{version}|v" and not (current == f"{version}|n" and encoder is None)

    def _apply(self, products: list[Product], gone: list[int], encoder: Encoder | None) -> None:
        with self._lock:
            self.index.remove(gone)
            for product_id in gone:
                self.facts.pop(product_id, None)
                self.without_vectors.discard(product_id)
            if not products:
                return
            mark = "v" if encoder is not None else "n"
            documents = [replace(d, version=f"{d.version}|{mark}") for d in map(indexed, products)]
            vectors = None
            if encoder is not None:
                vectors = product_vectors.vectors([(p.id, version_of(p)) for p in products],
                                                  [embedding_text(p) for p in products], encoder)
            self.index.upsert(documents, vectors)
            for product in products:
                self.facts[product.id] = facts_of(product)
                if encoder is None:
                    self.without_vectors.add(product.id)
                else:
                    self.without_vectors.discard(product.id)


# One per process: searches keep it warm (only changed products are read from the database).
warm = WarmCatalog()

# A statement that writes the products, variants, categories or controls' version table (ORM flush, Core or raw SQL),
# by its first words.
_WATCHED_WRITE = re.compile(
    r'^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from)\s+"?(?:products|variants|categories|'
    r'search_settings_version)"?[\s(]|^\s*truncate\b[^;]*\b"?(?:products|variants|categories|search_settings_version)"?\b',
    re.IGNORECASE)
_WROTE_CATALOG = "search.wrote_catalog"


@event.listens_for(Engine, "after_cursor_execute")
def _note_watched_writes(conn: Connection, _cursor: Any, statement: str, _parameters: Any, _context: Any,
                         _executemany: bool) -> None:
    if _WATCHED_WRITE.match(statement[:300]):
        conn.info[_WROTE_CATALOG] = True
        warm.recheck()  # now, and again at commit (a search may read the old signature in between)


@event.listens_for(Engine, "commit")
def _catalog_committed(conn: Connection) -> None:
    if conn.info.pop(_WROTE_CATALOG, False):
        warm.recheck()


@event.listens_for(Engine, "rollback")
def _catalog_rolled_back(conn: Connection) -> None:
    conn.info.pop(_WROTE_CATALOG, None)
product_index = warm.index


def catalog_generation() -> int:
    """Moves on every write to products, variants, categories or the search controls that this process makes (at
    the statement and again at commit): a cache of catalog words compares it to know it must look again now."""
    return warm.generation


async def catalog_version(session: AsyncSession) -> tuple[object, ...]:
    """A cheap fingerprint of what the shop sells by, in two statements: it moves when a product is added, changed
    or retired, a category is added or renamed, or a merchant synonym or rule changes (in any process)."""
    repository = SearchRepository(session)
    return (str(getattr(session.bind, "url", "")), *await repository.catalog_signature(),
            await repository.category_names())


@dataclass(frozen=True)
class Controls:
    version: int
    synonyms: list[list[str]]
    rules: list[tuple[str, int, str | None, int]]  # kind, product id, normalised query or None, position


_controls = Controls(version=-1, synonyms=[], rules=[])


async def _current_controls(session: AsyncSession) -> Controls:
    """The merchant's controls at the version read with the catalog signature (`warm.refresh` first); they are
    read again only when that version moved."""
    global _controls
    repository = SearchRepository(session)
    version = warm.controls_version
    if version != _controls.version:
        _controls = Controls(version=version, synonyms=[list(s.terms) for s in await repository.synonyms()],
                             rules=[(r.kind, r.product_id, r.query, r.position) for r in await repository.rules()])
    return _controls


def _mentions(query: str, term: str) -> bool:
    if re.search(r"[\u3400-\u9fff]", term):
        return term in query
    return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", query) is not None


def synonym_terms(query: str, synonyms: list[list[str]]) -> list[str]:
    """Index terms of every synonym of a word or phrase the query mentions."""
    normal = normalise_query(query)
    extra: list[str] = []
    for group in synonyms:
        words = [normalise_query(t) for t in group]
        if any(_mentions(normal, w) for w in words if w):
            for word in words:
                if not _mentions(normal, word):
                    extra.extend(search_tokens(word, query=True))
    return extra


def _apply_rules(hits: list[ProductHit], extra: dict[int, ProductHit], controls: Controls,
                 query: str) -> list[ProductHit]:
    """Boosts and buries move scores; pins put a product at its position. `extra` holds boosted or pinned
    products found outside the ranked window (already checked for filters and stock)."""
    normal = normalise_query(query)
    adjust: dict[int, float] = {}
    pins: list[tuple[int, int]] = []
    for kind, product_id, rule_query, position in controls.rules:
        if rule_query is not None and rule_query != normal:
            continue
        if kind == "boost":
            adjust[product_id] = adjust.get(product_id, 0.0) + BOOST
        elif kind == "bury":
            adjust[product_id] = adjust.get(product_id, 0.0) - BURY
        elif kind == "pin" and rule_query is not None:
            pins.append((position, product_id))
    listed = {h.product_id for h in hits}
    hits = hits + [h for i, h in extra.items() if i not in listed and i in adjust and adjust[i] > 0]
    if adjust:
        # A boosted product counts as a match: the merchant wants it shown for this query.
        hits = [ProductHit(product_id=h.product_id, sku=h.sku, score=round(h.score + adjust.get(h.product_id, 0.0), 6),
                           lexical=h.lexical, dense=h.dense,
                           alternative=h.alternative and adjust.get(h.product_id, 0.0) <= 0) for h in hits]
        hits.sort(key=lambda h: (h.alternative, -h.score, h.product_id))
    for position, product_id in sorted(pins):
        found = next((h for h in hits if h.product_id == product_id), None) or extra.get(product_id)
        if found is None:
            continue  # pinned product out of stock, not sellable there or filtered out
        hits = [h for h in hits if h.product_id != product_id]
        hits.insert(max(0, position - 1), replace(found, alternative=False))
    return hits


def matches_first(hits: list[ProductHit]) -> list[ProductHit]:
    """The hits that are the kind of thing asked for first (their words score at least `STRONG_MATCH` of the best
    hit's), then the others marked as alternatives; unchanged when no hit matched by words (nothing to judge by)."""
    best = max((h.lexical for h in hits), default=0.0)
    if best <= 0:
        return hits
    marked = [h if h.lexical >= STRONG_MATCH * best else replace(h, alternative=True) for h in hits]
    return [h for h in marked if not h.alternative] + [h for h in marked if h.alternative]


def _rule_targets(controls: Controls, query: str) -> tuple[set[int], set[int], int]:
    """(boosted products, pinned products, how many products are buried) for this query."""
    normal = normalise_query(query)
    boosted: set[int] = set()
    pinned: set[int] = set()
    buried = 0
    for kind, product_id, rule_query, _ in controls.rules:
        if rule_query is not None and rule_query != normal:
            continue
        if kind == "bury":
            buried += 1
        elif kind == "boost":
            boosted.add(product_id)
        elif kind == "pin" and rule_query is not None:
            pinned.add(product_id)
    return boosted, pinned, buried


WINDOW = 64  # products ranked per round; the window doubles until enough pass filters and stock


async def search_products(session: AsyncSession, *, query: str, embedding: Vector | None = None,
                          filters: SearchFilters | None = None, country: str | None = None, limit: int = 5,
                          offset: int = 0, encoder: Encoder | None = None,
                          convert: PriceConverter | None = None, channel: str | None = None,
                          language: str | None = None, elsewhere: bool = False) -> SearchResult:
    """Products matching the text and filters, best first, sellable to `country` and in stock.

    Ranking fuses BM25 (jieba words and bigrams, typo-tolerant, merchant synonyms) over the product's text
    in every language with the cosine between the message's embedding (reused, not recomputed) and the
    product's multilingual vector from `encoder`; then the merchant's boosts, buries and pins. An empty
    query lists every product that passes the filters; a query with no searchable word (only emoji or
    punctuation) finds nothing. With `channel`, the search is recorded for the merchant's report.

    The catalog is not read per search: the warm index answers, filters use the facts kept beside it, and
    stock is read only for the ranked products looked at, best first, until the page is full. `total` is
    exact when every match was looked at, otherwise the checked hits plus the matches not yet checked.
    `elsewhere`: also collect `SearchResult.elsewhere` (for a `country` only assumed), from the same stock read.
    """
    if limit < 1 or limit > MAX_LIMIT or offset < 0:
        raise InvalidInput(f"limit must be 1..{MAX_LIMIT} and offset not negative.", code="invalid_page")
    query = query[: MAX_QUERY_CHARS * 4]
    filters = filters or SearchFilters()
    await warm.refresh(session, encoder)
    controls = await _current_controls(session)
    extra = synonym_terms(query, controls.synonyms)
    has_words = bool(search_tokens(query, query=True) or extra)
    if query.strip() and not has_words:
        return await _finish(session, SearchResult(), query=query, channel=channel, language=language)

    async def passing(ranked: list[RankedProduct]) -> list[ProductHit]:
        """The ranked products that pass every filter, with their best variant in stock (one stock read, only for
        the variants that are active and of the colour and size asked for)."""
        shortlisted: list[tuple[RankedProduct, ProductFacts, list[VariantFacts]]] = []
        for r in ranked:
            facts = warm.facts.get(r.product_id)
            if facts is None or r.product_id in filters.exclude_product_ids:
                continue
            if not facts.sellable_to(country) and not (elsewhere and facts.sellable_countries):
                continue
            if filters.category and not facts.in_category(filters.category):
                continue
            fitting = [v for v in facts.variants if _variant_fits(v, filters)]
            if fitting:
                shortlisted.append((r, facts, fitting))
        if not shortlisted:
            return []
        # Only the warehouse that ships to the shopper's country counts (issue 6); the same statement sums every
        # location, which only `elsewhere` uses.
        skus = [v.sku for _, _, fitting in shortlisted for v in fitting]
        reach = await stock_by_reach(session, skus=skus, country=country)
        if not elsewhere:
            reach = {sku: (near, 0) for sku, (near, _) in reach.items()}
        out = []
        for r, facts, fitting in shortlisted:
            sellable = facts.sellable_to(country)
            best: ProductHit | None = None
            for variant in fitting:
                near, anywhere = reach.get(variant.sku, (0, 0))
                if (near > 0 and sellable) or anywhere > 0:
                    if not await _price_matches(variant, facts, filters, convert):
                        continue
                    hit = ProductHit(product_id=r.product_id, sku=variant.sku, score=r.score, lexical=r.lexical,
                                     dense=r.dense)
                    if near > 0 and sellable:
                        out.append(hit)
                        best = None
                        break
                    best = best or hit
            if best is not None:
                away.append(best)
        return out

    rank_embedding = embedding if encoder is not None else None
    boosted, pinned, buried = _rule_targets(controls, query) if query.strip() else (set(), set(), 0)
    needed = offset + limit + buried
    hits: list[ProductHit] = []
    away: list[ProductHit] = []  # in stock only where it cannot go to `country` (collected with `elsewhere`)
    looked = 0
    window = max(WINDOW, 2 * needed)
    while True:
        ranked, matching = await asyncio.to_thread(
            warm.index.rank_window, query, embedding=rank_embedding, mode="hybrid", limit=window, extra_terms=extra)
        seen = {h.product_id for h in hits}
        hits.extend(h for h in await passing(ranked[looked:]) if h.product_id not in seen)
        looked = len(ranked)
        if len(hits) >= needed or looked >= matching:
            break
        window *= 4
    total = len(hits) + (matching - looked)
    if query.strip():
        # Elsewhere counts only the kind of thing asked for, judged against the best hit wherever it is stocked.
        strongest = max((h.lexical for h in [*hits, *away]), default=0.0)
        listed = {h.product_id for h in hits}
        away = [h for h in away if h.lexical >= STRONG_MATCH * strongest and h.product_id not in listed]
        hits = matches_first(hits)
        extra_hits: dict[int, ProductHit] = {}
        missing = (boosted | pinned) - {h.product_id for h in hits}
        if missing:
            # Outside the window: a boosted product must still match the query; a pinned one need not.
            ranked_rules, _ = warm.index.rank_window(query, embedding=rank_embedding, mode="hybrid",
                                                      limit=len(missing), allowed=missing, extra_terms=extra)
            scored = {r.product_id: r for r in ranked_rules}
            outside = [scored.get(i) or RankedProduct(product_id=i, score=0.0, lexical=0.0, dense=0.0)
                       for i in sorted(missing) if i in scored or i in pinned]
            extra_hits = {h.product_id: h for h in await passing(outside)}
        before = len(hits)
        hits = _apply_rules(hits, extra_hits, controls, query)
        total += len(hits) - before
    result = SearchResult(hits=hits[offset:offset + limit], total=total, elsewhere=away)
    return await _finish(session, result, query=query, channel=channel, language=language)


async def _finish(session: AsyncSession, result: SearchResult, *, query: str, channel: str | None,
                  language: str | None) -> SearchResult:
    if channel is not None and query.strip():
        result.search_id = await record_search(session, query=query, language=language or query_language(query),
                                               channel=channel, result_count=result.total)
    return result


async def similar_products(session: AsyncSession, *, product_id: int, country: str | None = None, limit: int = 5,
                           encoder: Encoder | None = None) -> list[ProductHit]:
    """"More like this": products closest to one product, in stock and sellable to `country`."""
    found = await SearchRepository(session).products([product_id])
    if not found:
        return []
    source = found[0]
    embedding = None
    if encoder is not None:
        embedding = (await asyncio.to_thread(product_vectors.vectors, [(source.id, version_of(source))],
                                             [embedding_text(source)], encoder))[0]
    query = " ".join([*source.title.values(), *source.tags, source.category.slug.replace("-", " ")])
    result = await search_products(session, query=query, embedding=embedding, country=country, limit=limit,
                                   filters=SearchFilters(exclude_product_ids=frozenset({product_id})),
                                   encoder=encoder)
    return result.hits


async def named_products(session: AsyncSession, *, query: str, limit: int = 3) -> list[int]:
    """The active products a phrase names ("the kettle", "这款耳机"), best first, by their words alone: in stock or
    not, sellable anywhere (a question about a product is answered even when it is sold out)."""
    await warm.refresh(session, None)
    extra = synonym_terms(query, (await _current_controls(session)).synonyms)
    if not (search_tokens(query, query=True) or extra):
        return []
    ranked, _ = await asyncio.to_thread(warm.index.rank_window, query, embedding=None, mode="lexical",
                                        limit=limit, extra_terms=extra)
    return [r.product_id for r in ranked if r.lexical > 0]


async def hit_products(session: AsyncSession, *, product_ids: list[int]) -> dict[int, Product]:
    """The rows of a page of hits (with variants and category), not the catalog."""
    return {p.id: p for p in await SearchRepository(session).products(product_ids)}


async def warm_product_vectors(session: AsyncSession, *, encoder: Encoder) -> int:
    """Index and encode every active product now (at start-up) so the first search does not wait."""
    await warm.refresh(session, encoder)
    return len(warm.index)


# ---------- search log and the merchant's report ----------

async def record_search(session: AsyncSession, *, query: str, language: str, channel: str, result_count: int) -> int:
    """Log one shopper search; returns its id (pass it to `mark_search_used` when a result is opened)."""
    entry = SearchLogEntry(query=query[:MAX_QUERY_CHARS], normalised=normalise_query(query) or "-",
                           language=(language or "en")[:8], channel=(channel or "unknown")[:32],
                           result_count=result_count, clicked=False, created_at=utcnow())
    session.add(entry)
    await session.flush()
    return entry.id


async def mark_search_used(session: AsyncSession, *, search_id: int) -> None:
    """The shopper opened or added a result: the search was not abandoned."""
    entry = await session.get(SearchLogEntry, search_id)
    if entry is None:
        raise NotFound(f"No search {search_id}.", code="search_not_found")
    entry.clicked = True
    await session.flush()


@dataclass(frozen=True)
class ReportRow:
    query: str
    language: str
    searches: int
    results: int


@dataclass(frozen=True)
class SearchReport:
    zero_results: list[ReportRow]
    abandoned: list[ReportRow]
    days: int


async def search_report(session: AsyncSession, *, days: int = 30, limit: int = 50) -> SearchReport:
    """Queries that found nothing, and queries whose results nobody opened, most frequent first."""
    if not 1 <= days <= 366 or not 1 <= limit <= 500:
        raise InvalidInput("days must be 1..366 and limit 1..500.", code="invalid_report_range")
    since = utcnow() - timedelta(days=days)
    repository = SearchRepository(session)
    rows = {zero: [ReportRow(query=q, language=lang, searches=n, results=r)
                   for q, lang, n, r in await repository.report(since=since, zero=zero, limit=limit)]
            for zero in (True, False)}
    return SearchReport(zero_results=rows[True], abandoned=rows[False], days=days)


# ---------- merchant controls (each change bumps the settings version: live on the next search) ----------

def _clean_terms(terms: list[str]) -> list[str]:
    cleaned = []
    for term in terms:
        normal = normalise_query(term)
        if normal and normal not in cleaned:
            cleaned.append(normal)
    if len(cleaned) < 2 or any(len(t) > 80 for t in cleaned) or len(cleaned) > 20:
        raise InvalidInput("A synonym group needs 2 to 20 different words or phrases of at most 80 characters.",
                           code="invalid_synonyms")
    return cleaned


async def list_synonyms(session: AsyncSession) -> list[SearchSynonym]:
    return list(await SearchRepository(session).synonyms())


async def add_synonyms(session: AsyncSession, *, terms: list[str]) -> SearchSynonym:
    row = SearchSynonym(terms=_clean_terms(terms), created_at=utcnow())
    session.add(row)
    await session.flush()
    await SearchRepository(session).bump_version()
    return row


async def delete_synonyms(session: AsyncSession, *, synonym_id: int) -> None:
    row = await session.get(SearchSynonym, synonym_id)
    if row is None:
        raise NotFound(f"No synonym group {synonym_id}.", code="synonyms_not_found")
    await session.delete(row)
    await session.flush()
    await SearchRepository(session).bump_version()


async def list_rules(session: AsyncSession) -> list[SearchRule]:
    return list(await SearchRepository(session).rules())


async def add_rule(session: AsyncSession, *, kind: str, product_slug: str, query: str | None = None,
                   position: int = 1) -> SearchRule:
    """Boost or bury a product (for one query or everywhere), or pin it at `position` for one query."""
    if kind not in RULE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(RULE_KINDS)}.", code="invalid_rule_kind")
    normal = normalise_query(query) if query is not None else None
    if kind == "pin" and not normal:
        raise InvalidInput("A pinned result needs the query it is pinned for.", code="pin_needs_query")
    if not 1 <= position <= MAX_LIMIT:
        raise InvalidInput(f"position must be 1..{MAX_LIMIT}.", code="invalid_position")
    product = next((p for p in await all_products(session) if p.slug == product_slug), None)
    if product is None:
        raise NotFound(f"No active product {product_slug!r}.", code="product_not_found")
    row = SearchRule(kind=kind, product_id=product.id, query=normal or None, position=position, created_at=utcnow())
    session.add(row)
    await session.flush()
    await SearchRepository(session).bump_version()
    return row


async def delete_rule(session: AsyncSession, *, rule_id: int) -> None:
    row = await session.get(SearchRule, rule_id)
    if row is None:
        raise NotFound(f"No search rule {rule_id}.", code="rule_not_found")
    await session.delete(row)
    await session.flush()
    await SearchRepository(session).bump_version()


__all__ = ["PriceConverter", "ProductHit", "ReportRow", "SearchFilters", "SearchReport", "SearchResult", "add_rule",
           "add_synonyms", "catalog_generation", "catalog_version", "delete_rule", "delete_synonyms", "hit_products",
           "list_rules", "list_synonyms", "mark_search_used", "query_words", "record_search", "search_products",
           "search_report", "similar_products", "warm_product_vectors"]

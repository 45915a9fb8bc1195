"""Catalog rules: products with variants, categories, multilingual text, where a product may be sold."""
from __future__ import annotations

import base64
from collections.abc import Collection, Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.errors import (
    CategoryNotFound,
    DuplicateSku,
    DuplicateSlug,
    InvalidCountry,
    ProductNotFound,
    UnknownSku,
)
from commerce.catalog.models import Category, Product, Variant
from commerce.catalog.repository import CatalogRepository
from commerce.catalog.schemas import CategoryIn, ProductIn, ProductOut, ProductPage, VariantOut
from commerce.money import require_currency
from kit.clock import utcnow
from kit.errors import InvalidInput

MAX_PAGE = 200


def localized(texts: dict[str, str], locale: str) -> str:
    """The text in the locale, else English, else any."""
    return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")


def variant_price(variant: Variant, product: Product) -> Decimal:
    return variant.price if variant.price is not None else product.base_price


def sellable_to(sellable_countries: Collection[str], country: str | None) -> bool:
    """The one country rule of products: no list = everywhere, no country known = allowed, else listed. Codes are
    stored upper-case (`ProductIn` makes them so)."""
    return not sellable_countries or country is None or country.upper() in sellable_countries


def is_sellable_to(product: Product, country: str | None) -> bool:
    return sellable_to(product.sellable_countries, country)


async def create_category(session: AsyncSession, *, data: CategoryIn) -> Category:
    repo = CatalogRepository(session)
    if await repo.category_by_slug(data.slug) is not None:
        raise DuplicateSlug(f"A category with slug {data.slug!r} exists.")
    category = Category(slug=data.slug, name=data.name, hs_chapter=data.hs_chapter, updated_at=utcnow())
    session.add(category)
    await session.flush()
    return category


async def get_category(session: AsyncSession, *, slug: str) -> Category:
    """The category `slug`; CategoryNotFound."""
    category = await CatalogRepository(session).category_by_slug(slug)
    if category is None:
        raise CategoryNotFound(f"No category {slug!r}.")
    return category


async def rename_category(session: AsyncSession, *, slug: str, name: dict[str, str]) -> Category:
    """Give the category `slug` new names (locale -> name, replacing the old ones); its `updated_at` moves, so
    search re-indexes its products in every process. CategoryNotFound, or InvalidInput for an empty name."""
    cleaned = {locale.strip(): text.strip() for locale, text in name.items()}
    if not cleaned or any(not locale or not text for locale, text in cleaned.items()):
        raise InvalidInput("Give the category a name in at least one language, none of them empty.",
                           code="invalid_category_name", field="name")
    category = await get_category(session, slug=slug)
    category.name, category.updated_at = cleaned, utcnow()
    await session.flush()
    return category


async def create_product(session: AsyncSession, *, data: ProductIn) -> Product:
    """Create a product with its variants; SKUs and slug must be new."""
    repo = CatalogRepository(session)
    currency = require_currency(data.currency)
    category = await repo.category_by_slug(data.category)
    if category is None:
        raise CategoryNotFound(f"No category {data.category!r}.")
    if await repo.slug_exists(data.slug):
        raise DuplicateSlug(f"A product with slug {data.slug!r} exists.")
    skus = [v.sku for v in data.variants]
    if len(set(skus)) != len(skus):
        raise DuplicateSku("The same SKU appears twice in this product.")
    taken = await repo.sku_exists(skus)
    if taken:
        raise DuplicateSku(f"SKU already exists: {', '.join(sorted(taken))}.")
    for country in data.sellable_countries:
        if not country.isalpha():
            raise InvalidCountry(f"{country!r} is not an ISO 3166 alpha-2 code.")
    if "en" not in data.title:
        raise InvalidInput("A product needs at least an English title.", code="missing_title")
    now = utcnow()
    product = Product(slug=data.slug, category_id=category.id, title=data.title,
                      description=data.description, brand=data.brand, tags=data.tags,
                      image_url=data.image_url, base_price=data.base_price, currency=currency,
                      weight_grams=data.weight_grams, sellable_countries=sorted(set(data.sellable_countries)),
                      active=True, created_at=now, updated_at=now)
    session.add(product)
    await session.flush()
    for v in data.variants:
        session.add(Variant(product_id=product.id, sku=v.sku, attributes=v.attributes, price=v.price,
                            weight_grams=v.weight_grams, active=True))
    await session.flush()
    return await get_product(session, product_id=product.id)


async def get_product(session: AsyncSession, *, product_id: int) -> Product:
    product = await CatalogRepository(session).product(product_id)
    if product is None:
        raise ProductNotFound(f"No product {product_id}.")
    return product


async def get_products(session: AsyncSession, *, product_ids: Sequence[int]) -> dict[int, Product]:
    """The products among `product_ids` that exist, by id, loaded as `get_product` loads one (variants and
    category) but in a fixed number of statements: what a page of product cards needs."""
    return {p.id: p for p in await CatalogRepository(session).products_by_ids(product_ids)}


async def get_variant(session: AsyncSession, *, sku: str) -> Variant:
    """The variant with its product and category loaded, or UnknownSku."""
    variant = await CatalogRepository(session).variant_by_sku(sku)
    if variant is None:
        raise UnknownSku(f"No product variant has SKU {sku!r}.", sku=sku)
    return variant


async def get_variants(session: AsyncSession, *, skus: list[str]) -> dict[str, Variant]:
    found = {v.sku: v for v in await CatalogRepository(session).variants_by_skus(skus)}
    missing = [s for s in skus if s not in found]
    if missing:
        raise UnknownSku(f"Unknown SKU: {', '.join(missing)}.", skus=missing)
    return found


async def find_variants(session: AsyncSession, *, skus: Sequence[str]) -> dict[str, Variant]:
    """The variants among `skus` that exist, by SKU, each with its product loaded (not its category nor its other
    variants), in one statement: what product cards and recommendation filters read. Unknown SKUs are left out,
    not refused (for callers that filter lists)."""
    if not skus:
        return {}
    return {v.sku: v for v in await CatalogRepository(session).variants_with_products(list(dict.fromkeys(skus)))}


async def all_products(session: AsyncSession) -> list[Product]:
    return list(await CatalogRepository(session).all_products())


async def categories(session: AsyncSession) -> list[Category]:
    return list(await CatalogRepository(session).categories())


async def catalog_vocabulary(session: AsyncSession) -> list[str]:
    """The words this shop sells by, in every language it has: active products' titles, brands and tags, and
    category names and slugs (the NLU reads a message made of them as being about products)."""
    repository = CatalogRepository(session)
    words: dict[str, None] = {}
    for category in await repository.categories():
        for name in [category.slug.replace("-", " "), *category.name.values()]:
            words.setdefault(name, None)
    for product in await repository.all_products():
        if not product.active:
            continue
        for text in [*product.title.values(), *([product.brand] if product.brand else []), *product.tags]:
            words.setdefault(text, None)
    return [word for word in words if word and word.strip()]


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("p:"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("The cursor is not one this API gave out.", code="invalid_cursor") from exc


def _encode_cursor(product_id: int) -> str:
    return base64.urlsafe_b64encode(f"p:{product_id}".encode()).decode()


def product_out(product: Product, available: dict[str, int] | None = None) -> ProductOut:
    return ProductOut(
        id=product.id, slug=product.slug, category=product.category.slug, title=product.title,
        description=product.description, brand=product.brand, tags=product.tags, image_url=product.image_url,
        base_price=product.base_price, currency=product.currency, weight_grams=product.weight_grams,
        sellable_countries=product.sellable_countries,
        variants=[VariantOut(id=v.id, sku=v.sku, attributes=v.attributes, price=variant_price(v, product),
                             currency=product.currency,
                             available=None if available is None else available.get(v.sku, 0))
                  for v in product.variants])


async def list_products(session: AsyncSession, *, limit: int = 50, cursor: str | None = None,
                        category: str | None = None) -> tuple[list[Product], str | None]:
    """A page of active products in id order, with the cursor of the next page (None at the end)."""
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", code="invalid_limit")
    after = _decode_cursor(cursor)
    rows = list(await CatalogRepository(session).products_page(after_id=after, limit=limit + 1,
                                                               category_slug=category))
    next_cursor = _encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def update_product(session: AsyncSession, *, product_id: int, title: dict[str, str] | None = None,
                         description: dict[str, str] | None = None, base_price: Decimal | None = None,
                         image_url: str | None = None) -> Product:
    """Change a product's texts (per language), base price or image; what is None stays. Search picks the change
    up by itself (it watches writes to the products table)."""
    product = await get_product(session, product_id=product_id)
    if title is not None:
        if not title.get("en", "").strip():
            raise InvalidInput("A product needs at least an English title.", code="missing_title")
        product.title = {lang: text.strip() for lang, text in title.items() if text.strip()}
    if description is not None:
        product.description = {lang: text.strip() for lang, text in description.items() if text.strip()}
    if base_price is not None:
        if base_price <= 0:
            raise InvalidInput("The price must be more than zero.", code="invalid_price")
        product.base_price = base_price
    if image_url is not None:
        product.image_url = image_url
    product.updated_at = utcnow()
    await session.flush()
    return product


__all__ = ["ProductPage", "UnknownSku", "all_products", "categories", "create_category", "create_product",
           "get_product", "get_products", "get_variant", "get_variants", "is_sellable_to", "list_products", "localized",
           "product_out", "sellable_to", "update_product", "variant_price"]

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from commerce.catalog.models import Category, Product, Variant


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def category_by_slug(self, slug: str) -> Category | None:
        return await self.session.scalar(select(Category).where(Category.slug == slug))

    async def categories(self) -> Sequence[Category]:
        return (await self.session.scalars(select(Category).order_by(Category.id))).all()

    async def product(self, product_id: int) -> Product | None:
        return await self.session.scalar(
            select(Product).where(Product.id == product_id)
            .options(selectinload(Product.variants), selectinload(Product.category)))

    async def products_by_ids(self, product_ids: Sequence[int]) -> Sequence[Product]:
        """Products with their variants and category in two statements, whatever the number of ids."""
        if not product_ids:
            return []
        return (await self.session.scalars(
            select(Product).where(Product.id.in_(sorted(set(product_ids))))
            .options(selectinload(Product.variants), joinedload(Product.category)))).all()

    async def product_by_slug(self, slug: str) -> Product | None:
        return await self.session.scalar(
            select(Product).where(Product.slug == slug)
            .options(selectinload(Product.variants), selectinload(Product.category)))

    async def products_page(self, *, after_id: int, limit: int, category_slug: str | None = None,
                            active_only: bool = True) -> Sequence[Product]:
        query = (select(Product).where(Product.id > after_id)
                 .options(selectinload(Product.variants), selectinload(Product.category))
                 .order_by(Product.id).limit(limit))
        if active_only:
            query = query.where(Product.active.is_(True))
        if category_slug:
            query = query.join(Category).where(Category.slug == category_slug)
        return (await self.session.scalars(query)).all()

    async def all_products(self) -> Sequence[Product]:
        return (await self.session.scalars(
            select(Product).where(Product.active.is_(True))
            .options(selectinload(Product.variants), selectinload(Product.category))
            .order_by(Product.id))).all()

    async def variant_by_sku(self, sku: str) -> Variant | None:
        return await self.session.scalar(
            select(Variant).where(Variant.sku == sku)
            .options(selectinload(Variant.product).selectinload(Product.category)))

    async def variants_by_skus(self, skus: Sequence[str]) -> Sequence[Variant]:
        return (await self.session.scalars(
            select(Variant).where(Variant.sku.in_(list(skus)))
            .options(selectinload(Variant.product).selectinload(Product.category)))).all()

    async def variants_with_products(self, skus: Sequence[str]) -> Sequence[Variant]:
        """Variants by SKU, each with its product joined in (not the product's other variants nor its category):
        one statement."""
        return (await self.session.scalars(select(Variant).where(Variant.sku.in_(list(skus)))
                                           .options(joinedload(Variant.product)))).all()

    async def sku_exists(self, skus: Sequence[str]) -> set[str]:
        return set((await self.session.scalars(select(Variant.sku).where(Variant.sku.in_(list(skus))))).all())

    async def slug_exists(self, slug: str) -> bool:
        return (await self.session.scalar(select(Product.id).where(Product.slug == slug))) is not None

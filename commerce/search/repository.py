"""Queries of product search: merchant controls, their version, the search log, and the catalog reads that keep
the process's index warm (a cheap signature per search, changed products only when it moves)."""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commerce.catalog.models import Category, Product
from commerce.search.models import SearchLogEntry, SearchRule, SearchSettingsVersion, SearchSynonym


def index_version(product_updated: datetime, category_updated: datetime | None) -> str:
    """A product's version in the index: its own updated_at, or its category's when that was renamed later (the
    category's names are among the product's words)."""
    if category_updated is not None and category_updated > product_updated:
        return category_updated.isoformat()
    return product_updated.isoformat()


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bump_version(self) -> None:
        # A random stamp, not a counter: two databases in one process (tests, tenants) never share a version.
        stamp = secrets.randbits(31) or 1
        changed = await self.session.execute(update(SearchSettingsVersion).where(SearchSettingsVersion.id == 1)
                                             .values(version=stamp))
        if not getattr(changed, "rowcount", 0):
            self.session.add(SearchSettingsVersion(id=1, version=stamp))
        await self.session.flush()

    async def catalog_signature(self) -> tuple[int, int, datetime | None, int]:
        """(active products, highest id, latest updated_at of a product or a category, merchant controls version)
        in one statement: the first three move whenever a product is added, changed or retired or a category
        renamed, the last on every control change."""
        controls = (select(SearchSettingsVersion.version).where(SearchSettingsVersion.id == 1)
                    .scalar_subquery())
        renamed = select(func.max(Category.updated_at)).scalar_subquery()
        count, top, latest, version, category_latest = (await self.session.execute(
            select(func.count(Product.id), func.max(Product.id), func.max(Product.updated_at), controls, renamed)
            .where(Product.active.is_(True)))).one()
        if category_latest is not None and (latest is None or category_latest > latest):
            latest = category_latest
        return int(count or 0), int(top or 0), latest, int(version or 0)

    async def category_names(self) -> tuple[tuple[int, str, str], ...]:
        """Every category's id, slug and names (a small table): part of the catalog's words."""
        rows = await self.session.execute(select(Category.id, Category.slug, Category.name).order_by(Category.id))
        return tuple((int(i), str(slug), repr(sorted((name or {}).items()))) for i, slug, name in rows.all())

    async def active_versions(self) -> dict[int, str]:
        """Every active product's id and index version (no JSON): what the index must hold."""
        rows = await self.session.execute(
            select(Product.id, Product.updated_at, Category.updated_at)
            .join(Category, Category.id == Product.category_id).where(Product.active.is_(True)))
        return {int(i): index_version(when, renamed) for i, when, renamed in rows.all()}

    async def versions_since(self, since: datetime) -> dict[int, str]:
        """Active products changed, or whose category was renamed, after `since` (id and index version)."""
        rows = await self.session.execute(
            select(Product.id, Product.updated_at, Category.updated_at)
            .join(Category, Category.id == Product.category_id)
            .where(Product.active.is_(True), or_(Product.updated_at > since, Category.updated_at > since)))
        return {int(i): index_version(when, renamed) for i, when, renamed in rows.all()}

    async def products(self, ids: Sequence[int]) -> list[Product]:
        """Active products by id with variants and category, in chunks (bound-parameter limits)."""
        found: list[Product] = []
        wanted = list(ids)
        for start in range(0, len(wanted), 500):
            found.extend((await self.session.scalars(
                select(Product).where(Product.id.in_(wanted[start:start + 500]), Product.active.is_(True))
                .options(selectinload(Product.variants), selectinload(Product.category)))).all())
        return found

    async def synonyms(self) -> Sequence[SearchSynonym]:
        return (await self.session.scalars(select(SearchSynonym).order_by(SearchSynonym.id))).all()

    async def rules(self) -> Sequence[SearchRule]:
        return (await self.session.scalars(select(SearchRule).order_by(SearchRule.id))).all()

    async def report(self, *, since: datetime, zero: bool, limit: int) -> list[tuple[str, str, int, int]]:
        """(normalised query, language, searches, last result count) for zero-result or abandoned searches."""
        wanted = (SearchLogEntry.result_count == 0) if zero else and_(SearchLogEntry.result_count > 0,
                                                                        SearchLogEntry.clicked.is_(False))
        searches = func.count(SearchLogEntry.id)
        rows = await self.session.execute(
            select(SearchLogEntry.normalised, SearchLogEntry.language, searches, func.max(SearchLogEntry.result_count))
            .where(SearchLogEntry.created_at >= since, wanted)
            .group_by(SearchLogEntry.normalised, SearchLogEntry.language)
            .order_by(searches.desc(), SearchLogEntry.normalised).limit(limit))
        return [(str(q), str(lang), int(n), int(r or 0)) for q, lang, n, r in rows.all()]

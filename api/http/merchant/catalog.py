from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api import accounts
from api.auth import MerchantDep
from api.deps import SessionDep
from api.params import PathId
from commerce.catalog import service as catalog
from commerce.catalog.schemas import CategoryIn, CategoryOut, CategoryRenameIn, ProductIn, ProductOut, ProductPage
from commerce.inventory import service as inventory

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/products", response_model=ProductPage)
async def list_products(session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        cursor: str | None = None, category: str | None = None) -> ProductPage:
    """The catalog, paged: pass `next_cursor` back as `cursor` for the next page."""
    products, next_cursor = await catalog.list_products(session, limit=limit, cursor=cursor, category=category)
    available = await inventory.available_stock(session, skus=[v.sku for p in products for v in p.variants])
    return ProductPage(items=[catalog.product_out(p, available) for p in products], next_cursor=next_cursor)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(product_id: PathId, session: SessionDep) -> ProductOut:
    product = await catalog.get_product(session, product_id=product_id)
    available = await inventory.available_stock(session, skus=[v.sku for v in product.variants])
    return catalog.product_out(product, available)


@router.post("/products", response_model=ProductOut, status_code=status.HTTP_201_CREATED)
async def create_product(data: ProductIn, session: SessionDep, principal: MerchantDep) -> ProductOut:
    product = await catalog.create_product(session, data=data)
    actor = accounts.token_actor(principal.token_id, principal.name)
    await accounts.record(session, actor=actor, area="catalog", action="product created",
                          subject=f"{product.slug} (#{product.id})", details={"languages": sorted(data.title)})
    await accounts.record(session, actor=actor, area="price", action="price set", subject=product.slug,
                          details={"base_price": f"{data.base_price} {product.currency}"})
    return catalog.product_out(product, {})


@router.get("/categories", response_model=list[CategoryOut])
async def list_categories(session: SessionDep) -> list[CategoryOut]:
    return [CategoryOut.model_validate(c) for c in await catalog.categories(session)]


@router.post("/categories", response_model=CategoryOut, status_code=status.HTTP_201_CREATED)
async def create_category(data: CategoryIn, session: SessionDep, principal: MerchantDep) -> CategoryOut:
    category = await catalog.create_category(session, data=data)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="catalog",
                          action="category created", subject=category.slug)
    return CategoryOut.model_validate(category)


@router.patch("/categories/{slug}", response_model=CategoryOut)
async def rename_category(slug: Annotated[str, Path(max_length=80)], data: CategoryRenameIn, session: SessionDep,
                          principal: MerchantDep) -> CategoryOut:
    """New names for a category (every language given replaces the old set); search finds its products by them at
    once."""
    before = await catalog.get_category(session, slug=slug)
    old_names = dict(before.name)
    category = await catalog.rename_category(session, slug=slug, name=data.name)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="catalog",
                          action="category renamed", subject=category.slug,
                          details={"before": old_names, "after": dict(category.name)})
    return CategoryOut.model_validate(category)

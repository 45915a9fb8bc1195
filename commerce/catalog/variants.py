"""Variants of an existing product: add one, change its option values or its own price, remove one. A SKU is unique
across the catalog; two variants of one product cannot have the same option values; a product keeps at least one
variant; a variant with stock on hand or reserved cannot be removed (count it to zero first), so no stock or
reservation is lost. Order lines keep their SKU as text, so a removed variant's order history stays."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.errors import DuplicateSku
from commerce.catalog.models import Product, Variant
from commerce.catalog.repository import CatalogRepository
from commerce.catalog.schemas import VariantIn
from commerce.catalog.service import get_product
from commerce.inventory.service import stock_levels
from kit.clock import utcnow
from kit.errors import Conflict, InvalidInput, NotFound


class VariantNotFound(NotFound):
    code = "variant_not_found"
    title = "No such variant"


class DuplicateOptions(Conflict):
    code = "duplicate_options"
    title = "Another variant has these option values"


class VariantInUse(Conflict):
    code = "variant_in_use"
    title = "The variant still has stock"


def _variant(product: Product, variant_id: int) -> Variant:
    found = next((v for v in product.variants if v.id == variant_id), None)
    if found is None:
        raise VariantNotFound(f"Product {product.slug} has no variant {variant_id}.")
    return found


def _check_options(product: Product, attributes: dict[str, str], *, other_than: int | None) -> None:
    clash = next((v for v in product.variants if v.id != other_than and v.attributes == attributes), None)
    if clash is not None:
        shown = ", ".join(f"{k}={v}" for k, v in attributes.items()) or "no options"
        raise DuplicateOptions(f"{clash.sku} already has {shown}; give this variant other option values.")


async def add_variant(session: AsyncSession, *, product_id: int, data: VariantIn) -> Variant:
    product = await get_product(session, product_id=product_id)
    if await CatalogRepository(session).sku_exists([data.sku]):
        raise DuplicateSku(f"SKU already exists: {data.sku}.", sku=data.sku)
    _check_options(product, data.attributes, other_than=None)
    variant = Variant(product_id=product.id, sku=data.sku, attributes=data.attributes, price=data.price,
                      weight_grams=data.weight_grams, active=True)
    session.add(variant)
    product.updated_at = utcnow()
    await session.flush()
    return variant


async def update_variant(session: AsyncSession, *, product_id: int, variant_id: int, attributes: dict[str, str],
                         price: Decimal | None) -> Variant:
    """Set a variant's option values and its own price (None: the product's base price)."""
    if price is not None and price <= 0:
        raise InvalidInput("The price must be more than zero.", code="invalid_price")
    product = await get_product(session, product_id=product_id)
    variant = _variant(product, variant_id)
    _check_options(product, attributes, other_than=variant.id)
    variant.attributes = dict(attributes)
    variant.price = price
    product.updated_at = utcnow()
    await session.flush()
    return variant


async def remove_variant(session: AsyncSession, *, product_id: int, variant_id: int) -> str:
    """Delete a variant without stock; returns its SKU."""
    product = await get_product(session, product_id=product_id)
    variant = _variant(product, variant_id)
    if len(product.variants) == 1:
        raise VariantInUse(f"{variant.sku} is the product's only variant; a product needs one.",
                           code="last_variant")
    held = [lvl for lvl in await stock_levels(session, skus=[variant.sku]) if lvl.on_hand or lvl.reserved]
    if held:
        where = ", ".join(f"{lvl.location}: {lvl.on_hand} on hand, {lvl.reserved} reserved" for lvl in held)
        raise VariantInUse(f"{variant.sku} still has stock ({where}); count it to zero first.")
    sku = variant.sku
    product.variants.remove(variant)
    await session.delete(variant)
    product.updated_at = utcnow()
    await session.flush()
    return sku

from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound


class UnknownSku(NotFound):
    code = "unknown_sku"
    title = "Unknown SKU"


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "Product not found"


class CategoryNotFound(NotFound):
    code = "category_not_found"
    title = "Category not found"


class DuplicateSku(Conflict):
    code = "duplicate_sku"
    title = "SKU already exists"


class DuplicateSlug(Conflict):
    code = "duplicate_slug"
    title = "Slug already exists"


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"
    title = "Unknown currency"


class InvalidCountry(InvalidInput):
    code = "invalid_country"
    title = "Invalid country code"

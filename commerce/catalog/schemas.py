from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kit.fields import MAX_ID, PlainDecimal

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120,
                                        pattern=r"^[a-z0-9][a-z0-9-]*$")]
# categories.slug is String(80), products.slug String(120)
CategorySlug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80,
                                                pattern=r"^[a-z0-9][a-z0-9-]*$")]
# ASCII letters only: upper-casing other letters can lengthen them ('ß' -> 'SS') past the column.
CurrencyCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=3, max_length=3,
                                                pattern=r"^[A-Za-z]{3}$")]
CountryCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2,
                                               pattern=r"^[A-Za-z]{2}$")]


class CategoryIn(BaseModel):
    slug: CategorySlug
    name: dict[str, str] = Field(min_length=1)
    hs_chapter: str | None = Field(default=None, pattern=r"^\d{2}$")


class CategoryRenameIn(BaseModel):
    name: dict[str, str] = Field(min_length=1, description="locale -> name; replaces every old name")


class CategoryOut(CategoryIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class VariantIn(BaseModel):
    sku: Sku
    attributes: dict[str, str] = Field(default_factory=dict)
    price: PlainDecimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=6)
    weight_grams: int | None = Field(default=None, gt=0, le=MAX_ID)


class VariantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    sku: str
    attributes: dict[str, str]
    price: PlainDecimal
    currency: str
    available: int | None = None


class ProductIn(BaseModel):
    slug: Slug
    category: CategorySlug
    title: dict[str, str] = Field(min_length=1)
    description: dict[str, str] = Field(default_factory=dict)
    brand: str | None = Field(default=None, max_length=80)
    tags: list[str] = Field(default_factory=list)
    image_url: str | None = Field(default=None, max_length=500)
    base_price: PlainDecimal = Field(gt=0, max_digits=18, decimal_places=6)
    currency: CurrencyCode
    weight_grams: int = Field(default=500, gt=0, le=MAX_ID)
    sellable_countries: list[CountryCode] = Field(default_factory=list)
    variants: list[VariantIn] = Field(min_length=1)


class ProductOut(BaseModel):
    id: int
    slug: str
    category: str
    title: dict[str, str]
    description: dict[str, str]
    brand: str | None
    tags: list[str]
    image_url: str | None
    base_price: PlainDecimal
    currency: str
    weight_grams: int
    sellable_countries: list[str]
    variants: list[VariantOut]


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None

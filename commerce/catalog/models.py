from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kit.db import Base, UTCDateTime, money_column_type


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> name
    hs_chapter: Mapped[str | None] = mapped_column(String(2), default=None)  # customs tariff chapter
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), default=None)
    # Moves when the category is renamed: search's live index re-reads its products (their words include its names).
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> title
    description: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> description
    brand: Mapped[str | None] = mapped_column(String(80), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    image_url: Mapped[str | None] = mapped_column(String(500), default=None)
    base_price: Mapped[Decimal] = mapped_column(money_column_type())
    currency: Mapped[str] = mapped_column(String(3))
    weight_grams: Mapped[int] = mapped_column(Integer, default=500)
    # Empty list: sellable everywhere the shop ships.
    sellable_countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    variants: Mapped[list[Variant]] = relationship(back_populates="product", lazy="raise",
                                                   order_by="Variant.id")
    category: Mapped[Category] = relationship(lazy="raise")


class Variant(Base):
    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # colour, size, ...
    price: Mapped[Decimal | None] = mapped_column(money_column_type(), default=None)  # overrides base
    weight_grams: Mapped[int | None] = mapped_column(Integer, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    product: Mapped[Product] = relationship(back_populates="variants", lazy="raise")

"""Cross-border tables: exchange rates, import rules, tax and duty rates, shipping zones, return policies.

Every rule row names its source (title and URL) and carries effective dates, so a changed rule is a new row.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kit.db import Base, UTCDateTime, money_column_type


class ExchangeRate(Base):
    """One unit of `base` buys `rate` units of `currency` on `as_of` (ECB style: EUR 1 = USD 1.08)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("base", "currency", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    base: Mapped[str] = mapped_column(String(3))
    currency: Mapped[str] = mapped_column(String(3), index=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(24, 10, asdecimal=True))
    as_of: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(60))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrossBorderSetting(Base):
    """Merchant settings for prices abroad (FX markup, oldest usable rate)."""

    __tablename__ = "cross_border_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class ImportRule(Base):
    """How a destination (a country, or a customs union such as EU) treats an incoming consignment."""

    __tablename__ = "import_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(8), index=True)
    name: Mapped[str] = mapped_column(String(160))
    currency: Mapped[str] = mapped_column(String(3))  # currency of the thresholds and fees
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date, default=None)  # exclusive
    # At or below this value the low-value regime applies; None: no low-value regime.
    low_value_max: Mapped[Decimal | None] = mapped_column(money_column_type(), default=None)
    threshold_basis: Mapped[str] = mapped_column(String(16), default="goods")  # goods | goods_shipping
    # Share of the retail price that counts as customs value for goods bought for personal use (Japan: 60).
    personal_use_value_percent: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(100))
    low_value_duty: Mapped[str] = mapped_column(String(16), default="none")  # none | normal | flat_per_item
    flat_duty_amount: Mapped[Decimal | None] = mapped_column(money_column_type(), default=None)
    low_value_tax: Mapped[str] = mapped_column(String(16), default="normal")  # none | normal
    low_value_tax_multiplier: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(1))
    low_value_collector: Mapped[str] = mapped_column(String(16), default="carrier")  # shop | carrier
    high_value_collector: Mapped[str] = mapped_column(String(16), default="carrier")
    scheme: Mapped[str | None] = mapped_column(String(80), default=None)  # e.g. IOSS
    duty_basis: Mapped[str] = mapped_column(String(16), default="goods_shipping")  # goods | goods_shipping
    clearance_fee: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))  # when carrier collects
    source_title: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str] = mapped_column(Text, default="")


class ImportTaxRate(Base):
    """The VAT / GST / consumption or sales tax rate (percent) of a destination country."""

    __tablename__ = "import_tax_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    region: Mapped[str] = mapped_column(String(8))
    tax_name: Mapped[str] = mapped_column(String(60))
    rate: Mapped[Decimal] = mapped_column(money_column_type())
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date, default=None)
    source_title: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str] = mapped_column(Text, default="")


class DutyRate(Base):
    """Customs duty (percent of the customs value) by destination region and HS chapter; chapter None = default."""

    __tablename__ = "duty_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(8), index=True)
    hs_chapter: Mapped[str | None] = mapped_column(String(2), default=None)
    origin: Mapped[str | None] = mapped_column(String(2), default=None)  # None: any origin
    rate: Mapped[Decimal] = mapped_column(money_column_type())
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date, default=None)
    source_title: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str] = mapped_column(Text, default="")


class ShippingZone(Base):
    """Countries shipped from one warehouse with the same services; served=False lists where we don't ship."""

    __tablename__ = "shipping_zones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    warehouse: Mapped[str | None] = mapped_column(String(40), default=None)  # inventory location code
    origin_country: Mapped[str | None] = mapped_column(String(2), default=None)
    served: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str] = mapped_column(Text, default="")

    services: Mapped[list[ShippingService]] = relationship(lazy="raise", order_by="ShippingService.id",
                                                           cascade="all, delete-orphan")


class ShippingService(Base):
    """A delivery service in a zone: price = base + per started kg, free over a value, optional insurance."""

    __tablename__ = "shipping_services"
    __table_args__ = (UniqueConstraint("zone_id", "service"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("shipping_zones.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(20))  # standard | express
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3))
    base_price: Mapped[Decimal] = mapped_column(money_column_type())
    price_per_kg: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    free_over: Mapped[Decimal | None] = mapped_column(money_column_type(), default=None)
    insurance_percent: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    min_days: Mapped[int] = mapped_column(Integer)
    max_days: Mapped[int] = mapped_column(Integer)
    max_weight_grams: Mapped[int] = mapped_column(Integer, default=30000)


class ReturnPolicy(Base):
    """Return window and refund rules for a country, a region (EU) or everywhere else ('*')."""

    __tablename__ = "return_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8), unique=True)
    window_days: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    legal_basis: Mapped[str] = mapped_column(String(300))
    source_url: Mapped[str] = mapped_column(String(500), default="")
    refunds_outbound_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    duties_refundable: Mapped[bool] = mapped_column(Boolean, default=True)  # those the shop collected
    return_shipping_paid_by: Mapped[str] = mapped_column(String(10), default="shopper")  # shopper | shop
    restocking_fee_percent: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    notes: Mapped[str] = mapped_column(Text, default="")
    # conditions and notes (above: English, the fallback) in other languages: {"zh": {"conditions": [...], "notes": ""}}
    translations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # Catalogue categories that cannot be returned to this destination (hygiene, perishables...); a refund for them
    # needs a supervisor's or the owner's override.
    non_returnable_categories: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")

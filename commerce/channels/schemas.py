from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from commerce.catalog.schemas import CountryCode, CurrencyCode, Sku
from kit.fields import PlainDecimal
from kit.text import EMAIL_ADDRESS_PATTERN

SyncMode = Literal["push", "pull", "push_pull", "direct"]
ConnectorName = Literal["none", "webhook", "shopify"]
Allocation = Literal["shared", "buffer", "share"]
# Config keys whose values are secrets: accepted on write, never shown again.
SECRET_KEYS = frozenset({"secret", "access_token"})


class ChannelIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(min_length=1, max_length=20)
    sync_mode: SyncMode = "direct"
    connector: ConnectorName = "none"
    allocation: Allocation = "shared"
    allocation_value: int = Field(default=0, ge=0, le=1_000_000)
    safety_stock: int = Field(default=0, ge=0, le=1_000_000)
    config: dict[str, Any] = Field(default_factory=dict)


class AllocationIn(BaseModel):
    allocation: Allocation
    allocation_value: int = Field(default=0, ge=0, le=1_000_000)
    safety_stock: int = Field(default=0, ge=0, le=1_000_000)


class ChannelOrderLineIn(BaseModel):
    sku: Sku
    quantity: int = Field(gt=0, le=10_000)
    unit_price: PlainDecimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=6)


class ChannelOrderIn(BaseModel):
    """An order as a channel reports it (the generic webhook contract, and what connectors map to)."""

    external_id: str = Field(min_length=1, max_length=120)
    currency: CurrencyCode
    lines: list[ChannelOrderLineIn] = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_ADDRESS_PATTERN)
    country: CountryCode | None = None
    postcode: str | None = Field(default=None, max_length=20)
    shipping: PlainDecimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=6)


class ChannelOrderOut(BaseModel):
    external_id: str
    order_number: str
    status: str
    created: bool


class DriftOut(BaseModel):
    sku: str
    ours: int
    theirs: int | None


class ReconciliationOut(BaseModel):
    channel: str
    started_at: datetime
    finished_at: datetime | None
    checked: int
    drifted: int
    repaired: int
    drift: list[DriftOut]
    error: str | None


class DeadLetterOut(BaseModel):
    event_id: int
    sku: str
    attempts: int
    last_error: str | None
    created_at: datetime


class ChannelAlertOut(BaseModel):
    """Why a channel may show wrong stock now; absent when nothing is known to be wrong."""

    dead_pushes: int  # dead-lettered pushes not made good by a later push or a reconciliation
    dead_last_error: str | None
    dead_since: datetime | None
    unrepaired_drift: int  # SKUs the last reconciliation found wrong and could not repair
    reconciliation_error: str | None
    reconciled_at: datetime | None


class ChannelStatusOut(BaseModel):
    code: str
    name: str
    kind: str
    sync_mode: str
    connector: str
    allocation: str
    allocation_value: int
    safety_stock: int
    config: dict[str, Any]
    last_push_at: datetime | None
    last_pull_at: datetime | None
    last_pull_error: str | None
    last_sync_at: datetime | None
    lag_seconds: float
    pending: int
    dead: int
    orders_imported: int
    orders_rejected: int
    last_reconciliation: ReconciliationOut | None
    alert: ChannelAlertOut | None = None


class PullOut(BaseModel):
    channel: str
    imported: int
    duplicates: int
    rejected: int
    cursor: str | None


class RetryIn(BaseModel):
    event_ids: list[int] | None = Field(default=None, max_length=1000)


class RetryOut(BaseModel):
    retried: int

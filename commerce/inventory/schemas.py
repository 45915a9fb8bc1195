from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from commerce.catalog.schemas import Sku

MAX_UNITS = 1_000_000_000  # stock counts are INTEGER columns; no shop holds a billion of one SKU in one place


class StockLevelOut(BaseModel):
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int


class StockAdjustIn(BaseModel):
    sku: Sku
    location: str = Field(min_length=1, max_length=40)
    delta: int = Field(ge=-MAX_UNITS, le=MAX_UNITS,
                       description="Units added (positive) or removed (negative); never zero.")
    reason: str | None = Field(default=None, max_length=200)


class StockSetIn(BaseModel):
    sku: Sku
    location: str = Field(min_length=1, max_length=40)
    on_hand: int = Field(ge=0, le=MAX_UNITS)


class ReserveIn(BaseModel):
    sku: Sku
    quantity: int = Field(gt=0, le=10_000)
    location: str | None = Field(default=None, min_length=1, max_length=40)
    reference: str | None = Field(default=None, max_length=120)
    ttl_seconds: int | None = Field(default=None, gt=0, le=30 * 24 * 3600)


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    sku: str
    location_id: int
    quantity: int
    status: str
    reference: str | None
    expires_at: datetime | None

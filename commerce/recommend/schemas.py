from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Recommendation(BaseModel):
    """One suggested product variant, the model that chose it and why, in a sentence."""

    sku: str
    product_id: int
    score: float
    model: str  # buy_again, bought_with, item_to_item, similar_product, popularity, new_in_shop
    reason: str  # English; `reason_code` and `anchor_title` let a channel say it in another language
    reason_code: str
    anchor_sku: str | None = None
    anchor_title: str | None = None


class ModelPerformance(BaseModel):
    model: str  # "all" in a per-channel total
    impressions: int
    clicks: int
    purchases: int
    click_through: float  # clicks / impressions
    conversion: float  # purchases / impressions
    added_to_cart: int = 0
    channel: str | None = None  # set when split per channel


class TrainingReport(BaseModel):
    trained_at: datetime
    orders: int
    purchase_lines: int
    customers: int
    items: int
    learned_ranker: bool  # False: too few returning customers yet, the fixed-weight blend is used
    seconds: float
    path: str | None

"""Merchant insights: how recommendations sell - click-through and conversion per model and per channel.

JSON at /api/v1/insights/recommendations (merchant token); people read them on the back office's insights page
(/backoffice/insights).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import MerchantDep
from api.deps import SessionDep
from commerce.recommend import service as recommendations
from commerce.recommend.schemas import ModelPerformance
from kit.clock import utcnow

router = APIRouter(tags=["insights"])


class RecommendationInsights(BaseModel):
    days: int
    impressions: int  # over every model and channel
    clicks: int
    purchases: int
    per_model: list[ModelPerformance]
    per_channel: list[ModelPerformance]  # model "all"
    per_model_and_channel: list[ModelPerformance]


@router.get("/api/v1/insights/recommendations", response_model=RecommendationInsights)
async def recommendation_insights(_: MerchantDep, session: SessionDep,
                                  days: Annotated[int, Query(ge=1, le=366)] = 30) -> RecommendationInsights:
    """Shown, clicked (card opened or added to the cart) and bought recommendations over the last `days`."""
    since = utcnow() - timedelta(days=days)
    per_model = await recommendations.performance(session, since=since)
    return RecommendationInsights(
        days=days, impressions=sum(p.impressions for p in per_model), clicks=sum(p.clicks for p in per_model),
        purchases=sum(p.purchases for p in per_model), per_model=per_model,
        per_channel=await recommendations.channel_performance(session, since=since),
        per_model_and_channel=await recommendations.performance(session, since=since, per_channel=True))


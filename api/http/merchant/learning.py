"""What agents taught the bot, for the merchant: counts of intent corrections and FAQ drafts.

GET /api/v1/merchant/learning (merchant token); people read it on the back office's insights page.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import MerchantDep
from api.deps import SessionDep, SettingsDep
from bot import handoff

router = APIRouter(tags=["merchant"])


class LearningOut(BaseModel):
    corrections: int
    corrections_by_intent: dict[str, int]
    corrections_file: str
    faq_drafts: int
    faq_drafts_published: int
    csat: list[handoff.csat.CsatStat]


@router.get("/api/v1/merchant/learning", response_model=LearningOut,
            summary="Counts of agents' intent corrections and FAQ drafts, and CSAT per agent")
async def learning(_: MerchantDep, session: SessionDep, settings: SettingsDep) -> LearningOut:
    counts = await handoff.learning.learning_counts(session, shop_id=handoff.DEFAULT_SHOP_ID)
    return LearningOut(corrections=counts.corrections, corrections_by_intent=counts.corrections_by_intent,
                       corrections_file=str(Path(settings.data_dir) / "nlu" / "corrections.yml"),
                       faq_drafts=counts.faq_drafts, faq_drafts_published=counts.faq_drafts_published,
                       csat=await handoff.csat.csat_per_agent(session, shop_id=handoff.DEFAULT_SHOP_ID))

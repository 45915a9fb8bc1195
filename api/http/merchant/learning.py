"""What agents taught the bot, for the merchant: counts of intent corrections and FAQ drafts.

The page at /merchant/learning asks for the merchant API token and reads GET /api/v1/merchant/learning.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.auth import MerchantDep
from api.deps import SessionDep, SettingsDep
from api.pages import PAGES_DIR
from bot import handoff
from kit.errors import NotFound

router = APIRouter(tags=["merchant"])
PAGE_DIR = PAGES_DIR / "learning"
ASSETS = {"learning.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


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


@router.get("/merchant/learning", include_in_schema=False)
async def learning_page() -> FileResponse:
    return FileResponse(PAGE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/merchant/learning/{asset}", include_in_schema=False)
async def learning_asset(asset: str) -> FileResponse:
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise NotFound(f"No page asset {asset!r}.")
    return FileResponse(PAGE_DIR / asset, media_type=media_type, headers=SECURITY_HEADERS)

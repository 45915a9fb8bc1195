"""/merchant/faq, the old token-in-a-box FAQ page, is retired: the back office's FAQ (drafts, review, versions,
import and export) replaces it. The address answers a permanent redirect there."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/merchant/faq")
async def retired_faq_page() -> RedirectResponse:
    return RedirectResponse("/backoffice/faq", status_code=308)

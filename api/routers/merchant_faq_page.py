"""The merchant FAQ web page: static HTML + JS that calls the FAQ REST API with the merchant token."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from kit.errors import NotFound

router = APIRouter(tags=["pages"], include_in_schema=False)
PAGE_DIR = Path(__file__).resolve().parent.parent / "pages" / "faq"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# No inline script or style can run, so even a stored answer with markup could never execute.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/merchant/faq")
async def faq_page() -> FileResponse:
    return FileResponse(PAGE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/merchant/faq/{asset}")
async def faq_asset(asset: str) -> FileResponse:
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise NotFound(f"No page asset {asset!r}.")
    return FileResponse(PAGE_DIR / asset, media_type=media_type, headers=SECURITY_HEADERS)

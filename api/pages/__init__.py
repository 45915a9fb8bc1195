"""The web pages (one folder each: index.html and its assets) and how the merchant pages are served: a static
index.html plus its named assets, under a strict CSP.

No inline script or style can run on these pages, so stored text with markup could never execute.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from kit.errors import NotFound

PAGES_DIR = Path(__file__).resolve().parent
STRICT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_page_routes(router: APIRouter, *, url: str, folder: str, assets: Mapping[str, str],
                    headers: Mapping[str, str] = STRICT_HEADERS) -> None:
    """GET `url` serves pages/<folder>/index.html; GET `url`/<asset> serves one of `assets` (name -> media type)."""
    page_dir = PAGES_DIR / folder

    async def page() -> FileResponse:
        return FileResponse(page_dir / "index.html", media_type="text/html; charset=utf-8", headers=dict(headers))

    async def asset(asset: str) -> FileResponse:
        media_type = assets.get(asset)
        if media_type is None:
            raise NotFound(f"No page asset {asset!r}.")
        return FileResponse(page_dir / asset, media_type=media_type, headers=dict(headers))

    router.add_api_route(url, page, methods=["GET"], include_in_schema=False, name=f"{folder}_page")
    router.add_api_route(url + "/{asset}", asset, methods=["GET"], include_in_schema=False, name=f"{folder}_asset")

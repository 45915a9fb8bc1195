"""The old token-in-a-box merchant pages are retired: each asked for an API token pasted into a box (the channels
page kept saying "Enter a merchant token" after its table had loaded). The back office, signed in with a session,
replaces them; each old address (and any of its asset paths) answers a permanent redirect to its successor."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(tags=["pages"], include_in_schema=False)
RETIRED = {
    "/merchant/faq": "/backoffice/faq",
    "/merchant/search": "/backoffice/search",
    "/merchant/channels": "/backoffice/channels",
    "/merchant/insights": "/backoffice/insights",
    "/merchant/learning": "/backoffice/insights",
}


def _add_redirect(old: str, new: str) -> None:
    async def retired_page() -> RedirectResponse:
        return RedirectResponse(new, status_code=308)

    async def retired_asset(asset: str) -> RedirectResponse:
        return RedirectResponse(new, status_code=308)

    name = old.rsplit("/", 1)[-1]
    router.add_api_route(old, retired_page, methods=["GET"], name=f"retired_{name}_page")
    router.add_api_route(old + "/{asset}", retired_asset, methods=["GET"], name=f"retired_{name}_asset")


for _old, _new in RETIRED.items():
    _add_redirect(_old, _new)

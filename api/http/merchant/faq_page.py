"""The merchant FAQ web page: static HTML + JS that calls the FAQ REST API with the merchant token."""
from __future__ import annotations

from fastapi import APIRouter

from api.pages import add_page_routes

router = APIRouter(tags=["pages"], include_in_schema=False)
add_page_routes(router, url="/merchant/faq", folder="faq",
                assets={"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"})

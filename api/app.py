"""The FastAPI app factory: its routers, middleware and lifespan (which builds the chat runtime)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

import knowledge_base as kb
from api.chat_runtime import start_chat_channels, stop_chat_channels
from api.errors import install_error_handlers
from api.http import accounts
from api.http.agent import console, realtime, typing_relay
from api.http.agent import media as agent_media
from api.http.agent import refunds as agent_refunds
from api.http.merchant import (
    backoffice,
    backoffice_border,
    backoffice_channels,
    backoffice_faq,
    backoffice_orders,
    backoffice_search,
    backoffice_shop,
    backoffice_stock,
    backoffice_team,
    backoffice_whatsapp,
    catalog,
    channels,
    cross_border,
    faq,
    faq_page,
    insights,
    learning,
    nlu,
    orders,
    rasa,
    search,
    stock,
    tokens,
)
from api.http.merchant import webchat as webchat_sites
from api.http.middleware import BodySizeLimit, RefuseNul
from api.http.public import health, quotes
from api.http.shopper import payments, webchat, webhooks
from api.http.shopper import wechat as wechat_channel
from api.http.shopper import whatsapp as whatsapp_channel
from api.throttle import close_limiter
from commerce.channels import register_stock_listener
from commerce.channels.sync import StockSync
from kit.db import Database
from kit.settings import Settings, get_settings

# Included in this order, which is the order routes are matched in. The chat channels come first: every message of
# every shopper comes through them (matching the REST webhook behind the others cost ~150 us of CPU a request,
# ~2 % of a turn).
ROUTERS: list[APIRouter] = [
    webhooks.router, webchat.router,
    whatsapp_channel.router, wechat_channel.router,
    health.router,
    catalog.router,
    stock.router,
    orders.router,
    faq.router,
    faq_page.router,
    quotes.router, cross_border.router,
    channels.router,
    console.router, realtime.router, learning.router,
    rasa.router,
    search.router,
    nlu.router,
    insights.router,
    tokens.router,
    accounts.router, backoffice.router, backoffice_shop.router, backoffice_faq.router,
    backoffice_search.router,
    backoffice_border.router,
    backoffice_channels.router,
    backoffice_team.router,
    backoffice_stock.router,
    webchat_sites.router,
    payments.router, orders.methods_router,
    typing_relay.router,
    orders.settings_router,
    backoffice_orders.router,
    agent_refunds.router,
    agent_media.router,
    backoffice_whatsapp.router, backoffice_whatsapp.api_router,
]

# Form paths that take a file upload (bigger bodies; NUL bytes allowed in the file).
UPLOAD_LIMITS = {**backoffice_shop.UPLOAD_LIMITS, **backoffice_border.UPLOAD_LIMITS, **backoffice_stock.UPLOAD_LIMITS}


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = app.state.database = database or Database(settings.database.url, echo=settings.database.echo,
                                                       pool_size=settings.database.pool_size)
        register_stock_listener()  # stock this process changes (checkout, the merchant API) queues channel pushes
        app.state.channels = await start_chat_channels(app)
        app.state.faq_index = await kb.open_index(db)
        app.state.stock_sync = StockSync(db)
        await realtime.start(app)
        await nlu.load_model(app)
        try:
            yield
        finally:
            await realtime.stop(app)
            await app.state.stock_sync.aclose()
            await kb.close_index(db)
            await stop_chat_channels(app.state.channels)
            await close_limiter(app)
            if owns_database:
                await db.dispose()

    app = FastAPI(title="ShopTalk", version="0.1.0", lifespan=lifespan,
                  description="Conversational commerce and support. Errors are RFC 9457 problem+json.")
    app.state.settings = settings
    if database is not None:
        app.state.database = database
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # RefuseNul is inside BodySizeLimit: it reads the body whole, which that bounds.
    app.add_middleware(RefuseNul, upload_paths=frozenset(UPLOAD_LIMITS))
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes,
                       upload_paths={path: max(limit, settings.limits.max_body_bytes)
                                     for path, limit in UPLOAD_LIMITS.items()})
    return app


def app_factory() -> Any:
    """Entry point for `uvicorn --factory api.app:app_factory`."""
    return create_app()

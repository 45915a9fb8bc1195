"""The app's API in process for tests: one way to open it."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app` with its lifespan run; an exception in the app comes back as its 500 answer."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
            yield http


ClientFrom = Callable[..., httpx.AsyncClient]


@asynccontextmanager
async def clients_from_addresses(app: FastAPI) -> AsyncIterator[ClientFrom]:
    """`app` with its lifespan run, and `client_from(ip, token=None)`: an HTTP client that connects from that IP
    address (and sends that bearer token), for throttles that count by client."""
    opened: list[httpx.AsyncClient] = []

    def client_from(ip: str, token: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50_000))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://shop.test", headers=headers))
        return opened[-1]

    async with app.router.lifespan_context(app):
        try:
            yield client_from
        finally:
            for client in opened:
                await client.aclose()

"""The cross-border test shop (round exchange rates, shipped rules) with stock and sales channels, the clock on
the day the rates are from."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commerce.catalog import service as catalog
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.channels import service as channels
from commerce.cross_border.admin import list_zones
from commerce.inventory import service as inventory
from kit.clock import clock
from kit.db import Database
from kit.settings import Settings
from tests.commerce.cross_border.conftest import ON, make_cross_border_shop
from tests.localstripe_server import command as localstripe_command

NOW = datetime(ON.year, ON.month, ON.day, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


async def make_checkout_shop(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_cross_border_shop(session)
        await inventory.create_location(session, code="RTM", name="Rotterdam", country="NL")
        await inventory.create_location(session, code="SZX", name="Shenzhen", country="CN")
        for code in ("web", "telegram", "webchat"):
            await channels.create_channel(session, code=code, name=code.title(), kind=code)
        await catalog.create_product(session, data=ProductIn(
            slug="hoodie", category="clothing", title={"en": "Hoodie", "zh": "连帽衫"}, description={},
            base_price=Decimal("50.00"), currency="EUR", weight_grams=600,
            variants=[VariantIn(sku="HOOD-RED-M", attributes={"colour": "Red", "size": "M"}),
                      VariantIn(sku="HOOD-BLU-L", attributes={"colour": "Blue", "size": "L"})]))
        for sku in ("TEE-1", "JKT-1", "TEA-1", "BAG-150", "SPK-1", "HOOD-RED-M", "HOOD-BLU-L"):
            await inventory.set_stock(session, sku=sku, location="RTM", on_hand=5)
        # Every parcel leaves Rotterdam, where all the stock is: an order reserves only where its destination's
        # zone ships from (the default zones send Asia-Pacific and the Americas from Shenzhen).
        for zone in await list_zones(session):
            if zone.warehouse:
                zone.warehouse = "RTM"
        await session.flush()


@pytest.fixture
async def shop(db: Database) -> Database:
    await make_checkout_shop(db)
    return db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """localstripe (a stateful fake of Stripe's API) on a free port; its base URL."""
    port = _free_port()
    process = subprocess.Popen(localstripe_command(port),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("localstripe did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


WEBHOOK_SECRET = "whsec_test_0123456789"


def signed(event: dict[str, object], secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send: t=<unix>,v1=HMAC-SHA256(secret, "t.body")."""
    body = json.dumps(event).encode()
    stamp = at if at is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={mac}"


@contextlib.asynccontextmanager
async def stripe_losing_first(localstripe: str, request_line: str) -> AsyncIterator[tuple[str, list[str]]]:
    """localstripe behind a proxy that loses the answer to the first `request_line` ("POST /v1/refunds"): Stripe
    does it, the caller times out. Yields the proxy's base URL and every request's "METHOD /path" seen so far."""
    import aiohttp
    from aiohttp import web

    from tests.http import start_aiohttp

    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        line = f"{request.method} {request.path}"
        seen.append(line)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as upstream, upstream.request(
                request.method, f"{localstripe}{request.path_qs}", data=body, headers=headers) as answer:
            payload, status, kind = await answer.read(), answer.status, answer.content_type
        if line == request_line and seen.count(request_line) == 1:
            await asyncio.sleep(5)  # done at Stripe, the answer never arrives in time
        return web.Response(body=payload, status=status, content_type=kind)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner, port = await start_aiohttp(app)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def stripe_settings(localstripe: str) -> Settings:
    """The app's settings for a shop that takes Stripe payments through the tests' localstripe."""
    return Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                    payments={"stripe_secret_key": "sk_test_local", "stripe_webhook_secret": WEBHOOK_SECRET,
                              "stripe_api_base": localstripe, "public_url": "https://shop.example"})

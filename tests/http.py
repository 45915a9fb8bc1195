"""The app's API for tests: in process (`app_client`, `clients_from_addresses`), or served by uvicorn on a thread
(`served_in_thread`) for browsers, sockets and network cuts."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn
from aiohttp import web
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


@contextmanager
def served_in_thread(app: Any, *, name: str = "served-app", start_timeout: float = 60,
                     **config: Any) -> Iterator[str]:
    """`app` served by uvicorn (lifespan on, `config` passed to uvicorn.Config) on a thread, on a free loopback
    port; yields its base URL ("http://127.0.0.1:<port>") once started, and stops it on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


async def start_aiohttp(app: web.Application, host: str = "127.0.0.1", port: int = 0
                        ) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp `web.Application` (a platform double) on host:port (0: a free port); returns the runner
    (`await runner.cleanup()` stops it) and the port it listens on."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

"""A sample storefront on a second local origin that embeds the chat with the one-line snippet, and a ShopTalk
server that can be stopped and started again on the same port (a restart the widget must ride through)."""
from __future__ import annotations

import html
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn

from api.app import create_app
from bot.channels import webchat_sites as sites
from kit.db import Database
from kit.settings import Settings

SHOP = "demo-store"


def storefront_page(shoptalk: str, query: dict[str, list[str]], path: str) -> str:
    """A shop page with the snippet; `?customer=&sig=` plays a logged-in customer whose id the shop's server signed."""
    settings = ""
    if "customer" in query:
        given = {"customerId": query["customer"][0], "signature": query.get("sig", [""])[0]}
        settings = f"<script>window.ShopTalkSettings = {json.dumps(given)};</script>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo Store {html.escape(path)}</title>
<style>body{{font-family:sans-serif;margin:0;color:#222}} header{{background:#222;color:#fff;padding:16px}}
main{{padding:16px;max-width:900px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}}
.tile{{border:1px solid #ccc;padding:12px;height:120px}}</style>
{settings}</head><body><header><strong>Demo Store</strong> <a href="/other" style="color:#fff">Other page</a></header>
<main><h1>Kettles and more</h1><div class="grid"><div class="tile">Kettle</div><div class="tile">Power bank</div>
<div class="tile">Earbuds</div><div class="tile">Lamp</div></div>
<button id="api-open" type="button" onclick="window.ShopTalk.open()">Open chat from the page</button></main>
<script src="{shoptalk}/widget.js" data-shop="{SHOP}" async></script>
</body></html>"""


@contextmanager
def storefront(shoptalk: str) -> Iterator[int]:
    """Serves the sample storefront on a free port of 127.0.0.1 (reached as http://localhost:<port>)."""

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            body = storefront_page(shoptalk, parse_qs(parts.query), parts.path).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, name="storefront", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RestartableShop:
    """ShopTalk on a fixed loopback port; `restart()` stops the process's app and serves a new one there."""

    settings: Settings
    port: int = 0
    configure: Any = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    apps: list[Any] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = create_app(self.settings)
        self.apps.append(app)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="widget-shop", daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the shop did not start")
            time.sleep(0.05)
        if self.configure is not None:
            self.configure(app)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()


async def set_up_site(database_url: str, origins: list[str], settings: Settings) -> str:
    """The merchant's site for the snippet: allowed origins, and a fresh identity secret (returned)."""
    database = Database(database_url)
    try:
        async with database.unit_of_work() as session:
            await sites.save_site(session, shop=SHOP, allowed_origins=origins)
            return await sites.rotate_identity_secret(session, shop=SHOP, box=sites.SecretBox.of(settings))
    finally:
        await database.dispose()

"""Stand-ins for the internet services stock sync talks to, served on 127.0.0.1 and speaking their protocol.

ShopifyDouble follows the Shopify Admin REST API (2024-01) for inventory_levels/set.json, inventory_levels.json
and orders.json (since_id paging, X-Shopify-Access-Token, 429 with Retry-After). WebhookDouble is a channel that
implements ShopTalk's generic JSON webhook contract (docs/channels.md). Both record every value they receive with
the time it arrived, and can be told to fail (500s) or rate-limit (429s) for a number of requests.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API = "/admin/api/2024-01"


@dataclass
class Received:
    at: float
    sku: str
    quantity: int


@dataclass
class _Faults:
    errors: int = 0
    error_status: int = 500
    limited: int = 0
    retry_after: float = 1.0
    delay: float = 0.0


class _Served:
    """Runs a Starlette app with uvicorn in a background thread on a free loopback port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults = _Faults()
        self.requests = 0
        self.received: list[Received] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def app(self) -> Starlette:
        raise NotImplementedError

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("channel double did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self.faults.errors, self.faults.error_status = count, status

    def rate_limit_next(self, count: int, retry_after: float = 1.0) -> None:
        with self.lock:
            self.faults.limited, self.faults.retry_after = count, retry_after

    def slow_down(self, seconds: float) -> None:
        """Answer every request only after `seconds` (a slow or hanging channel)."""
        with self.lock:
            self.faults.delay = seconds

    async def _pause(self) -> None:
        with self.lock:
            delay = self.faults.delay
        if delay:
            await asyncio.sleep(delay)

    def _fault(self) -> Response | None:
        """Count the request and answer with an injected failure if one is due."""
        with self.lock:
            self.requests += 1
            if self.faults.limited > 0:
                self.faults.limited -= 1
                return self._rate_limited(self.faults.retry_after)
            if self.faults.errors > 0:
                self.faults.errors -= 1
                return JSONResponse({"errors": "Internal Server Error"}, status_code=self.faults.error_status)
        return None

    def _rate_limited(self, retry_after: float) -> Response:
        return JSONResponse({"errors": "Too many requests"}, status_code=429,
                            headers={"Retry-After": str(retry_after)})

    def pushes_for(self, sku: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.sku == sku]


class ShopifyDouble(_Served):
    """A shop on the Shopify Admin REST API: one location, inventory items per SKU, orders."""

    def __init__(self, *, access_token: str = "shpat_test_token", location_id: int = 655441491) -> None:
        super().__init__()
        self.access_token = access_token
        self.location_id = location_id
        self.items: dict[str, int] = {}  # sku -> inventory_item_id
        self.available: dict[int, int] = {}  # inventory_item_id -> available
        self.updated_at: dict[int, str] = {}
        self.orders: list[dict[str, Any]] = []
        self._next_order_id = 450789469

    def add_item(self, sku: str, available: int = 0) -> int:
        with self.lock:
            item = 808950810 + len(self.items)
            self.items[sku] = item
            self.available[item] = available
            return item

    def quantity(self, sku: str) -> int:
        with self.lock:
            return self.available[self.items[sku]]

    def add_order(self, lines: list[tuple[str, int, str]], *, currency: str = "EUR", email: str = "bob@example.com",
                  cancelled: bool = False) -> int:
        """A customer buys on the shop: (sku, quantity, price) lines. Returns the order id."""
        with self.lock:
            order_id = self._next_order_id
            self._next_order_id += 1 + len(self.orders) % 3  # ids grow, not by one
            number = 1001 + len(self.orders)
            self.orders.append({
                "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "name": f"#{number}",
                "order_number": number, "email": email, "currency": currency, "financial_status": "paid",
                "created_at": "2024-01-10T11:00:00-05:00", "cancelled_at": "2024-01-10T12:00:00-05:00"
                if cancelled else None,
                "total_price": str(sum(float(p) * q for _, q, p in lines)),
                "line_items": [{"id": 466157049 + i, "sku": sku, "quantity": qty, "price": price,
                                "variant_id": 39072856 + i, "title": sku} for i, (sku, qty, price) in enumerate(lines)],
                "shipping_address": {"country_code": "DE", "zip": "10115", "city": "Berlin"},
                "shipping_lines": [{"price": "4.90", "title": "Standard"}],
            })
            return order_id

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("x-shopify-access-token") != self.access_token:
            return JSONResponse({"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                                           "password)"}, status_code=401)
        return None

    async def set_level(self, request: Request) -> Response:
        await self._pause()
        refused = self._auth(request) or self._fault()
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
            item, location, available = body["inventory_item_id"], body["location_id"], body["available"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": {"inventory_item_id": "Required parameter missing or invalid"}},
                                status_code=400)
        if location != self.location_id or not isinstance(available, int):
            return JSONResponse({"errors": ["Inventory item does not have inventory tracking enabled"]},
                                status_code=422)
        with self.lock:
            sku = next((s for s, i in self.items.items() if i == item), None)
            if sku is None:
                return JSONResponse({"errors": "Not Found"}, status_code=404)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S-00:00", time.gmtime())
            self.available[item] = available
            self.updated_at[item] = stamp
            self.received.append(Received(time.time(), sku, available))
        return JSONResponse({"inventory_level": {
            "inventory_item_id": item, "location_id": location, "available": available, "updated_at": stamp,
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"}})

    async def list_levels(self, request: Request) -> Response:
        refused = self._auth(request) or self._fault()
        if refused is not None:
            return refused
        raw = request.query_params.get("inventory_item_ids", "")
        try:
            ids = [int(x) for x in raw.split(",") if x]
        except ValueError:
            return JSONResponse({"errors": {"inventory_item_ids": "invalid"}}, status_code=400)
        if len(ids) > 50:
            return JSONResponse({"errors": {"inventory_item_ids": "Maximum 50 ids"}}, status_code=422)
        with self.lock:
            levels = [{"inventory_item_id": item, "location_id": self.location_id, "available": self.available[item],
                       "updated_at": self.updated_at.get(item, "2024-01-01T00:00:00-00:00"),
                       "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{self.location_id}"
                                               f"?inventory_item_id={item}"}
                      for item in ids if item in self.available]
        return JSONResponse({"inventory_levels": levels})

    async def list_orders(self, request: Request) -> Response:
        refused = self._auth(request) or self._fault()
        if refused is not None:
            return refused
        try:
            since = int(request.query_params.get("since_id", "0"))
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return JSONResponse({"errors": "Bad Request"}, status_code=400)
        if not 1 <= limit <= 250:
            return JSONResponse({"errors": {"limit": "must be between 1 and 250"}}, status_code=400)
        with self.lock:
            page = sorted((o for o in self.orders if o["id"] > since), key=lambda o: o["id"])[:limit]
        return JSONResponse({"orders": page})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route(f"{API}/inventory_levels/set.json", self.set_level, methods=["POST"]),
            Route(f"{API}/inventory_levels.json", self.list_levels, methods=["GET"]),
            Route(f"{API}/orders.json", self.list_orders, methods=["GET"]),
        ])


@dataclass
class WebhookOrder:
    body: dict[str, Any]
    cursor: int = 0


class WebhookDouble(_Served):
    """A channel speaking the generic webhook contract; it checks every signature it receives."""

    def __init__(self, *, secret: str = "whsec-test-0123456789") -> None:
        super().__init__()
        self.secret = secret
        self.stock: dict[str, int] = {}
        self.orders: list[dict[str, Any]] = []
        self.idempotency_keys: list[str] = []
        self.bad_signatures = 0
        self.listed: set[str] = set()

    def sign(self, message: bytes) -> str:
        return "sha256=" + hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()

    def _signed(self, request: Request, message: bytes) -> bool:
        ok = hmac.compare_digest(self.sign(message), request.headers.get("x-shoptalk-signature", ""))
        if not ok:
            with self.lock:
                self.bad_signatures += 1
        return ok

    def quantity(self, sku: str) -> int | None:
        with self.lock:
            return self.stock.get(sku)

    def list_sku(self, sku: str, quantity: int) -> None:
        with self.lock:
            self.listed.add(sku)
            self.stock[sku] = quantity

    def add_order(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.orders.append(body)

    def _target(self, request: Request) -> bytes:
        query = request.url.query
        return (request.url.path + (f"?{query}" if query else "")).encode()

    async def push(self, request: Request) -> Response:
        await self._pause()
        body = await request.body()
        if not self._signed(request, body):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        refused = self._fault()
        if refused is not None:
            return refused
        data = json.loads(body)
        with self.lock:
            self.stock[data["sku"]] = data["quantity"]
            self.listed.add(data["sku"])
            self.idempotency_keys.append(request.headers.get("idempotency-key", ""))
            self.received.append(Received(time.time(), data["sku"], data["quantity"]))
        return JSONResponse({"ok": True})

    async def stock_levels(self, request: Request) -> Response:
        if not self._signed(request, self._target(request)):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        refused = self._fault()
        if refused is not None:
            return refused
        wanted = request.query_params.getlist("sku")
        with self.lock:
            skus = wanted or sorted(self.listed)
            rows = [{"sku": s, "quantity": self.stock[s]} for s in skus if s in self.stock]
        return JSONResponse({"stock": rows})

    async def list_orders(self, request: Request) -> Response:
        if not self._signed(request, self._target(request)):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        refused = self._fault()
        if refused is not None:
            return refused
        after = int(request.query_params.get("after", "0"))
        limit = int(request.query_params.get("limit", "100"))
        with self.lock:
            page = self.orders[after:after + limit]
        return JSONResponse({"orders": page, "next_cursor": str(after + len(page)) if page else None})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/stock", self.push, methods=["POST"]),
            Route("/stock", self.stock_levels, methods=["GET"]),
            Route("/orders", self.list_orders, methods=["GET"]),
        ])


@dataclass
class Doubles:
    shopify: ShopifyDouble = field(default_factory=ShopifyDouble)
    webhook: WebhookDouble = field(default_factory=WebhookDouble)

"""Connectors: how the core talks to a channel (push stock, pull orders, read the channel's stock).

Failures surface as kit.outbox.DeliveryError (retry_after from the peer's Retry-After, permanent for requests
the channel will never accept), so the outbox worker retries, backs off or dead-letters them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import ValidationError

from commerce.channels.errors import InvalidChannelConfig, NoConnector
from commerce.channels.models import SalesChannel
from commerce.channels.schemas import ChannelOrderIn
from kit.outbox import DeliveryError
from kit.text import is_email_address

SIGNATURE_HEADER = "X-ShopTalk-Signature"
SHOPIFY_API_VERSION = "2024-01"
SHOPIFY_IDS_PER_REQUEST = 50  # inventory_levels.json takes at most 50 inventory_item_ids


def sign(secret: str, message: bytes) -> str:
    """`sha256=<hex>` HMAC-SHA256 of the raw bytes with the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, message: bytes, header: str | None) -> bool:
    """Constant-time comparison of a received signature header with ours."""
    return hmac.compare_digest(sign(secret, message).encode(), (header or "").strip().encode())


@dataclass(frozen=True)
class StockPush:
    sku: str
    quantity: int
    idempotency_key: str


@dataclass(frozen=True)
class OrderPage:
    orders: list[ChannelOrderIn]
    skipped: list[str]  # external ids the channel sent that do not describe an order we can take
    cursor: str | None
    more: bool


class Connector(Protocol):
    async def push_stock(self, push: StockPush) -> None: ...

    async def fetch_orders(self, cursor: str | None, limit: int) -> OrderPage: ...

    async def fetch_stock(self, skus: list[str] | None) -> dict[str, int]: ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def check_response(response: httpx.Response, what: str) -> None:
    """Raise DeliveryError for a failed channel response: retryable for 429/5xx, permanent for other 4xx."""
    if response.is_success:
        return
    status = response.status_code
    if status == 429:
        raise DeliveryError(f"{what}: rate limited (429)", retry_after=_retry_after(response) or 2.0)
    if status >= 500 or status == 408:
        raise DeliveryError(f"{what}: channel answered {status}", retry_after=_retry_after(response))
    raise DeliveryError(f"{what}: channel refused it ({status})", permanent=True)


async def _send(http: httpx.AsyncClient, request: httpx.Request, what: str) -> httpx.Response:
    try:
        response = await http.send(request)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}") from exc
    check_response(response, what)
    return response


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise DeliveryError(f"{what}: the channel's answer is not JSON") from exc


def _require(config: Mapping[str, Any], key: str, channel: str) -> Any:
    value = config.get(key)
    if value in (None, ""):
        raise InvalidChannelConfig(f"Channel {channel!r} needs config.{key} for its connector.", key=key)
    return value


def _base_url(config: Mapping[str, Any], channel: str) -> str:
    base = str(_require(config, "base_url", channel)).rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise InvalidChannelConfig(f"Channel {channel!r}: config.base_url must be an http(s) URL.", key="base_url")
    return base


# Stands in for a client when a connector is built only to check its config; it never sends.
_UNUSED = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(599)))


class WebhookConnector:
    """The generic JSON webhook contract (docs/channels.md), signed with the channel's secret both ways."""

    def __init__(self, channel: SalesChannel, http: httpx.AsyncClient | None) -> None:
        self.code = channel.code
        self.base = _base_url(channel.config, channel.code)
        self.secret = str(_require(channel.config, "secret", channel.code))
        self.http = http or _UNUSED

    def _get(self, path: str, params: list[tuple[str, str]]) -> httpx.Request:
        target = f"{urlsplit(self.base).path}{path}" + (f"?{urlencode(params)}" if params else "")
        url = f"{self.base}{path}" + (f"?{urlencode(params)}" if params else "")
        return self.http.build_request("GET", url, headers={SIGNATURE_HEADER: sign(self.secret, target.encode())})

    async def push_stock(self, push: StockPush) -> None:
        body = json.dumps({"channel": self.code, "sku": push.sku, "quantity": push.quantity},
                          separators=(",", ":")).encode()
        request = self.http.build_request(
            "POST", f"{self.base}/stock", content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                     "Idempotency-Key": push.idempotency_key})
        await _send(self.http, request, f"push {push.sku} to {self.code}")

    async def fetch_orders(self, cursor: str | None, limit: int) -> OrderPage:
        params = [("limit", str(limit))] + ([("after", cursor)] if cursor else [])
        response = await _send(self.http, self._get("/orders", params), f"orders from {self.code}")
        data = _json(response, f"orders from {self.code}")
        orders: list[ChannelOrderIn] = []
        skipped: list[str] = []
        for raw in data.get("orders", []) if isinstance(data, dict) else []:
            try:
                orders.append(ChannelOrderIn.model_validate(raw))
            except ValidationError:
                skipped.append(str(raw.get("external_id", "?")) if isinstance(raw, dict) else "?")
        next_cursor = data.get("next_cursor") if isinstance(data, dict) else None
        return OrderPage(orders, skipped, str(next_cursor) if next_cursor is not None else cursor,
                         more=bool(next_cursor) and len(orders) + len(skipped) >= limit)

    async def fetch_stock(self, skus: list[str] | None) -> dict[str, int]:
        params = [("sku", sku) for sku in skus or []]
        response = await _send(self.http, self._get("/stock", params), f"stock from {self.code}")
        data = _json(response, f"stock from {self.code}")
        rows = data.get("stock", []) if isinstance(data, dict) else []
        return {str(row["sku"]): int(row["quantity"]) for row in rows
                if isinstance(row, dict) and "sku" in row and isinstance(row.get("quantity"), int)}


class ShopifyConnector:
    """Shopify Admin REST API: inventory_levels/set.json, inventory_levels.json and orders.json (since_id paging).

    config: base_url (the shop), access_token, location_id, inventory_item_ids {sku: inventory_item_id}.
    """

    def __init__(self, channel: SalesChannel, http: httpx.AsyncClient | None) -> None:
        config = channel.config
        self.code = channel.code
        version = str(config.get("api_version") or SHOPIFY_API_VERSION)
        self.api = f"{_base_url(config, channel.code)}/admin/api/{version}"
        self.headers = {"X-Shopify-Access-Token": str(_require(config, "access_token", channel.code)),
                        "Accept": "application/json"}
        self.location_id = int(_require(config, "location_id", channel.code))
        items = config.get("inventory_item_ids") or {}
        if not isinstance(items, dict):
            raise InvalidChannelConfig(f"Channel {channel.code!r}: inventory_item_ids maps SKU to an id.",
                                       key="inventory_item_ids")
        self.items = {str(sku): int(item) for sku, item in items.items()}
        self.skus = {item: sku for sku, item in self.items.items()}
        self.http = http or _UNUSED

    async def push_stock(self, push: StockPush) -> None:
        item = self.items.get(push.sku)
        if item is None:
            return  # the SKU is not listed on this shop
        request = self.http.build_request(
            "POST", f"{self.api}/inventory_levels/set.json", headers=self.headers,
            json={"location_id": self.location_id, "inventory_item_id": item, "available": push.quantity})
        await _send(self.http, request, f"push {push.sku} to {self.code}")

    async def fetch_orders(self, cursor: str | None, limit: int) -> OrderPage:
        params: dict[str, str | int] = {"limit": min(limit, 250), "status": "any"}
        if cursor:
            params["since_id"] = cursor
        request = self.http.build_request("GET", f"{self.api}/orders.json", params=params, headers=self.headers)
        data = _json(await _send(self.http, request, f"orders from {self.code}"), f"orders from {self.code}")
        raw_orders = data.get("orders", []) if isinstance(data, dict) else []
        orders: list[ChannelOrderIn] = []
        skipped: list[str] = []
        last_id = int(cursor) if cursor and cursor.isdigit() else 0
        for raw in raw_orders:
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
                continue
            last_id = max(last_id, raw["id"])
            order = self._order(raw)
            if order is None:
                skipped.append(str(raw["id"]))
            else:
                orders.append(order)
        return OrderPage(orders, skipped, str(last_id) if last_id else cursor,
                         more=len(raw_orders) >= int(params["limit"]))

    @staticmethod
    def _order(raw: dict[str, Any]) -> ChannelOrderIn | None:
        if raw.get("cancelled_at"):
            return None
        address = raw.get("shipping_address") or {}
        try:
            lines = [{"sku": item["sku"], "quantity": item["quantity"], "unit_price": Decimal(str(item["price"]))}
                     for item in raw.get("line_items", [])]
            shipping = sum((Decimal(str(line.get("price", "0"))) for line in raw.get("shipping_lines", [])),
                           Decimal(0))
            return ChannelOrderIn.model_validate({
                "external_id": str(raw["id"]), "currency": raw.get("currency"), "lines": lines,
                "email": _email(raw.get("email")), "country": address.get("country_code"),
                "postcode": address.get("zip"), "shipping": shipping})
        except (KeyError, TypeError, InvalidOperation, ValidationError):
            return None

    async def fetch_stock(self, skus: list[str] | None) -> dict[str, int]:
        wanted = [self.items[s] for s in skus if s in self.items] if skus is not None else list(self.items.values())
        found: dict[str, int] = {}
        for start in range(0, len(wanted), SHOPIFY_IDS_PER_REQUEST):
            chunk = wanted[start:start + SHOPIFY_IDS_PER_REQUEST]
            request = self.http.build_request(
                "GET", f"{self.api}/inventory_levels.json", headers=self.headers,
                params={"inventory_item_ids": ",".join(map(str, chunk)), "location_ids": str(self.location_id)})
            data = _json(await _send(self.http, request, f"stock from {self.code}"), f"stock from {self.code}")
            for level in data.get("inventory_levels", []) if isinstance(data, dict) else []:
                sku = self.skus.get(level.get("inventory_item_id"))
                if sku is not None and isinstance(level.get("available"), int):
                    found[sku] = level["available"]
        return found


def _email(value: Any) -> str | None:
    # A shop may hold a malformed address; the order is still taken, without it.
    text = str(value or "").strip()
    return text if is_email_address(text) else None


CONNECTORS: dict[str, type[WebhookConnector] | type[ShopifyConnector]] = {
    "webhook": WebhookConnector, "shopify": ShopifyConnector}


def connector_for(channel: SalesChannel, http: httpx.AsyncClient) -> Connector:
    factory = CONNECTORS.get(channel.connector)
    if factory is None:
        raise NoConnector(f"Channel {channel.code!r} has no connector to push or pull with.")
    return factory(channel, http)


def validate_config(channel: SalesChannel) -> None:
    """Refuse a connector config that could never work (missing URL, secret, token...)."""
    if channel.connector in CONNECTORS:
        try:
            CONNECTORS[channel.connector](channel, None)
        except (TypeError, ValueError) as exc:
            raise InvalidChannelConfig(f"Channel {channel.code!r}: {exc}") from exc

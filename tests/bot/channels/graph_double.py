"""A WhatsApp Cloud API (Graph API) double on 127.0.0.1 speaking the real wire format.

`POST /{version}/{phone_number_id}/messages` checks the bearer token and validates bodies by the Cloud API's
rules (text <= 4096, reply buttons <= 3 with titles <= 20 and ids <= 256, lists <= 10 rows with titles <= 24,
descriptions <= 72, ids <= 200, a button label <= 20, interactive bodies <= 1024, captions <= 1024, templates only
when approved), enforces the 24-hour window from the shopper's last message (error 131047), answers with a
`wamid.` id or Graph's error JSON, and can be told to fail the next calls with a given code. It also writes
the webhooks Meta would send (messages, statuses) and signs them with the app secret.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.http import start_aiohttp

ACCESS_TOKEN = "EAAGm0PX4ZCpsBAFakeAccessToken0123456789"
APP_SECRET = "whatsapp-app-secret-0123456789"
TEXT_LIMIT = 4096
INTERACTIVE_BODY = 1024


@dataclass
class Sent:
    wamid: str
    to: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        if self.body["type"] == "interactive":
            return f"interactive.{self.body['interactive']['type']}"
        return str(self.body["type"])

    @property
    def text(self) -> str:
        body = self.body
        if body["type"] == "text":
            return str(body["text"]["body"])
        if body["type"] == "interactive":
            return str(body["interactive"]["body"]["text"])
        if body["type"] == "image":
            return str(body["image"].get("caption", ""))
        return json.dumps(body.get("template"))

    def ids(self) -> list[str]:
        interactive = self.body.get("interactive") or {}
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            return [b["reply"]["id"] for b in action["buttons"]]
        if interactive.get("type") == "list":
            return [r["id"] for s in action["sections"] for r in s["rows"]]
        return []


class GraphError(Exception):
    def __init__(self, code: int, message: str, status: int = 400, details: str = "") -> None:
        super().__init__(message)
        self.code, self.status, self.details = code, status, details


@dataclass
class GraphDouble:
    access_token: str
    app_secret: str
    phone_number_id: str = "106540352242922"
    version: str = "v21.0"
    templates: set[str] = field(default_factory=lambda: {"order_update"})
    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    last_inbound: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[int, int]] = field(default_factory=list)  # (code, http status) for the next calls
    base_url: str = ""
    on_sent: Callable[[Sent], None] | None = None  # called with every accepted message (the benchmark's clock)
    # Media the shoppers "uploaded": id -> (bytes, mime type); download URLs live `media_url_seconds` (Graph: 5 min).
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_url_seconds: float = 300.0
    # Graph's limits, enforced when set: messages per second for the number (130429 "Rate limit hit") and
    # (rate per second, burst) to one shopper (131056 "pair rate limit hit").
    throughput: float | None = None
    pair_rate: tuple[float, float] | None = None
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    expired_urls: int = 0  # the next answers to GET /{media-id} give a URL that has already expired
    media_requests: list[str] = field(default_factory=list)  # "info:<id>" / "download:<id>" / "expired:<id>"
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    async def start(self) -> GraphDouble:
        app = web.Application()
        app.router.add_post("/{version}/{phone}/messages", self._messages)
        app.router.add_get("/whatsapp_business/attachments/", self._media_download)  # lookaside.fbsbx.com's path
        app.router.add_get("/{version}/{media_id}", self._media_info)
        self._runner, port = await start_aiohttp(app)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GraphDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def fail_next(self, code: int, status: int = 400, times: int = 1) -> None:
        self.failures.extend([(code, status)] * times)

    # ---- the Cloud API ----

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self._error(GraphError(190, "Invalid OAuth access token - Cannot parse access token", 401))
        if request.match_info["phone"] != self.phone_number_id or request.match_info["version"] != self.version:
            return self._error(GraphError(100, "Unsupported post request. Object does not exist", 400))
        try:
            body = await request.json()
        except ValueError:
            return self._error(GraphError(100, "Invalid parameter", 400, "the body is not JSON"))
        try:
            if self.failures:
                code, status = self.failures.pop(0)
                raise GraphError(code, f"error {code}", status, "injected by the test")
            self._validate(body)
            self._rate_limits(str(body.get("to") or ""))
        except GraphError as error:
            self.refused.append((error.code, body))
            return self._error(error)
        wamid = f"wamid.HBgL{next(self._ids):08d}"
        self.sent.append(Sent(wamid, str(body["to"]), body))
        if self.on_sent is not None:
            self.on_sent(self.sent[-1])
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": body["to"],
                                                                                 "wa_id": body["to"]}],
                                  "messages": [{"id": wamid}]})

    def _spend(self, key: str, rate: float, burst: float) -> bool:
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def _rate_limits(self, to: str) -> None:
        if self.pair_rate is not None and not self._spend(f"pair:{to}", *self.pair_rate):
            raise GraphError(131056, "(Business Account, Consumer Account) pair rate limit hit", 400,
                             "Message failed to send because there were too many messages sent from this phone "
                             "number to the same phone number in a short period of time.")
        if self.throughput is not None and not self._spend("number", self.throughput, max(1.0, self.throughput)):
            raise GraphError(130429, "Rate limit hit", 400, "Message failed to send because there were too many "
                             "messages sent from this phone number in a short period of time.")

    @staticmethod
    def _error(error: GraphError) -> web.Response:
        return web.json_response({"error": {
            "message": str(error), "type": "OAuthException", "code": error.code,
            "error_data": {"messaging_product": "whatsapp", "details": error.details or str(error)},
            "fbtrace_id": "AbCdEf"}}, status=error.status)

    def _validate(self, body: dict[str, Any]) -> None:
        def need(condition: bool, details: str) -> None:
            if not condition:
                raise GraphError(100, "(#100) Invalid parameter", 400, details)

        need(body.get("messaging_product") == "whatsapp", "messaging_product must be whatsapp")
        to = str(body.get("to") or "")
        need(to.isdigit(), "to must be a phone number")
        kind = body.get("type")
        if kind != "template":
            last = self.last_inbound.get(to)
            if last is None or time.time() - last > 24 * 3600:
                raise GraphError(131047, "Re-engagement message", 400,
                                 "Message failed to send because more than 24 hours have passed since the "
                                 "customer last replied to this number.")
        if kind == "text":
            text = body["text"]["body"]
            need(0 < len(text) <= TEXT_LIMIT, f"text.body must be 1..{TEXT_LIMIT} characters")
        elif kind == "image":
            image = body["image"]
            need(bool(image.get("link") or image.get("id")), "image needs link or id")
            need(len(image.get("caption", "")) <= 1024, "caption too long")
        elif kind == "template":
            name = body["template"]["name"]
            if name not in self.templates:
                raise GraphError(132001, "Template name does not exist in the translation", 404, name)
        elif kind == "interactive":
            self._validate_interactive(body["interactive"], need)
        else:
            need(False, f"unsupported type {kind}")

    @staticmethod
    def _validate_interactive(interactive: dict[str, Any], need: Any) -> None:
        text = interactive.get("body", {}).get("text", "")
        need(0 < len(text) <= INTERACTIVE_BODY, f"interactive body must be 1..{INTERACTIVE_BODY} characters")
        action = interactive["action"]
        if interactive["type"] == "button":
            buttons = action["buttons"]
            need(1 <= len(buttons) <= 3, "1..3 buttons")
            ids = [b["reply"]["id"] for b in buttons]
            need(len(set(ids)) == len(ids), "button ids must be unique")
            for button in buttons:
                need(0 < len(button["reply"]["title"]) <= 20, "button title 1..20 characters")
                need(0 < len(button["reply"]["id"]) <= 256, "button id 1..256 characters")
            header = interactive.get("header")
            if header is not None:
                need(header["type"] == "image" and bool(header["image"].get("link")), "image header needs a link")
        elif interactive["type"] == "list":
            need(0 < len(action["button"]) <= 20, "list button label 1..20 characters")
            rows = [r for s in action["sections"] for r in s["rows"]]
            need(1 <= len(rows) <= 10, "1..10 rows in all")
            ids = [r["id"] for r in rows]
            need(len(set(ids)) == len(ids), "row ids must be unique")
            for row in rows:
                need(0 < len(row["title"]) <= 24, "row title 1..24 characters")
                need(len(row.get("description", "")) <= 72, "row description <= 72 characters")
                need(0 < len(row["id"]) <= 200, "row id 1..200 characters")
        else:
            need(False, f"unsupported interactive type {interactive['type']}")

    # ---- media: GET /{media-id} (the URL, mime, sha256, size), then GET the URL with the same token ----

    def add_media(self, data: bytes, mime_type: str, media_id: str | None = None) -> str:
        media_id = media_id or str(1479537139650000 + next(self._ids))
        self.media[media_id] = (data, mime_type)
        return media_id

    def _signed(self, media_id: str, expires: int) -> str:
        return hmac.new(self.app_secret.encode(), f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:24]

    async def _media_info(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self._error(GraphError(190, "Invalid OAuth access token - Cannot parse access token", 401))
        media_id = request.match_info["media_id"]
        if request.match_info["version"] != self.version or media_id not in self.media:
            return self._error(GraphError(100, f"Unsupported get request. Object with ID '{media_id}' does not "
                                               "exist", 400))
        self.media_requests.append(f"info:{media_id}")
        if self.failures:
            code, status = self.failures.pop(0)
            return self._error(GraphError(code, f"error {code}", status, "injected by the test"))
        data, mime = self.media[media_id]
        expires = int(time.time() + self.media_url_seconds)
        if self.expired_urls > 0:
            self.expired_urls -= 1
            expires = int(time.time()) - 1
        url = (f"{self.base_url}/whatsapp_business/attachments/?mid={media_id}&ext={expires}"
               f"&hash={self._signed(media_id, expires)}")
        return web.json_response({"messaging_product": "whatsapp", "url": url, "mime_type": mime,
                                  "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data), "id": media_id})

    async def _media_download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.Response(status=401, text="Unauthorized")
        media_id, expires = request.query.get("mid", ""), request.query.get("ext", "0")
        if media_id not in self.media or not hmac.compare_digest(request.query.get("hash", ""),
                                                                 self._signed(media_id, int(expires))):
            return web.Response(status=404, text="Not Found")
        if int(expires) < time.time():
            self.media_requests.append(f"expired:{media_id}")
            return web.Response(status=404, text="URL signature expired")
        self.media_requests.append(f"download:{media_id}")
        data, mime = self.media[media_id]
        return web.Response(body=data, content_type=mime)

    def media_message(self, wa_id: str, kind: str, data: bytes, mime_type: str, *, caption: str | None = None,
                      filename: str | None = None, media_id: str | None = None) -> dict[str, Any]:
        """A shopper's image/document/audio/video webhook (sha256 base64, as the webhooks give it)."""
        media_id = self.add_media(data, mime_type, media_id)
        content: dict[str, Any] = {"mime_type": mime_type, "id": media_id,
                                   "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}
        if caption:
            content["caption"] = caption
        if filename:
            content["filename"] = filename
        return self.message(wa_id, kind, content)

    # ---- webhooks Meta would send ----

    def webhook(self, value: dict[str, Any]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.phone_number_id},
                      **value}, "field": "messages"}]}]}

    def message(self, wa_id: str, kind: str, content: dict[str, Any], *, wamid: str | None = None,
                name: str = "Kerry Fisher") -> dict[str, Any]:
        """A shopper's message webhook; the shopper's window opens (as on WhatsApp)."""
        self.last_inbound[wa_id] = time.time()
        message = {"from": wa_id, "id": wamid or f"wamid.IN{next(self._ids):08d}", "timestamp": str(int(time.time())),
                   "type": kind, **({kind: content} if content else {})}
        return self.webhook({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]})

    def text(self, wa_id: str, body: str, **kwargs: Any) -> dict[str, Any]:
        return self.message(wa_id, "text", {"body": body}, **kwargs)

    def press(self, wa_id: str, sent: Sent, reply_id: str) -> dict[str, Any]:
        kind = "button_reply" if sent.kind == "interactive.button" else "list_reply"
        hook = self.message(wa_id, "interactive", {"type": kind, kind: {"id": reply_id, "title": "pressed"}})
        hook["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {"from": "15550783881",
                                                                             "id": sent.wamid}
        return hook

    def status(self, sent: Sent, status: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {"id": sent.wamid, "status": status, "timestamp": str(int(time.time())),
                                  "recipient_id": sent.to}
        if errors:
            report["errors"] = errors
        return self.webhook({"statuses": [report]})

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    def to(self, wa_id: str) -> list[Sent]:
        return [s for s in self.sent if s.to == wa_id]

    async def wait_for_sent(self, wa_id: str, count: int, timeout: float = 60.0) -> list[Sent]:
        deadline = time.monotonic() + timeout
        while len(self.to(wa_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages to {wa_id}, got {[s.body for s in self.to(wa_id)]}")
            await asyncio.sleep(0.05)
        return self.to(wa_id)


@pytest.fixture
async def graph() -> AsyncIterator[GraphDouble]:
    """The one Graph API double fixture (import it into a test module: `from ...graph_double import graph`)."""
    async with GraphDouble(access_token=ACCESS_TOKEN, app_secret=APP_SECRET) as double:
        yield double


def sample_png(width: int = 96, height: int = 64) -> bytes:
    """A real PNG (a coloured gradient) for media tests: browsers decode it."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")

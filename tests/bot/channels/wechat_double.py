"""A WeChat Official Account platform double: its API on 127.0.0.1 and its side of the message webhook.

API (JSON, WeChat's `errcode`/`errmsg` answers): `POST /cgi-bin/stable_token` (client_credential, 2-hour tokens;
`force_refresh` issues a new one) and `POST /cgi-bin/message/custom/send?access_token=` (the customer-service
message: text up to 2048 bytes; 40001 for an unknown token, 42001 for an expired one, 45015 outside the 48-hour
window; `fail_next(errcode)` injects others). Webhook side: `message_request` builds the POST WeChat makes
(query signature, or safe mode's AES envelope with msg_signature) and `read_reply` opens a passive reply the way
WeChat's servers check it (signature, decryption, AppID).
"""
from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from bot.channels.wechat import MessageCrypto, cdata, parse_xml, sha1_signature
from tests.http import start_aiohttp

CS_TEXT_BYTES = 2048


@dataclass
class WeChatDouble:
    app_id: str
    app_secret: str
    token: str
    encoding_aes_key: str | None = None
    account: str = "gh_3d2a7f6b1c09"
    sent: list[tuple[str, str]] = field(default_factory=list)  # (openid, text) by the customer-service API
    token_requests: int = 0
    failures: list[int] = field(default_factory=list)
    window_closed: set[str] = field(default_factory=set)
    base_url: str = ""
    menu: list[dict[str, Any]] = field(default_factory=list)
    on_sent: Callable[[str, str], None] | None = None  # (openid, text) of every customer-service message
    _valid: dict[str, float] = field(default_factory=dict)
    _expired: set[str] = field(default_factory=set)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media_id -> (bytes, content type)
    uploads: list[str] = field(default_factory=list)  # media_ids made by /cgi-bin/media/upload
    pictures: dict[str, bytes] = field(default_factory=dict)  # served at /shop-pictures/{name}
    rich: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (openid, image / news message body)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(6054768590064713728))
    _runner: web.AppRunner | None = None

    @property
    def crypto(self) -> MessageCrypto:
        assert self.encoding_aes_key is not None
        return MessageCrypto(self.encoding_aes_key, self.app_id)

    async def start(self) -> WeChatDouble:
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_get("/shop-pictures/{name}", self._picture)  # stands in for the shop's image host
        app.router.add_post("/cgi-bin/media/upload", self._media_upload)
        self._runner, port = await start_aiohttp(app)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expire_tokens(self) -> None:
        self._expired.update(self._valid)
        self._valid.clear()

    def fail_next(self, errcode: int) -> None:
        self.failures.append(errcode)

    # ---- the API ----

    async def _stable_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_requests += 1
        if body.get("grant_type") != "client_credential" or body.get("appid") != self.app_id:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if body.get("secret") != self.app_secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        live = [t for t, until in self._valid.items() if until > time.time()]
        if live and not body.get("force_refresh"):
            return web.json_response({"access_token": live[0], "expires_in": int(self._valid[live[0]] - time.time())})
        token = secrets.token_urlsafe(48)
        self._valid = {token: time.time() + 7200}
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token in self._expired:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self._valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = await request.json()
        if self.failures:
            code = self.failures.pop(0)
            return web.json_response({"errcode": code, "errmsg": f"injected {code}"})
        to = str(body.get("touser") or "")
        if to in self.window_closed:
            return web.json_response({"errcode": 45015, "errmsg": "response out of time limit or subscription is "
                                                                  "canceled"})
        if body.get("msgtype") == "image":
            media_id = str((body.get("image") or {}).get("media_id") or "")
            if media_id not in self.media:
                return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
            self.rich.append((to, body))
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        if body.get("msgtype") == "news":
            articles = (body.get("news") or {}).get("articles") or []
            # The customer-service API takes one article (since 2018), with a title and a url.
            if len(articles) != 1 or not articles[0].get("title") or not articles[0].get("url"):
                return web.json_response({"errcode": 45008, "errmsg": "article size out of limit"})
            self.rich.append((to, body))
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        content = str((body.get("text") or {}).get("content") or "")
        if body.get("msgtype") != "text" or not content:
            return web.json_response({"errcode": 44002, "errmsg": "empty post data"})
        if len(content.encode("utf-8")) > CS_TEXT_BYTES:
            return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        self.sent.append((to, content))
        if self.on_sent is not None:
            self.on_sent(to, content)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _menu_create(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self._valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        buttons = (await request.json()).get("button") or []
        # WeChat's rules: 1-3 top-level items, names up to 16 bytes, click keys up to 128 bytes.
        if not 1 <= len(buttons) <= 3:
            return web.json_response({"errcode": 40016, "errmsg": "invalid button size"})
        for button in buttons:
            if not 0 < len(str(button.get("name", "")).encode()) <= 16:
                return web.json_response({"errcode": 40018, "errmsg": "invalid button name size"})
            if button.get("type") != "click" or not 0 < len(str(button.get("key", "")).encode()) <= 128:
                return web.json_response({"errcode": 40019, "errmsg": "invalid button key size"})
        self.menu = buttons
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _picture(self, request: web.Request) -> web.Response:
        found = self.pictures.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found, content_type="image/png")

    def add_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        media_id = secrets.token_urlsafe(48)[:64]
        self.media[media_id] = (data, content_type)
        return media_id

    async def _media_get(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self._valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        data, content_type = found
        return web.Response(body=data, content_type=content_type,
                            headers={"Content-disposition": 'attachment; filename="media.jpg"'})

    async def _media_upload(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") not in self._valid:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        kind = request.query.get("type", "")
        if kind != "image":
            return web.json_response({"errcode": 40004, "errmsg": "invalid media type"})
        form = await request.post()
        upload = form.get("media")
        if not isinstance(upload, web.FileField):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        data = upload.file.read()
        if not data or len(data) > 10 * 1024 * 1024:
            return web.json_response({"errcode": 40009, "errmsg": "invalid image size"})
        media_id = self.add_media(data, upload.content_type or "image/jpeg")
        self.uploads.append(media_id)
        return web.json_response({"type": "image", "media_id": media_id, "created_at": int(time.time())})

    async def wait_for_sent(self, openid: str, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.to(openid)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages to {openid}, got {self.to(openid)}")
            await asyncio.sleep(0.05)
        return self.to(openid)

    def to(self, openid: str) -> list[str]:
        return [text for to, text in self.sent if to == openid]

    # ---- the webhook, as WeChat's servers call it ----

    def message_xml(self, openid: str, kind: str = "text", msg_id: int | None = None, **fields: str) -> str:
        parts = [f"<ToUserName>{cdata(self.account)}</ToUserName>", f"<FromUserName>{cdata(openid)}</FromUserName>",
                 f"<CreateTime>{int(time.time())}</CreateTime>", f"<MsgType>{cdata(kind)}</MsgType>"]
        parts += [f"<{name}>{cdata(value)}</{name}>" for name, value in fields.items()]
        if kind != "event":
            parts.append(f"<MsgId>{msg_id or next(self._ids)}</MsgId>")
        return "<xml>" + "".join(parts) + "</xml>"

    def message_request(self, xml: str, *, encrypted: bool = False) -> tuple[dict[str, str], bytes]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        params = {"timestamp": timestamp, "nonce": nonce, "signature": sha1_signature(self.token, timestamp, nonce),
                  "openid": "o" + secrets.token_hex(8)}
        if not encrypted:
            return params, xml.encode("utf-8")
        envelope = self.crypto.encrypt(xml)
        params.update(encrypt_type="aes", msg_signature=sha1_signature(self.token, timestamp, nonce, envelope))
        body = f"<xml><ToUserName>{cdata(self.account)}</ToUserName><Encrypt>{cdata(envelope)}</Encrypt></xml>"
        return params, body.encode()

    async def deliver(self, http: httpx.AsyncClient, xml: str, *, encrypted: bool = False, lose: int = 0,
                      path: str = "/webhooks/wechat", timeout: float = 5.0) -> tuple[str, int]:
        """Post a message as WeChat's servers do: an answer that takes over `timeout` s (or, for the first `lose`
        tries, one lost on the way back) makes WeChat post the same message again (fresh timestamp and nonce), up
        to 3 times in all. Returns the answer that reached WeChat ("" when none did) and the tries made."""
        for attempt in range(1, 4):
            params, body = self.message_request(xml, encrypted=encrypted)
            try:
                response = await http.post(path, params=params, content=body, headers={"content-type": "text/xml"},
                                           timeout=timeout)
            except httpx.TimeoutException:
                continue
            if attempt <= lose:
                continue  # the answer was made but never reached WeChat
            return response.text, attempt
        return "", 3

    def read_reply(self, body: str) -> dict[str, Any]:
        """A passive reply's fields, checked as WeChat does (safe mode: signature and AppID)."""
        if body in ("", "success"):
            return {}
        fields = parse_xml(body)
        if "Encrypt" in fields:
            expected = sha1_signature(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
            assert fields["MsgSignature"] == expected, "the reply's MsgSignature is wrong"
            fields = parse_xml(self.crypto.decrypt(fields["Encrypt"]))
        return dict(fields)

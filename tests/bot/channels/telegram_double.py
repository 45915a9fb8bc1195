"""A Telegram Bot API double on 127.0.0.1 speaking the real protocol ({"ok": ..., "result": ...}).

It implements what ShopTalk uses: getMe, getUpdates (long polling), sendMessage (with Telegram's HTML
parsing rules and limits), sendPhoto (an uploaded file, a file_id it issued, or an http(s) URL it downloads
as Telegram does - only from 127.0.0.1/localhost, the double has no internet - with the 1024-character
caption limit), answerCallbackQuery, editMessageText, setWebhook, deleteWebhook. Tests play
the shopper through `user_sends`, `user_presses`, ... and read what the bot sent from `sent`.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from tests.http import start_aiohttp

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                "tg-spoiler", "blockquote", "tg-emoji"}
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
PHOTO_URL_MAX_BYTES = 5 * 1024 * 1024  # Telegram downloads photos given by URL up to 5 MB
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class EntityError(ValueError):
    pass


class _TelegramHTML(HTMLParser):
    """Telegram's HTML mode: a small tag set, everything else must be escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise EntityError(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise EntityError(f'Unexpected end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> str:
    """The plain text Telegram would show, or EntityError like Telegram's 'can't parse entities'."""
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
    return "".join(parser.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class SentMessage:
    message_id: int
    chat_id: int
    text: str  # as the shopper sees it
    raw: str  # as the bot sent it
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    photo: str | None = None  # a photo message: the file_id Telegram gave it (text is then the caption)
    photo_source: str | None = None  # what the bot sent as `photo`: a URL, a file_id or "<file>"

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def button(self, contains: str) -> dict[str, Any]:
        for button in self.buttons:
            if contains.lower() in str(button.get("text", "")).lower():
                return button
        raise AssertionError(f"no button with {contains!r} in {[b.get('text') for b in self.buttons]}")


@dataclass
class TelegramDouble:
    token: str
    bot_id: int = 777000111
    username: str = "shoptalk_test_bot"
    host: str = "127.0.0.1"
    port: int = 0
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[SentMessage] = field(default_factory=list)
    answered_callbacks: list[dict[str, Any]] = field(default_factory=list)
    chat_actions: list[tuple[int, str]] = field(default_factory=list)  # sendChatAction (chat id, action)
    calls: list[str] = field(default_factory=list)
    blocked_chats: set[int] = field(default_factory=set)
    # One entry per coming sendMessage call: a retry_after to answer 429 with, or 0 to let it through.
    rate_limit_next: list[int] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    # What sendPhoto downloaded, per URL (bytes), as Telegram's servers would have.
    fetched_photos: dict[str, int] = field(default_factory=dict)
    # Telegram Payments: invoices sent (sendInvoice params) and the bot's answers to pre-checkout queries.
    invoices: list[dict[str, Any]] = field(default_factory=list)
    pre_checkout_answers: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(10_000)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(5_000)
        self._new_update = asyncio.Condition()
        self._sent_event = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._file_ids: set[str] = set()

    # ---- server ----

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> TelegramDouble:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner, self.port = await start_aiohttp(app, self.host, self.port)
        return self

    async def stop(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data: dict[str, Any] = await request.json()
            return data
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else "<file>"
        # attach://name: the file travels as its own multipart field, as aiogram sends an InputFile
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = "<file>" if value.removeprefix("attach://") in params else ""
        return params

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        self.calls.append(method)
        params = await self._params(request)
        handler = {"getme": self._get_me, "getupdates": self._get_updates, "sendmessage": self._send_message,
                   "sendphoto": self._send_photo,
                   "answercallbackquery": self._answer_callback, "editmessagetext": self._edit_message_text,
                   "setwebhook": self._set_webhook, "deletewebhook": self._delete_webhook,
                   "sendinvoice": self._send_invoice,
                   "answerprecheckoutquery": self._answer_pre_checkout,
                   "sendchataction": self._send_chat_action}.get(method)
        if handler is None:
            return _error(404, "Not Found")
        return await handler(params)

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "ShopTalk", "username": self.username,
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        return _ok(self._bot_user())

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 2.0)
        # A request with an offset confirms every update below it, as on Telegram.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        async with self._new_update:
            while not self.updates and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._new_update.wait(), timeout=deadline - time.monotonic())
                except TimeoutError:
                    break
        return _ok(list(self.updates[:100]))

    def _markup(self, params: dict[str, Any]) -> dict[str, Any] | None | web.Response:
        raw = params.get("reply_markup")
        if raw in (None, ""):
            return None
        markup: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                    return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _parsed(params: dict[str, Any], field: str) -> str | web.Response:
        """The text of `field` as Telegram shows it (HTML parsed when parse_mode says so), or its 400."""
        raw = str(params.get(field) or "")
        if params.get("parse_mode") != "HTML":
            return raw
        try:
            return parse_html(raw)
        except EntityError as exc:
            return _error(400, f"Bad Request: can't parse entities: {exc}")

    def _render(self, params: dict[str, Any]) -> str | web.Response:
        text = self._parsed(params, "text")
        if isinstance(text, web.Response):
            return text
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if utf16_len(text) > TEXT_LIMIT:
            return _error(400, "Bad Request: message is too long")
        return text

    def _caption(self, params: dict[str, Any]) -> str | web.Response:
        caption = self._parsed(params, "caption")
        if isinstance(caption, web.Response):
            return caption
        if utf16_len(caption) > CAPTION_LIMIT:
            return _error(400, "Bad Request: message caption is too long")
        return caption

    async def _fetch_photo(self, url: str) -> web.Response | None:
        """Download a photo given by URL as Telegram's servers do; an error response when Telegram would refuse."""
        try:
            target = URL(url)
        except ValueError:
            return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if target.scheme not in ("http", "https") or not target.host:
            return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if target.host not in LOOPBACK_HOSTS:
            return _error(400, "Bad Request: failed to get HTTP URL content")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.get(target) as response:
                body = await response.content.read(PHOTO_URL_MAX_BYTES + 1)
                content_type = response.content_type
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            return _error(400, "Bad Request: failed to get HTTP URL content")
        if status != 200 or len(body) > PHOTO_URL_MAX_BYTES:
            return _error(400, "Bad Request: failed to get HTTP URL content")
        if not content_type.startswith("image/"):
            return _error(400, "Bad Request: wrong type of the web page content")
        self.fetched_photos[url] = len(body)
        return None

    async def _send_photo(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        retry_after = self.rate_limit_next.pop(0) if self.rate_limit_next else 0
        if retry_after:
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        if chat_id in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        photo = str(params.get("photo") or "")
        if not photo:
            return _error(400, "Bad Request: there is no photo in the request")
        if photo != "<file>" and photo not in self._file_ids:
            if not re.match(r"^https?://", photo):
                return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            refused = await self._fetch_photo(photo)
            if refused is not None:
                return refused
        caption = self._caption(params)
        if isinstance(caption, web.Response):
            return caption
        markup = self._markup(params)
        if isinstance(markup, web.Response):
            return markup
        message_id = next(self._message_ids)
        file_id = photo if photo in self._file_ids else \
            "AgAC" + hashlib.sha256(f"{photo}:{message_id}".encode()).hexdigest()[:40]
        self._file_ids.add(file_id)
        message = SentMessage(message_id, chat_id, caption, str(params.get("caption") or ""),
                              params.get("parse_mode"), markup, photo=file_id, photo_source=photo)
        async with self._sent_event:
            self.sent.append(message)
            self._sent_event.notify_all()
        return _ok(self._message_json(message))

    async def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        retry_after = self.rate_limit_next.pop(0) if self.rate_limit_next else 0
        if retry_after:
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        if chat_id in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        text = self._render(params)
        if isinstance(text, web.Response):
            return text
        markup = self._markup(params)
        if isinstance(markup, web.Response):
            return markup
        message = SentMessage(next(self._message_ids), chat_id, text, str(params.get("text")),
                              params.get("parse_mode"), markup)
        async with self._sent_event:
            self.sent.append(message)
            self._sent_event.notify_all()
        return _ok(self._message_json(message))

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        result: dict[str, Any] = {"message_id": message.message_id, "from": self._bot_user(),
                                  "chat": {"id": message.chat_id, "type": "private", "first_name": "Shopper"},
                                  "date": int(time.time())}
        if message.photo is None:
            result["text"] = message.text
        else:
            result["photo"] = [{"file_id": message.photo, "file_unique_id": message.photo[-16:], "width": 320,
                                "height": 320}]
            if message.text:
                result["caption"] = message.text
        if message.reply_markup:
            result["reply_markup"] = message.reply_markup
        return result

    async def _send_invoice(self, params: dict[str, Any]) -> web.Response:
        prices = params.get("prices")
        prices = json.loads(prices) if isinstance(prices, str) else prices
        currency = str(params.get("currency") or "")
        # As Telegram: a 3-letter currency, positive integer amounts (the currency's smallest unit), a payload.
        if not re.fullmatch(r"[A-Z]{3}", currency) or not prices or \
                any(not isinstance(p.get("amount"), int) or p["amount"] <= 0 for p in prices):
            return _error(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
        if not params.get("payload") or not params.get("title"):
            return _error(400, "Bad Request: invoice payload and title are required")
        invoice = {"chat_id": int(params["chat_id"]), "title": params["title"],
                   "description": params.get("description"), "payload": params["payload"], "currency": currency,
                   "total_amount": sum(int(p["amount"]) for p in prices),
                   "provider_token": params.get("provider_token")}
        message = SentMessage(next(self._message_ids), invoice["chat_id"], str(params["title"]),
                              str(params["title"]), None, None)
        async with self._sent_event:
            self.invoices.append(invoice)
            self.sent.append(message)
            self._sent_event.notify_all()
        result = self._message_json(message)
        result["invoice"] = {"title": invoice["title"], "description": invoice["description"],
                             "start_parameter": "", "currency": currency, "total_amount": invoice["total_amount"]}
        return _ok(result)

    async def _answer_pre_checkout(self, params: dict[str, Any]) -> web.Response:
        ok = params.get("ok") in (True, "true", "True", 1, "1")
        if not ok and not params.get("error_message"):
            return _error(400, "Bad Request: error_message is required when ok is false")
        self.pre_checkout_answers.append({**params, "ok": ok})
        return _ok(True)

    def pre_checkout_update(self, chat_id: int, invoice: dict[str, Any], *, language: str = "en",
                            total_amount: int | None = None) -> dict[str, Any]:
        """The update Telegram sends when the shopper presses Pay on `invoice`."""
        query = {"id": str(next(self._callback_ids)), "from": self._user(chat_id, language),
                 "currency": invoice["currency"], "invoice_payload": invoice["payload"],
                 "total_amount": invoice["total_amount"] if total_amount is None else total_amount}
        return {"update_id": next(self._update_ids), "pre_checkout_query": query}

    def successful_payment_update(self, chat_id: int, invoice: dict[str, Any], *, charge_id: str,
                                  language: str = "en") -> dict[str, Any]:
        """The service message Telegram sends once the payment went through."""
        paid = {"currency": invoice["currency"], "total_amount": invoice["total_amount"],
                "invoice_payload": invoice["payload"], "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": f"prov_{charge_id}"}
        return self.message_update(chat_id, language=language, successful_payment=paid)

    async def _send_chat_action(self, params: dict[str, Any]) -> web.Response:
        if int(params["chat_id"]) in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        self.chat_actions.append((int(params["chat_id"]), str(params["action"])))
        return _ok(True)

    async def _answer_callback(self, params: dict[str, Any]) -> web.Response:
        self.answered_callbacks.append(params)
        return _ok(True)

    async def _edit_message_text(self, params: dict[str, Any]) -> web.Response:
        for message in self.sent:
            if message.message_id == int(params.get("message_id") or 0) and message.chat_id == int(params["chat_id"]):
                if message.photo is not None:
                    return _error(400, "Bad Request: there is no text in the message to edit")
                text = self._render(params)
                if isinstance(text, web.Response):
                    return text
                message.text, message.raw = text, str(params.get("text"))
                return _ok(self._message_json(message))
        return _error(400, "Bad Request: message to edit not found")

    async def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url, secret = str(params.get("url") or ""), params.get("secret_token")
        if url and not url.startswith("https://"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret} if url else None
        return _ok(True)

    async def _delete_webhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = None
        return _ok(True)

    # ---- the shopper's side ----

    async def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        async with self._new_update:
            self.updates.append(update)
            self._new_update.notify_all()
        return update

    def _user(self, chat_id: int, language: str) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": "Shopper", "last_name": str(chat_id),
                "language_code": language}

    def message_update(self, chat_id: int, *, language: str = "en", **content: Any) -> dict[str, Any]:
        message = {"message_id": next(self._message_ids), "from": self._user(chat_id, language),
                   "chat": {"id": chat_id, "type": "private", "first_name": "Shopper"},
                   "date": int(time.time()), **content}
        return {"update_id": next(self._update_ids), "message": message}

    async def user_sends(self, chat_id: int, text: str, *, language: str = "en") -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ")[0])}]
        return await self.push_update(self.message_update(chat_id, language=language, **content))

    async def user_sends_sticker(self, chat_id: int, *, language: str = "en") -> dict[str, Any]:
        sticker = {"file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgADAQAD", "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "😀"}
        return await self.push_update(self.message_update(chat_id, language=language, sticker=sticker))

    async def user_presses(self, chat_id: int, message: SentMessage, callback_data: str, *,
                           language: str = "en") -> dict[str, Any]:
        query = {"id": str(next(self._callback_ids)), "from": self._user(chat_id, language),
                 "chat_instance": f"ci{chat_id}", "data": callback_data,
                 "message": self._message_json(message)}
        return await self.push_update({"update_id": next(self._update_ids), "callback_query": query})

    async def wait_for_sent(self, chat_id: int, count: int, *, timeout: float = 20.0) -> list[SentMessage]:
        """Wait until the chat has received at least `count` messages in total; return them all."""
        deadline = time.monotonic() + timeout
        async with self._sent_event:
            while len(self.to(chat_id)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [m.text[:80] for m in self.to(chat_id)]
                    raise AssertionError(f"chat {chat_id} got {len(got)} messages, wanted {count}: {got}")
                try:
                    await asyncio.wait_for(self._sent_event.wait(), timeout=remaining)
                except TimeoutError:
                    pass
        return self.to(chat_id)

    async def wait_for_text(self, chat_id: int, contains: str, *, after: int = 0,
                            timeout: float = 30.0) -> SentMessage:
        """The first message to the chat, from index `after` on, whose text contains `contains`."""
        deadline = time.monotonic() + timeout
        async with self._sent_event:
            while True:
                for message in self.to(chat_id)[after:]:
                    if contains.lower() in message.text.lower():
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [m.text[:100] for m in self.to(chat_id)[after:]]
                    raise AssertionError(f"chat {chat_id} never got {contains!r}; got {got}")
                try:
                    await asyncio.wait_for(self._sent_event.wait(), timeout=remaining)
                except TimeoutError:
                    pass

    async def wait_for_button(self, chat_id: int, title: str, *, after: int = 0,
                              timeout: float = 30.0) -> SentMessage:
        """The first message to the chat, from index `after` on, carrying a button titled like `title`."""
        deadline = time.monotonic() + timeout
        async with self._sent_event:
            while True:
                for message in self.to(chat_id)[after:]:
                    if any(title.lower() in str(b.get("text", "")).lower() for b in message.buttons):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(m.text[:60], [b.get("text") for b in m.buttons]) for m in self.to(chat_id)[after:]]
                    raise AssertionError(f"chat {chat_id} never got a {title!r} button; got {got}")
                try:
                    await asyncio.wait_for(self._sent_event.wait(), timeout=remaining)
                except TimeoutError:
                    pass

    def to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)

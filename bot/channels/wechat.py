"""WeChat Official Account (服务号): signed XML in, passive replies or customer-service messages out.

Inbound: URL verification and message signatures (SHA-1 of the sorted token, timestamp, nonce), and in safe
mode the AES-256-CBC envelope of WeChat's WXBizMsgCrypt (EncodingAESKey; msg_signature over the ciphertext too;
the decrypted message must name our AppID). XML is parsed with defusedxml. Text, menu-link presses (bizmsgmenuid),
menu clicks and subscriptions become InboundMessages; pictures, voice and the rest are "unsupported" with the
raw message kept.

Outbound: the bot's first text goes back as the passive reply within WeChat's 5-second window; what is left, and
what comes later (an agent's reply), goes by the customer-service message API (send.wechat outbox topic) with an
access token from stable_token, cached and refreshed. WeChat shows no buttons: the channel contract turns them
into menu links in the text (pressing one sends its title back with its payload as bizmsgmenuid) and URL buttons
into links; texts are split at 2048 bytes. Product pictures go as image messages (uploaded by media/upload, the
media_id cached) with the caption after; with a `product_url`, cards go as articles (图文, also as the passive reply).

Why one module over 500 lines: it is WeChat's wire protocol end to end (signatures, AES envelope, XML, passive
replies and their retries, the customer-service and media APIs), each part small and used only here.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any, Literal
from xml.etree.ElementTree import Element

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree

from bot.channels import command_payload, media
from bot.channels.capabilities import (
    ArticlePart,
    Capabilities,
    CardUrl,
    ImagePart,
    TextPart,
    as_text,
    clip,
    plan,
)
from bot.i18n import t
from bot.messages import InboundMessage, OutboundMessage
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import DeliveryError, OutboxEvent
from kit.pubsub import RedisPubSub
from kit.ratelimit import digest
from kit.settings import WeChatSettings

log = logging.getLogger(__name__)

CHANNEL = "wechat"
# Pictures go as image messages (uploaded, media_id cached), their caption as the text after; cards with a page
# as articles (图文, one per message); buttons as menu links.
CAPABILITIES = Capabilities(max_text=2048, unit="utf8", long_text="split", text_links="menu", images=True,
                            max_caption=2048, articles=True)
IMAGE_MEDIA_SECONDS = 2.5 * 24 * 3600  # temporary media live 3 days: a cached media_id is used 2.5
IMAGE_UPLOAD_BYTES = 10 * 1024 * 1024
SENT_PARTS_KEY = "wechat_sent_parts"  # custom[...]: how many parts the passive reply already carried
BLOCK = 32  # WXBizMsgCrypt pads PKCS#7 to 32 bytes
# Customer-service API answers: the token is stale -> refresh once and retry.
TOKEN_ERRORS = {40001, 40014, 42001}
RETRY_ERRORS = {-1: None, 45009: 60.0, 45011: 1.0}  # busy; daily API quota; API rate per minute
# The account's custom menu: the shop's main menu, each item a click whose EventKey is the button's payload.
MENU = (("button.search", "menu:search"), ("button.order_status", "menu:order"), ("button.cart", "cart:view"))
MENU_NAME_BYTES = Capabilities(max_text=16, unit="utf8")  # a top-level item's name: at most 16 bytes


class SignatureInvalid(Exception):
    pass


class MessageInvalid(Exception):
    pass


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's scheme


def check_signature(token: str, params: dict[str, str], *extra: str, key: str = "signature") -> None:
    given = params.get(key)
    if not given:
        raise SignatureInvalid(f"{key} is missing")
    expected = sha1_signature(token, params.get("timestamp", ""), params.get("nonce", ""), *extra)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise SignatureInvalid(f"{key} does not match")


# ---- safe mode (AES) ------------------------------------------------------------------------------------

class MessageCrypto:
    """WXBizMsgCrypt: AES-256-CBC with the EncodingAESKey (IV = its first 16 bytes), PKCS#7 to 32 bytes, over
    16 random bytes + the message length (4 bytes, big endian) + the message + the receiver's AppID."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.app_id = app_id

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, *, random16: bytes | None = None) -> str:
        body = message.encode("utf-8")
        plain = (random16 or secrets.token_bytes(16)) + struct.pack(">I", len(body)) + body + self.app_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            raw = base64.b64decode(ciphertext, validate=True)
        except ValueError as exc:
            raise MessageInvalid("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise MessageInvalid("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK:
            raise MessageInvalid("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise MessageInvalid("message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, receiver = plain[20:20 + length], plain[20 + length:]
        if len(body) != length or not hmac.compare_digest(receiver, self.app_id.encode()):
            raise MessageInvalid("the message is not addressed to this account")
        return body.decode("utf-8")


# ---- XML ------------------------------------------------------------------------------------------------

def parse_xml(body: bytes | str) -> dict[str, str]:
    """The fields of a WeChat `<xml>` message (first level; defusedxml refuses entities and DTDs)."""
    try:
        root: Element = ElementTree.fromstring(body)
    except Exception as exc:  # noqa: BLE001 - ParseError, EntitiesForbidden, DTDForbidden: all bad input
        raise MessageInvalid(f"not WeChat XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise MessageInvalid("the root element is not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(*, to: str, sender: str, content: str, now: int | None = None) -> str:
    return (f"<xml><ToUserName>{cdata(to)}</ToUserName><FromUserName>{cdata(sender)}</FromUserName>"
            f"<CreateTime>{now or int(time.time())}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


def encrypted_reply_xml(crypto: MessageCrypto, token: str, plain_xml: str, *, nonce: str | None = None,
                        timestamp: str | None = None) -> str:
    encrypted = crypto.encrypt(plain_xml)
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    signature = sha1_signature(token, timestamp, nonce, encrypted)
    return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>")


def inbound_from(fields: dict[str, str], *, locale: str) -> InboundMessage:
    """One WeChat message (its XML fields) as an InboundMessage; the raw fields are kept in its metadata."""
    sender = fields.get("FromUserName", "")
    kind = fields.get("MsgType", "")
    # Events carry no MsgId: the sender and the second it happened identify one.
    message_id = fields.get("MsgId") or f"{kind}:{fields.get('Event', '')}:{fields.get('CreateTime', '')}"
    base: dict[str, Any] = {"channel": CHANNEL, "sender_id": sender, "message_id": message_id,
                            "locale_hint": locale, "received_at": utcnow()}
    metadata: dict[str, Any] = {"wechat_type": kind, "wechat": fields}
    if kind == "text":
        text = fields.get("Content", "")
        pressed = fields.get("bizmsgmenuid")
        if pressed:  # a menu link of ours: its id is the button's payload
            return InboundMessage(**base, kind="callback", text=text, payload=pressed, metadata=metadata)
        payload = command_payload(text)
        return InboundMessage(**base, kind="callback" if payload else "text", text=text, payload=payload,
                              metadata=metadata)
    if kind == "event":
        event = fields.get("Event", "").lower()
        if event == "subscribe":
            return InboundMessage(**base, kind="command", text="/start", metadata=metadata)
        if event == "click" and fields.get("EventKey"):  # a custom menu item: its key is a payload
            return InboundMessage(**base, kind="callback", payload=fields["EventKey"], metadata=metadata)
    if kind == "location" and fields.get("Label"):
        metadata["location"] = {"latitude": fields.get("Location_X"), "longitude": fields.get("Location_Y"),
                                "label": fields.get("Label")}
        return InboundMessage(**base, kind="text", text=fields["Label"], metadata=metadata)
    if kind in ("image", "voice", "video", "shortvideo"):
        metadata["media"] = {"type": kind, **{k: fields[k] for k in ("MediaId", "PicUrl", "Format", "Recognition")
                                              if fields.get(k)}}
        if kind == "voice" and fields.get("Recognition"):  # WeChat's speech recognition: words to answer
            return InboundMessage(**base, kind="text", text=fields["Recognition"], metadata=metadata)
    return InboundMessage(**base, kind="unsupported", metadata=metadata)


def media_ref(inbound: InboundMessage) -> media.MediaRef | None:
    """A shopper's picture or voice message to fetch for the agent (WeChat's other media are not fetchable)."""
    found = inbound.metadata.get(media.MEDIA_KEY)
    if not isinstance(found, dict) or not found.get("MediaId") or found.get("type") not in ("image", "voice"):
        return None
    kind = str(found["type"])
    return media.MediaRef(channel=CHANNEL, media_key=str(found["MediaId"]), sender_id=inbound.sender_id, kind=kind,
                          mime_type="image/jpeg" if kind == "image" else None)


def texts_of(message: OutboundMessage) -> list[str]:
    """The WeChat texts one reply becomes (buttons as menu links, cards as text, split at 2048 bytes)."""
    return [text for text in as_text(plan(message, CAPABILITIES), CAPABILITIES) if text.strip()]


@dataclass(frozen=True)
class Wire:
    """One WeChat message: a text, an image (by its URL, uploaded when sent) or a news article."""

    kind: Literal["text", "image", "news"]
    text: str = ""
    url: str = ""
    article: ArticlePart | None = None


def card_url_of(settings: WeChatSettings) -> CardUrl | None:
    template = settings.product_url
    if not template:
        return None
    return lambda card: template.replace("{product_id}", str(card.product_id))


def wire_of(message: OutboundMessage, settings: WeChatSettings) -> list[Wire]:
    """The WeChat messages one reply becomes, by the channel contract: texts (menu links, split at 2048 bytes),
    images followed by their caption, product cards as articles when the shop has product pages."""
    wires: list[Wire] = []
    for part in plan(message, CAPABILITIES, card_url=card_url_of(settings)):
        if isinstance(part, ImagePart):
            wires.append(Wire("image", url=part.url))
            wires += [Wire("text", text=t) for t in as_text([TextPart(part.caption, part.buttons)], CAPABILITIES)
                      if t.strip()]
        elif isinstance(part, ArticlePart):
            wires.append(Wire("news", article=part))
        else:
            wires += [Wire("text", text=t) for t in as_text([part], CAPABILITIES) if t.strip()]
    return wires


def news_reply_xml(*, to: str, sender: str, article: ArticlePart, now: int | None = None) -> str:
    return (f"<xml><ToUserName>{cdata(to)}</ToUserName><FromUserName>{cdata(sender)}</FromUserName>"
            f"<CreateTime>{now or int(time.time())}</CreateTime><MsgType>{cdata('news')}</MsgType>"
            f"<ArticleCount>1</ArticleCount><Articles><item><Title>{cdata(article.title)}</Title>"
            f"<Description>{cdata(article.description)}</Description><PicUrl>{cdata(article.image_url)}</PicUrl>"
            f"<Url>{cdata(article.url)}</Url></item></Articles></xml>")


def passive_xml(wire: Wire, *, to: str, sender: str) -> str | None:
    """A first message that can be the passive reply (a text or an article; an image needs an upload first)."""
    if wire.kind == "text":
        return text_reply_xml(to=to, sender=sender, content=wire.text)
    if wire.kind == "news" and wire.article is not None:
        return news_reply_xml(to=to, sender=sender, article=wire.article)
    return None


# ---- WeChat's retries: the same answer again -------------------------------------------------------------

RETRY_WINDOW_SECONDS = 30.0  # WeChat retries a message 3 times, 5 s apart; keep each answer a while longer
PENDING = "\x00pending"
LATER = "success"  # the answer goes (went) by the customer-service API: a retry gets "success"


class PassiveReplies:
    """Per message (sender + MsgId): the passive reply made for it, so WeChat's retry of a message whose answer
    was lost or late gets the same answer (not "success", which would lose it), or "success" when the answer went
    by the customer-service API. In Redis when configured (a retry may reach another process), else in memory."""

    def __init__(self, *, redis_url: str | None = None, ttl_seconds: float = RETRY_WINDOW_SECONDS) -> None:
        self.ttl = ttl_seconds
        self._redis = RedisPubSub(redis_url, name="wechat passive replies") if redis_url else None
        self._memory: dict[str, tuple[str, float]] = {}
        self._changed = asyncio.Condition()

    @staticmethod
    def _key(key: str) -> str:
        return "shoptalk:wechat:passive:" + digest(key)

    def _live(self, key: str) -> str | None:
        now = time.monotonic()
        for stale in [k for k, (_, until) in self._memory.items() if until <= now]:
            del self._memory[stale]
        found = self._memory.get(key)
        return None if found is None else found[0]

    async def begin(self, key: str) -> bool:
        """True for the first delivery of this message; False for WeChat's retry of one already seen."""
        if self._redis is not None:
            return bool(await self._redis.connect().set(self._key(key), PENDING, nx=True, px=int(self.ttl * 1000)))
        if self._live(key) is not None:
            return False
        self._memory[key] = (PENDING, time.monotonic() + self.ttl)
        return True

    async def finish(self, key: str, answer: str) -> None:
        """The answer given to the first delivery: the passive reply's plain XML, or LATER."""
        if self._redis is not None:
            await self._redis.connect().set(self._key(key), answer, px=int(self.ttl * 1000))
            return
        self._memory[key] = (answer, time.monotonic() + self.ttl)
        async with self._changed:
            self._changed.notify_all()

    async def forget(self, key: str) -> None:
        """The first delivery failed before an answer: a retry is handled afresh."""
        if self._redis is not None:
            await self._redis.connect().delete(self._key(key))
            return
        self._memory.pop(key, None)
        async with self._changed:
            self._changed.notify_all()

    async def _get(self, key: str) -> str | None:
        if self._redis is not None:
            value = await self._redis.connect().get(self._key(key))
            return None if value is None else str(value)
        return self._live(key)

    async def answer_of(self, key: str, *, timeout: float) -> str | None:
        """The first delivery's answer, waiting up to `timeout` while it is still being made (None: not made in
        time, or forgotten: the retry must be handled as new)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self._get(key)
            if value != PENDING:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return PENDING
            if self._redis is not None:
                await asyncio.sleep(min(0.05, remaining))
                continue
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()


# ---- the customer-service API ---------------------------------------------------------------------------

@dataclass
class _Token:
    value: str
    expires_at: float


class WeChatChannel:
    """Access token (stable_token, cached until 5 minutes before it expires) and the send.wechat handler."""

    def __init__(self, *, settings: WeChatSettings, database: Database,
                 transport: httpx.AsyncBaseTransport | None = None, redis_url: str | None = None) -> None:
        assert settings.app_id
        assert settings.app_secret
        assert settings.token
        self.settings = settings
        self.database = database
        self.base = settings.api_base.rstrip("/")
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), transport=transport)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        key = settings.encoding_aes_key
        self.crypto = MessageCrypto(key.get_secret_value(), settings.app_id) if key is not None else None
        self.passive = PassiveReplies(redis_url=redis_url)
        self._images: dict[str, tuple[str, float]] = {}  # picture URL -> (media_id, until)

    async def close(self) -> None:
        await self.http.aclose()
        await self.passive.close()

    async def access_token(self, *, stale: str | None = None) -> str:
        """A valid access token; `stale`: the one WeChat just refused (fetched again unless already replaced)."""
        async with self._token_lock:
            token = self._token
            if token is not None and token.value != stale and time.monotonic() < token.expires_at:
                return token.value
            assert self.settings.app_secret is not None
            body = {"grant_type": "client_credential", "appid": self.settings.app_id,
                    "secret": self.settings.app_secret.get_secret_value(), "force_refresh": stale is not None}
            try:
                response = await self.http.post(f"{self.base}/cgi-bin/stable_token", json=body)
                data = response.json()
            except (httpx.TransportError, ValueError) as exc:
                raise DeliveryError(f"wechat token endpoint unreachable: {type(exc).__name__}") from exc
            if not data.get("access_token"):
                code = data.get("errcode")
                raise DeliveryError(f"wechat refused the access token request: {code} {data.get('errmsg')}",
                                    permanent=code in (40013, 40125, 40164))  # bad appid / secret / IP not allowed
            self._token = _Token(str(data["access_token"]),
                                 time.monotonic() + max(60, int(data.get("expires_in", 7200)) - 300))
            return self._token.value

    async def publish_menu(self) -> None:
        """Set the account's custom menu to the shop's main menu in the channel's default language."""
        locale = self.settings.default_locale
        buttons = [{"type": "click", "name": clip(t(locale, key), 16, MENU_NAME_BYTES), "key": payload}
                   for key, payload in MENU]
        await self._call("/cgi-bin/menu/create", {"button": buttons})

    async def send_text(self, to: str, content: str) -> None:
        await self._call("/cgi-bin/message/custom/send",
                         {"touser": to, "msgtype": "text", "text": {"content": content}})

    # ---- the shopper's pictures: GET /cgi-bin/media/get (temporary media, 3 days) ----------------------

    async def fetch_media(self, event: OutboxEvent) -> None:
        """The media.wechat handler: fetch a shopper's picture (or voice) into the media store."""
        await media.fetch_into_store(self.database, event, channel=CHANNEL, max_bytes=self.settings.media_max_bytes,
                                     download=self._media_download)

    async def _media_download(self, media_key: str) -> media.Download:
        data, mime = await self._media_get(media_key)
        return data, mime, ()

    async def _media_get(self, media_key: str) -> tuple[bytes, str | None]:
        limit = self.settings.media_max_bytes
        stale: str | None = None
        for _ in range(2):
            token = await self.access_token(stale=stale)
            try:
                async with self.http.stream("GET", f"{self.base}/cgi-bin/media/get",
                                            params={"access_token": token, "media_id": media_key}) as response:
                    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise DeliveryError(f"the shopper's file is over the limit of {limit} bytes",
                                                permanent=True)
                        chunks.append(chunk)
            except httpx.TransportError as exc:
                raise DeliveryError(f"wechat unreachable: {type(exc).__name__}") from exc
            data = b"".join(chunks)
            if mime not in ("application/json", "text/plain"):
                return data, mime or None
            try:  # WeChat answers errors as JSON
                code = int(json.loads(data).get("errcode", 0) or 0)
                message = json.loads(data).get("errmsg", "")
            except (ValueError, AttributeError):
                return data, mime
            if code in TOKEN_ERRORS and stale is None:
                stale = token
                continue
            text = f"wechat media/get error {code}: {message}"
            if code in RETRY_ERRORS:
                raise DeliveryError(text, retry_after=RETRY_ERRORS[code])
            raise DeliveryError(text, permanent=True)  # 40007: unknown or expired media id
        raise DeliveryError("wechat refused a fresh access token")

    async def _call(self, path: str, body: dict[str, Any]) -> None:
        """POST to WeChat's API with the access token (refreshed once when WeChat calls it stale)."""
        stale: str | None = None
        for _ in range(2):
            token = await self.access_token(stale=stale)
            try:
                response = await self.http.post(f"{self.base}{path}", params={"access_token": token}, json=body)
                data = response.json()
            except (httpx.TransportError, ValueError) as exc:
                raise DeliveryError(f"wechat unreachable: {type(exc).__name__}") from exc
            code = int(data.get("errcode", 0) or 0)
            if code == 0:
                return
            if code in TOKEN_ERRORS and stale is None:
                stale = token
                continue
            text = f"wechat error {code}: {data.get('errmsg', '')}"
            if code in RETRY_ERRORS:
                raise DeliveryError(text, retry_after=RETRY_ERRORS[code])
            if code == 45015:
                raise DeliveryError(f"{text}; the shopper has not written in 48 hours", permanent=True)
            raise DeliveryError(text, permanent=True)
        raise DeliveryError("wechat refused a fresh access token")

    async def send(self, event: OutboxEvent, *, progress: dict[str, int]) -> None:
        """Send one stored reply by the customer-service API; parts the passive reply or an earlier attempt of
        this process carried are not sent again."""
        message = OutboundMessage.model_validate(event.payload)
        wires = wire_of(message, self.settings)
        done = max(progress.get(event.idempotency_key, 0), int((message.custom or {}).get(SENT_PARTS_KEY, 0)))
        for index, wire in enumerate(wires[done:], start=done):
            if wire.kind == "image":
                media_id = await self.image_media_id(wire.url)
                await self._call("/cgi-bin/message/custom/send",
                                 {"touser": message.recipient_id, "msgtype": "image", "image": {"media_id": media_id}})
            elif wire.kind == "news" and wire.article is not None:
                article = wire.article
                await self._call("/cgi-bin/message/custom/send", {
                    "touser": message.recipient_id, "msgtype": "news", "news": {"articles": [{
                        "title": article.title, "description": article.description, "url": article.url,
                        "picurl": article.image_url}]}})
            else:
                await self.send_text(message.recipient_id, wire.text)
            progress[event.idempotency_key] = index + 1
        progress.pop(event.idempotency_key, None)

    async def image_media_id(self, url: str) -> str:
        """The media_id of the picture at `url`, uploaded once (temporary media) and cached for 2.5 days."""
        cached = self._images.get(url)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            async with self.http.stream("GET", url) as picture:
                if picture.status_code >= 400:
                    raise DeliveryError(f"product picture {url}: HTTP {picture.status_code}",
                                        permanent=picture.status_code in (403, 404, 410))
                kind = picture.headers.get("content-type", "image/jpeg").split(";")[0].strip()
                data = b""
                async for chunk in picture.aiter_bytes():
                    data += chunk
                    if len(data) > IMAGE_UPLOAD_BYTES:
                        raise DeliveryError(f"product picture {url} is over WeChat's 10 MB", permanent=True)
        except httpx.TransportError as exc:
            raise DeliveryError(f"product picture {url} unreachable: {type(exc).__name__}") from exc
        stale: str | None = None
        for _ in range(2):
            token = await self.access_token(stale=stale)
            try:
                response = await self.http.post(f"{self.base}/cgi-bin/media/upload",
                                                 params={"access_token": token, "type": "image"},
                                                 files={"media": ("picture." + kind.split("/")[-1], data, kind)})
                answer = response.json()
            except (httpx.TransportError, ValueError) as exc:
                raise DeliveryError(f"wechat unreachable: {type(exc).__name__}") from exc
            if answer.get("media_id"):
                self._images[url] = (str(answer["media_id"]), time.monotonic() + IMAGE_MEDIA_SECONDS)
                return str(answer["media_id"])
            code = int(answer.get("errcode", 0) or 0)
            if code in TOKEN_ERRORS and stale is None:
                stale = token
                continue
            text = f"wechat media/upload error {code}: {answer.get('errmsg', '')}"
            if code in RETRY_ERRORS:
                raise DeliveryError(text, retry_after=RETRY_ERRORS[code])
            raise DeliveryError(text, permanent=True)
        raise DeliveryError("wechat refused a fresh access token")

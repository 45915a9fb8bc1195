"""WhatsApp Business Platform (Cloud API): signed webhooks -> InboundMessage, replies -> Graph API messages.

Inbound: the webhook's GET verification (hub.mode / hub.verify_token / hub.challenge) and POSTs signed with
X-Hub-Signature-256 (HMAC-SHA256 of the raw body under the app secret). Text, button and list replies, location
and media (the media id and its details kept for the agent) become InboundMessages; anything else (stickers,
contact cards, reactions) is an "unsupported" message whose raw event is kept. Delivery statuses are receipts.

Outbound (the send.whatsapp outbox handler): replies are planned by the channel contract (up to 3 reply
buttons, lists of up to 10 rows, images with captions, texts split at 4096 characters) and posted to Graph API.
Outside the 24-hour customer-service window only the shop's registered templates may go; anything else is
dead-lettered with that reason. Graph API error codes become retries (rate limits, outages) or dead letters.
Sends are paced per number and per shopper (bot.channels.pacing). Shoppers' files are fetched in the background
(media.whatsapp outbox topic) into the media store (bot.channels.media).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import command_payload, media, repository
from bot.channels.capabilities import ArticlePart, Capabilities, ImagePart, ListPart, Part, plan
from bot.channels.pacing import Bucket, Entry, PaceExceeded, Pacer
from bot.channels.templates import Template
from bot.channels.templates import registered as registered_templates
from bot.conversations import service as conversations
from bot.conversations.models import Conversation
from bot.messages import Button, InboundMessage, OutboundMessage
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import DeliveryError, OutboxEvent, enqueue
from kit.settings import WhatsAppSettings

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
BUTTON_ID_LIMIT = 256
ROW_ID_LIMIT = 200
TOKEN_PREFIX = "~"  # an id starting with this is a stored payload's token, never a raw payload
CAPABILITIES = Capabilities(max_text=4096, max_buttons=3, button_title=20, link_buttons=False, max_list_rows=10,
                            list_row_title=24, list_row_description=72, list_label=20, interactive_text=1024,
                            images=True, max_caption=1024, buttons_on_images=True, text_links="url")
TEMPLATE_KEY = "whatsapp_template"  # OutboundMessage.custom[TEMPLATE_KEY] = {"name", "language"?, "parameters"?}

# Graph API error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RETRY_AFTER = {130429: 2.0,  # throughput of the business number reached
               131056: 6.0,  # pair rate limit: too many messages to this one shopper
               131048: 60.0,  # spam rate limit
               4: 60.0, 80007: 60.0,  # app / business account rate limits
               1: None, 2: None, 131000: None, 131016: None, 133004: None}  # outages: the usual backoff
WINDOW_CLOSED = 131047
PAUSES_NUMBER = {130429, 80007, 4}  # Graph says the number (or the account) sends too fast: everyone waits
PAUSES_PAIR = {131056}  # too fast to this one shopper
MAX_PACE_WAIT = 5.0
PACE_MARGIN = 0.9  # a longer wait for a token gives the event back to the outbox with that delay


# ---- webhook verification -------------------------------------------------------------------------------

def subscription_challenge(params: dict[str, str], verify_token: str) -> str | None:
    """hub.challenge when the GET is Meta's subscription check with our verify token; else None."""
    given = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(app_secret: str, header: str, body: bytes) -> bool:
    return hmac.compare_digest(signature(app_secret, body).encode(), header.strip().encode())


# ---- inbound --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusReport:
    external_id: str
    status: str
    recipient_id: str | None
    error: str | None


@dataclass
class WebhookBatch:
    messages: list[InboundMessage]
    statuses: list[StatusReport]


def _location_text(location: dict[str, Any]) -> str | None:
    words = [str(location[k]) for k in ("name", "address") if location.get(k)]
    return ", ".join(words) or None


def inbound_from(message: dict[str, Any], names: dict[str, str]) -> InboundMessage:
    """One Cloud API message object as an InboundMessage; the raw object is kept in its metadata."""
    sender = str(message.get("from") or "")
    kind = str(message.get("type") or "unknown")
    fields: dict[str, Any] = {"channel": CHANNEL, "sender_id": sender, "message_id": str(message.get("id") or ""),
                              "sender_name": names.get(sender), "received_at": utcnow()}
    metadata: dict[str, Any] = {"whatsapp_type": kind, "whatsapp": message}
    if isinstance(message.get("context"), dict):
        metadata["reply_to"] = message["context"].get("id")
    if kind == "text":
        text = str((message.get("text") or {}).get("body") or "")
        payload = command_payload(text)
        return InboundMessage(**fields, kind="callback" if payload else "text", text=text, payload=payload,
                              metadata=metadata)
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        if reply.get("id"):
            return InboundMessage(**fields, kind="callback", text=reply.get("title"), payload=str(reply["id"]),
                                  metadata=metadata)
    if kind == "button":  # a template's quick-reply button
        pressed = message.get("button") or {}
        if pressed.get("payload") or pressed.get("text"):
            return InboundMessage(**fields, kind="callback", text=pressed.get("text"),
                                  payload=str(pressed.get("payload") or pressed.get("text")), metadata=metadata)
    if kind == "location":
        location = message.get("location") or {}
        metadata["location"] = {k: location.get(k) for k in ("latitude", "longitude", "name", "address")}
        place = _location_text(location)  # a named place reads like "ship to Berlin": the NLU sees it
        if place:
            return InboundMessage(**fields, kind="text", text=place, metadata=metadata)
    if kind in ("image", "video", "audio", "document"):
        media = message.get(kind) or {}
        metadata["media"] = {"type": kind, **{k: media.get(k) for k in ("id", "mime_type", "sha256", "caption",
                                                                          "filename", "link") if media.get(k)}}
        if media.get("caption"):  # the shopper's words about the picture are a message the bot can answer
            return InboundMessage(**fields, kind="text", text=str(media["caption"]), metadata=metadata)
    return InboundMessage(**fields, kind="unsupported", metadata=metadata)


def parse_webhook(data: Any) -> WebhookBatch:
    """The messages and status reports of one webhook POST (other fields and objects are ignored)."""
    batch = WebhookBatch([], [])
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account webhook")
    for entry in data.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            names = {str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                     for c in value.get("contacts") or [] if isinstance(c, dict)}
            for message in value.get("messages") or []:
                if isinstance(message, dict) and message.get("from") and message.get("id"):
                    batch.messages.append(inbound_from(message, names))
            for status in value.get("statuses") or []:
                if isinstance(status, dict) and status.get("id") and status.get("status"):
                    errors = status.get("errors") or []
                    error = "; ".join(f"{e.get('code')}: {e.get('title') or e.get('message')}"
                                      for e in errors if isinstance(e, dict)) or None
                    batch.statuses.append(StatusReport(str(status["id"]), str(status["status"]),
                                                       status.get("recipient_id"), error))
    return batch


async def resolve_payload(database: Database, inbound: InboundMessage) -> InboundMessage:
    """A pressed button whose id is a stored payload's token, with its payload (unknown tokens stay as sent)."""
    if inbound.kind != "callback" or not (inbound.payload or "").startswith(TOKEN_PREFIX):
        return inbound
    async with database.unit_of_work() as session:
        payload = await repository.callback_payload(session, token=(inbound.payload or "")[1:])
    if payload is None:
        return inbound.model_copy(update={"metadata": {**inbound.metadata, "unknown_callback": True}})
    return inbound.model_copy(update={"payload": payload})


# ---- rendering ------------------------------------------------------------------------------------------

def payload_token(payload: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(hashlib.sha256(payload.encode()).digest()[:12]).decode()


def _id_for(payload: str, limit: int, tokens: dict[str, str]) -> str:
    if len(payload) <= limit and not payload.startswith(TOKEN_PREFIX):
        return payload
    token = payload_token(payload)
    tokens[token[1:]] = payload
    return token


def _reply_buttons(buttons: tuple[Button, ...], tokens: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": _id_for(b.payload or b.title, BUTTON_ID_LIMIT, tokens),
                                        "title": b.title}} for b in buttons]


def graph_message(part: Part, to: str, tokens: dict[str, str]) -> dict[str, Any]:
    """One planned part as a Cloud API /messages body; long payloads are put in `tokens` (token -> payload)."""
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if isinstance(part, ListPart):
        rows = [{"id": _id_for(r.payload, ROW_ID_LIMIT, tokens), "title": r.title,
                 **({"description": r.description} if r.description else {})} for r in part.rows]
        return {**base, "type": "interactive", "interactive": {
            "type": "list", "body": {"text": part.text or "…"},
            "action": {"button": part.label, "sections": [{"rows": rows}]}}}
    if isinstance(part, ImagePart):
        if part.buttons:
            return {**base, "type": "interactive", "interactive": {
                "type": "button", "header": {"type": "image", "image": {"link": part.url}},
                "body": {"text": part.caption or "…"}, "action": {"buttons": _reply_buttons(part.buttons, tokens)}}}
        return {**base, "type": "image", "image": {"link": part.url, "caption": part.caption}}
    if isinstance(part, ArticlePart):  # not declared on WhatsApp (no articles); a link preview if one came
        body = "\n".join(x for x in (part.title, part.description, part.url) if x)
        return {**base, "type": "text", "text": {"preview_url": True, "body": body}}
    if part.buttons:
        return {**base, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": part.text or "…"},
            "action": {"buttons": _reply_buttons(part.buttons, tokens)}}}
    # Payment and product links are in the text: WhatsApp shows the first one's preview.
    return {**base, "type": "text", "text": {"preview_url": "https://" in part.text, "body": part.text}}


def template_message(template: dict[str, Any], to: str, registered: dict[str, Template]) -> dict[str, Any]:
    name = str(template.get("name") or "")
    found = registered.get(name)
    if found is None:
        raise DeliveryError(f"whatsapp template {name!r} is not registered with the shop", permanent=True)
    parameters = template.get("parameters") or []
    if not found.seeded and len(parameters) != found.parameter_count:
        raise DeliveryError(f"whatsapp template {name!r} takes {found.parameter_count} parameters, "
                            f"{len(parameters)} given", permanent=True)
    body: dict[str, Any] = {"name": name, "language": {"code": template.get("language") or found.language}}
    if parameters:
        body["components"] = [{"type": "body", "parameters": [{"type": "text", "text": str(p)} for p in parameters]}]
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template",
            "template": body}


def render(message: OutboundMessage, registered: dict[str, Template], tokens: dict[str, str]) -> list[dict[str, Any]]:
    """The Graph API messages one reply becomes (a template reply is that template alone)."""
    template = (message.custom or {}).get(TEMPLATE_KEY)
    if isinstance(template, dict):
        return [template_message(template, message.recipient_id, registered)]
    return [graph_message(part, message.recipient_id, tokens) for part in plan(message, CAPABILITIES)]


# ---- the customer-service window -----------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    open: bool
    closes_at: datetime | None
    templates: list[str]


def window_of(last_inbound: datetime | None, settings: WhatsAppSettings, *, now: datetime | None = None,
              templates: list[str] | None = None) -> Window:
    """Whether free-form messages may go to the shopper: within `window_hours` of their last message."""
    closes = last_inbound + timedelta(hours=settings.window_hours) if last_inbound is not None else None
    is_open = closes is not None and (now or utcnow()) < closes
    return Window(is_open, closes, sorted(settings.templates) if templates is None else templates)



async def reply_window(session: AsyncSession, *, sender_id: str, settings: WhatsAppSettings) -> Window:
    """The shopper's 24-hour window as the agent console shows it, with the templates the merchant registered."""
    last = await repository.last_inbound_at(session, channel=CHANNEL, sender_id=sender_id)
    names = list(await registered_templates(session, seed=settings.templates))
    return window_of(last, settings, templates=names)

# ---- sending --------------------------------------------------------------------------------------------

def _error_code(response: httpx.Response) -> int | None:
    try:
        code = (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _graph_error(response: httpx.Response) -> DeliveryError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    details = ((error.get("error_data") or {}).get("details") or error.get("message") or response.reason_phrase)
    text = f"whatsapp error {code} (HTTP {response.status_code}): {details}"
    if code == WINDOW_CLOSED:
        return DeliveryError(f"{text}; the 24-hour window is closed: send a registered template", permanent=True)
    if code in RETRY_AFTER:
        return DeliveryError(text, retry_after=RETRY_AFTER[code])
    if response.status_code >= 500 or response.status_code == 429:
        return DeliveryError(text)
    return DeliveryError(text, permanent=True)  # our request or the account is wrong: retrying cannot help


class WhatsAppChannel:
    """The sender behind the send.whatsapp outbox topic (one httpx client per process)."""

    def __init__(self, *, settings: WhatsAppSettings, database: Database,
                 transport: httpx.AsyncBaseTransport | None = None, redis_url: str | None = None) -> None:
        assert settings.phone_number_id
        assert settings.access_token
        self.settings = settings
        self.database = database
        self.pacer = Pacer(redis_url=redis_url)
        # 10 % under Graph's rates and half its bursts: requests leave paced but arrive with jitter (a new
        # connection's first request is late, the next on a warm one early), which the other half absorbs.
        self.number_bucket = Bucket(settings.messages_per_second * PACE_MARGIN,
                                    max(1.0, settings.messages_per_second / 2))
        self.pair_bucket = Bucket(settings.pair_messages_per_second * PACE_MARGIN,
                                  max(1.0, float(settings.pair_burst // 2)))
        self.url = f"{settings.api_base.rstrip('/')}/{settings.api_version}/{settings.phone_number_id}/messages"
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0), transport=transport, headers={
            "Authorization": f"Bearer {settings.access_token.get_secret_value()}"})

    async def close(self) -> None:
        await self.http.aclose()
        await self.pacer.close()

    async def templates(self) -> dict[str, Template]:
        """The templates the merchant registered (and the setting's seed)."""
        async with self.database.sessions() as session:
            return await registered_templates(session, seed=self.settings.templates)

    async def window(self, sender_id: str) -> Window:
        async with self.database.sessions() as session:
            last = await repository.last_inbound_at(session, channel=CHANNEL, sender_id=sender_id)
            names = list(await registered_templates(session, seed=self.settings.templates))
        return window_of(last, self.settings, templates=names)

    async def send(self, event: OutboxEvent, *, progress: dict[str, int]) -> None:
        """Send one stored reply; parts an earlier attempt of this process sent are not sent again."""
        message = OutboundMessage.model_validate(event.payload)
        if not message.recipient_id.isdigit():
            raise DeliveryError(f"not a WhatsApp number: {message.recipient_id!r}", permanent=True)
        is_template = isinstance((message.custom or {}).get(TEMPLATE_KEY), dict)
        registered = await self.templates()
        if not is_template and not (await self.window(message.recipient_id)).open:
            raise DeliveryError("whatsapp 24-hour window closed: only a registered template may be sent "
                                f"(templates: {', '.join(registered) or 'none registered'})", permanent=True)
        tokens: dict[str, str] = {}
        bodies = render(message, registered, tokens)
        if tokens:
            async with self.database.unit_of_work() as session:
                for token, payload in tokens.items():
                    await repository.save_callback_token(session, token=token, payload=payload)
        done = progress.get(event.idempotency_key, 0)
        accepted: list[str] = []
        try:
            for index, body in enumerate(bodies[done:], start=done):
                accepted.append(await self._post(body))
                progress[event.idempotency_key] = index + 1
        finally:  # the parts WhatsApp took, in one write, also when a later part failed
            if accepted:
                async with self.database.unit_of_work() as session:
                    for wamid in accepted:
                        await repository.record_receipt(session, channel=CHANNEL, external_id=wamid,
                                                        status="accepted", message_id=message.message_id,
                                                        recipient_id=message.recipient_id)
        progress.pop(event.idempotency_key, None)

    # ---- the shopper's media: GET /{media-id} -> a short-lived URL, then GET it with the token ----------

    async def fetch_media(self, event: OutboxEvent) -> None:
        """The media.whatsapp handler: fetch a shopper's file into the media store (size and sha256 checked; an
        expired download URL is asked for again; Graph errors retry or dead-letter like sends)."""
        await media.fetch_into_store(self.database, event, channel=CHANNEL, max_bytes=self.settings.media_max_bytes,
                                     download=self._media_download)

    async def _media_download(self, media_key: str) -> media.Download:
        info, data = await self._download_media(media_key)
        return data, info.get("mime_type"), [info.get("sha256")]

    async def _download_media(self, media_key: str) -> tuple[dict[str, Any], bytes]:
        limit = self.settings.media_max_bytes
        for _ in range(2):  # Graph's download URLs expire after minutes: an expired one is asked for again
            try:
                response = await self.http.get(f"{self.settings.api_base.rstrip('/')}/{self.settings.api_version}/"
                                               f"{media_key}")
            except httpx.TransportError as exc:
                raise DeliveryError(f"whatsapp unreachable: {type(exc).__name__}") from exc
            if response.status_code >= 400:
                raise _graph_error(response)
            info = response.json()
            if int(info.get("file_size") or 0) > limit:
                raise DeliveryError(f"the shopper's file is {info.get('file_size')} bytes; the limit is {limit}",
                                    permanent=True)
            try:
                async with self.http.stream("GET", str(info["url"])) as download:
                    if download.status_code in (401, 403, 404, 410):
                        continue
                    if download.status_code >= 400:
                        raise DeliveryError(f"whatsapp media download: HTTP {download.status_code}")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in download.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise DeliveryError(f"the shopper's file is over the limit of {limit} bytes",
                                                permanent=True)
                        chunks.append(chunk)
            except (httpx.TransportError, KeyError) as exc:
                raise DeliveryError(f"whatsapp media download failed: {type(exc).__name__}") from exc
            return info, b"".join(chunks)
        raise DeliveryError("whatsapp media URL expired twice in a row")

    def _buckets(self, to: str) -> list[Entry]:
        number = str(self.settings.phone_number_id)
        return [("whatsapp-pair", (number, to), self.pair_bucket), ("whatsapp-number", (number,), self.number_bucket)]

    async def _pace(self, to: str) -> None:
        """Wait for this number's and this pair's tokens (or give the event back when the wait is long)."""
        try:
            await self.pacer.acquire(self._buckets(to), max_wait=MAX_PACE_WAIT)
        except PaceExceeded as exc:
            raise DeliveryError(f"whatsapp pacing: no capacity for {exc.wait:.1f} s", retry_after=exc.wait) from exc

    async def _post(self, body: dict[str, Any]) -> str:
        to = str(body.get("to") or "")
        await self._pace(to)
        try:
            response = await self.http.post(self.url, json=body)
        except httpx.TransportError as exc:
            raise DeliveryError(f"whatsapp unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            error = _graph_error(response)
            code = _error_code(response)
            if code in PAUSES_NUMBER or code in PAUSES_PAIR:  # every sender of this process and the others waits
                pair, number = self._buckets(to)
                await self.pacer.pause([pair if code in PAUSES_PAIR else number], error.retry_after or 1.0)
            raise error
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DeliveryError("whatsapp answered without a message id") from exc


async def record_statuses(session: AsyncSession, statuses: list[StatusReport]) -> None:
    if statuses:
        for report in statuses:
            await repository.record_receipt(session, channel=CHANNEL, external_id=report.external_id,
                                            status=report.status, recipient_id=report.recipient_id,
                                            error=report.error)


async def note_inbound(session: AsyncSession, messages: list[InboundMessage]) -> bool:
    """The shoppers' window opens (again) with each message they send; their files are queued for fetching
    (True when one was)."""
    queued = False
    for inbound in messages:
        await repository.touch_contact(session, channel=CHANNEL, sender_id=inbound.sender_id,
                                       at=inbound.received_at or utcnow())
        found = inbound.metadata.get(media.MEDIA_KEY)
        if isinstance(found, dict) and found.get("id"):
            queued |= await media.register(session, media.MediaRef(
                channel=CHANNEL, media_key=str(found["id"]), sender_id=inbound.sender_id,
                kind=str(found.get("type") or "file"), mime_type=found.get("mime_type"),
                filename=found.get("filename"), declared_sha256=found.get("sha256")))
    return queued


async def queue_template(session: AsyncSession, *, conversation: Conversation, name: str,
                         parameters: list[str]) -> int:
    """Store a template message as the conversation's reply and queue it on send.whatsapp; returns its id."""
    reply = OutboundMessage(channel=CHANNEL, recipient_id=conversation.sender_id,
                            text=" | ".join([f"[{name}]", *parameters]), author="agent",
                            custom={TEMPLATE_KEY: {"name": name, "parameters": parameters}})
    saved = await conversations.record_outbound(session, conversation=conversation, reply=reply, in_reply_to=None)
    assert saved.message_id is not None
    await enqueue(session, topic=f"send.{CHANNEL}", payload=saved.model_dump(mode="json"),
                  idempotency_key=f"msg:{saved.message_id}")
    return saved.message_id

"""The Rasa-compatible REST channel: `{"sender", "message", "metadata"?}` in, Rasa's reply list out."""
from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from pydantic import BaseModel, Field

from bot.channels import command_payload
from bot.channels.capabilities import Capabilities
from bot.messages import InboundMessage, OutboundMessage
from kit.clock import utcnow

MAX_ID_CHARS = 200
SIGNATURE_HEADER = "X-ShopTalk-Signature"
# Rasa clients get buttons and cards (custom.cards) as data and draw them themselves (nothing degraded).
CAPABILITIES = Capabilities(max_text=100_000, max_buttons=100, button_title=200, images=True, max_caption=100_000,
                            buttons_on_images=True, text_links="url", cards=True)


class SignatureError(Exception):
    """Why a signature header was refused: `code` is the problem code the client sees."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-ShopTalk-Signature value for `body` sent at `timestamp` (unix seconds): Stripe's scheme,
    `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def check_signature(secret: str, header: str, body: bytes, *, now: float, tolerance_seconds: int) -> None:
    """Accept `header` if one of its v1 signatures is `body`'s at its timestamp and that timestamp is within
    `tolerance_seconds` of `now` (so a captured request cannot be replayed later); else SignatureError."""
    timestamp: int | None = None
    given: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            given.append(value.strip())
    if timestamp is None or not given:
        raise SignatureError("rest_signature_malformed",
                             f"{SIGNATURE_HEADER} must be 't=<unix seconds>,v1=<hex HMAC-SHA256>'.")
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError("rest_signature_expired",
                             f"The signature's timestamp is more than {tolerance_seconds} s away from now.")
    expected = sign(secret, body, timestamp).partition(",v1=")[2].encode()
    # Each candidate compared in constant time, all of them: the time taken tells nothing about a near miss.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in given]
    if not any(matches):
        raise SignatureError("rest_signature_invalid", "The signature does not match the request body.")


class RestMessageIn(BaseModel):
    sender: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The shopper's id in your system.")
    message: str = Field(max_length=100_000, description="What the shopper wrote, or a button payload.")
    metadata: dict[str, Any] | None = None


class RestButton(BaseModel):
    title: str
    payload: str | None = None
    url: str | None = None


class RestReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[RestButton] | None = None
    custom: dict[str, Any] | None = None
    message_id: int | None = Field(default=None, description="Our stored id of this reply.")


def to_inbound(body: RestMessageIn) -> InboundMessage:
    metadata = dict(body.metadata or {})
    given = metadata.get("message_id")
    message_id = str(given)[:MAX_ID_CHARS] if given not in (None, "") else uuid.uuid4().hex
    text = body.message  # the engine reads the first max_message_chars and tells the shopper so
    locale = metadata.get("locale")
    # Rasa clients send a pressed button's payload as the message; the engine recognises its own payloads
    # in text, and a client may also say so explicitly with metadata {"payload": true}.
    payload = text.strip() if metadata.get("payload") else command_payload(text)
    return InboundMessage(channel="rest", sender_id=body.sender, message_id=message_id,
                          kind="callback" if payload else "text", text=text, payload=payload,
                          locale_hint=str(locale) if isinstance(locale, str) else None,
                          metadata={k: v for k, v in metadata.items() if k != "message_id"}, received_at=utcnow())


def to_rasa(reply: OutboundMessage) -> RestReply:
    buttons = [RestButton(title=b.title, payload=b.payload, url=b.url) for b in reply.buttons] or None
    custom: dict[str, Any] = dict(reply.custom or {})
    if reply.cards:
        custom["cards"] = [card.model_dump(mode="json") for card in reply.cards]
    return RestReply(recipient_id=reply.recipient_id, text=reply.text, buttons=buttons, custom=custom or None,
                     message_id=reply.message_id)

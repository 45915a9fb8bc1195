"""The Rasa-compatible REST channel: `{"sender", "message", "metadata"?}` in, Rasa's reply list out."""
from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from bot.channels import command_payload
from bot.messages import InboundMessage, OutboundMessage
from kit.clock import utcnow

MAX_ID_CHARS = 200


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

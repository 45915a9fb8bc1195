"""The channel-neutral message shapes that flow between channels and the conversation engine."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

ChannelName = Literal["telegram", "webchat", "rest", "whatsapp", "wechat"]
InboundKind = Literal["text", "callback", "unsupported", "edited", "command"]


class InboundMessage(BaseModel):
    """What a channel hands the engine after verifying, de-duplicating and normalising an update."""

    channel: ChannelName
    sender_id: str = Field(description="The shopper's id on that channel (Telegram user id, web chat session).")
    message_id: str = Field(description="The channel's id of this message; unique within its conversation.")
    kind: InboundKind = "text"
    text: str | None = None
    payload: str | None = Field(default=None, description="Button or callback payload, e.g. 'cart:add:KET-1'.")
    locale_hint: str | None = Field(default=None, description="Language the channel reports, e.g. 'zh-hans'.")
    sender_name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime | None = None

    @field_validator("sender_id", "message_id", "text", "payload", "locale_hint", "sender_name", "metadata",
                     mode="before")
    @classmethod
    def _without_nul(cls, value: Any) -> Any:
        # NUL is stripped, not refused: it carries nothing a shopper meant, and PostgreSQL refuses it in text.
        return _strip_nul(value)


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


class Button(BaseModel):
    title: str
    payload: str | None = None
    url: str | None = None


class ProductCard(BaseModel):
    sku: str
    product_id: int
    title: str
    subtitle: str | None = None
    price_text: str | None = None
    image_url: str | None = None
    buttons: list[Button] = Field(default_factory=list)


class OutboundMessage(BaseModel):
    """One reply: text plus optional buttons and product cards; channels render what they can."""

    channel: ChannelName
    recipient_id: str
    text: str
    buttons: list[Button] = Field(default_factory=list)
    cards: list[ProductCard] = Field(default_factory=list)
    custom: dict[str, Any] | None = None
    conversation_id: int | None = None
    message_id: int | None = Field(default=None, description="Our stored message id (idempotency for sending).")
    author: Literal["bot", "agent", "system"] = "bot"
    locale: str | None = Field(default=None, description="The conversation's language (for channel labels).")

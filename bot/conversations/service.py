"""Conversation rules: one conversation per channel identity, messages stored raw with their NLU result."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot.conversations.models import Conversation, ConversationMessage, VerificationAttempt
from bot.conversations.repository import ConversationRepository, FailedProofs
from bot.messages import Button, InboundMessage, OutboundMessage, ProductCard
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound

MODES = ("bot", "human")


class ConversationNotFound(NotFound):
    code = "conversation_not_found"
    title = "Conversation not found"


class StoredMessage(BaseModel):
    """One message of a conversation as a chat window shows it."""

    id: int
    conversation_id: int
    direction: Literal["in", "out"]
    author: str
    kind: str
    text: str | None
    payload: str | None = None
    buttons: list[Button] = Field(default_factory=list)
    cards: list[ProductCard] = Field(default_factory=list)
    custom: dict[str, Any] | None = None
    created_at: datetime


async def held_by_person(session: AsyncSession, *, channel: str, sender_id: str) -> bool:
    """True while a person handles the sender's conversation (a cheap unlocked read, before the turn's lock)."""
    return await ConversationRepository(session).mode_by_sender(channel, sender_id) == "human"


async def get_or_create_conversation(session: AsyncSession, *, channel: str, sender_id: str,
                                     lock: bool = False) -> Conversation:
    """The conversation of this channel identity, created on first contact.

    `lock`: hold it for this transaction, so one message of a conversation is handled at a time (the cart and
    the question in flight are not lost): a row lock on PostgreSQL, SQLite's write lock there."""
    repo = ConversationRepository(session)
    conversation = await repo.by_sender(channel, sender_id, lock=lock)
    if conversation is not None:
        return conversation
    return await _create_conversation(repo, channel=channel, sender_id=sender_id, lock=lock)


async def lock_for_inbound(session: AsyncSession, *, inbound: InboundMessage) -> tuple[Conversation, int | None]:
    """The inbound's conversation, held for this transaction as `get_or_create_conversation(lock=True)` holds it,
    and the id of its message stored before under the same message_id: a repeat delivery (else None). A repeat
    is a repeat only within one conversation: another sender's message with the same id is a new message.

    One statement for a known conversation (the repeat check rides along); two more on first contact."""
    repo = ConversationRepository(session)
    conversation, seen = await repo.by_sender_with_seen(inbound.channel, inbound.sender_id, inbound.message_id)
    if conversation is not None:
        return conversation, seen
    conversation = await _create_conversation(repo, channel=inbound.channel, sender_id=inbound.sender_id, lock=True)
    # Two first messages raced and the other created the conversation: it may have stored this one too.
    earlier = await repo.inbound_by_external(conversation.id, inbound.message_id)
    return conversation, earlier.id if earlier is not None else None


async def _create_conversation(repo: ConversationRepository, *, channel: str, sender_id: str,
                               lock: bool) -> Conversation:
    session = repo.session
    now = utcnow()
    values: dict[str, Any] = {
        "channel": channel, "sender_id": sender_id, "shopper_id": None, "locale": None, "country": None,
        "currency": None, "email": None, "postcode": None, "mode": "bot", "queue": None, "cart": [],
        "last_products": [], "last_search": None, "pending": None, "verified_orders": [], "created_at": now,
        "updated_at": now}
    # One `INSERT ... ON CONFLICT DO NOTHING RETURNING id`, no savepoint: the new row is this transaction's
    # until it commits (so it is held as a lock would hold it).
    new_id = await repo.insert_conversation(values)
    if new_id is None:
        # Two first messages raced; the other one created it (the insert waited for it to commit).
        found = await repo.by_sender(channel, sender_id, lock=lock)
        assert found is not None
        return found
    conversation = Conversation(id=new_id, **values)
    make_transient_to_detached(conversation)  # the row exists: later changes are UPDATEs
    session.add(conversation)
    return conversation


async def get_conversation(session: AsyncSession, *, conversation_id: int) -> Conversation:
    conversation = await ConversationRepository(session).by_id(conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"No conversation {conversation_id}.")
    return conversation


async def find_inbound(session: AsyncSession, *, conversation_id: int,
                       external_id: str) -> ConversationMessage | None:
    """The conversation's inbound message stored under `external_id` (the channel's message id), if any."""
    return await ConversationRepository(session).inbound_by_external(conversation_id, external_id)


async def record_inbound(session: AsyncSession, *, conversation: Conversation, inbound: InboundMessage,
                         nlu: dict[str, Any] | None = None) -> ConversationMessage | None:
    """Store the shopper's message raw; None when this conversation stored its message_id before.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (no savepoint, no prior lookup): a duplicate delivery
    is simply the insert that returned nothing."""
    values = _inbound_values(conversation, inbound, nlu)
    new_id = await ConversationRepository(session).insert_inbound(values)
    if new_id is None:
        return None
    message = ConversationMessage(id=new_id, **values)
    make_transient_to_detached(message)  # the row exists: later changes (its NLU record) are UPDATEs
    session.add(message)
    return message


def add_inbound(session: AsyncSession, *, conversation: Conversation, inbound: InboundMessage) -> ConversationMessage:
    """The shopper's message as a new row of this transaction, written by the session's next flush: the turn
    sets its NLU record first, so the message costs one INSERT, not an INSERT and an UPDATE. The caller has
    checked for a repeat delivery (`lock_for_inbound`); a repeat stored meanwhile fails that INSERT with the
    (conversation_id, external_id) unique constraint's IntegrityError."""
    message = ConversationMessage(**_inbound_values(conversation, inbound, None))
    session.add(message)
    return message


def _inbound_values(conversation: Conversation, inbound: InboundMessage, nlu: dict[str, Any] | None) -> dict[str, Any]:
    return {"conversation_id": conversation.id, "direction": "in", "channel": inbound.channel,
            "external_id": inbound.message_id, "kind": inbound.kind, "author": "shopper", "text": inbound.text,
            "payload": inbound.payload, "nlu": nlu,
            "content": {"metadata": inbound.metadata} if inbound.metadata else None,
            "created_at": inbound.received_at or utcnow()}


async def record_outbound(session: AsyncSession, *, conversation: Conversation, reply: OutboundMessage,
                          in_reply_to: int | None, nlu: dict[str, Any] | None = None) -> OutboundMessage:
    """Store one reply and return it with conversation_id and message_id set."""
    saved = await record_outbound_many(session, conversation=conversation, replies=[reply],
                                       in_reply_to=in_reply_to, nlu=nlu)
    return saved[0]


async def record_outbound_many(session: AsyncSession, *, conversation: Conversation,
                               replies: list[OutboundMessage], in_reply_to: int | None,
                               nlu: dict[str, Any] | None = None) -> list[OutboundMessage]:
    """Store replies in one statement; they come back, in order, with conversation_id and message_id set."""
    now = utcnow()
    rows = [{"conversation_id": conversation.id, "direction": "out", "channel": conversation.channel,
             "external_id": None, "kind": "text", "author": reply.author, "text": reply.text, "payload": None,
             "nlu": nlu, "content": {"buttons": [b.model_dump(mode="json") for b in reply.buttons],
                                     "cards": [c.model_dump(mode="json") for c in reply.cards],
                                     "custom": reply.custom},
             "in_reply_to": in_reply_to, "created_at": now} for reply in replies]
    ids = await ConversationRepository(session).insert_outbound(rows)
    return [reply.model_copy(update={"conversation_id": conversation.id, "message_id": message_id,
                                     "locale": reply.locale or conversation.locale})
            for reply, message_id in zip(replies, ids, strict=True)]


def outbound_of(conversation: Conversation, message: ConversationMessage) -> OutboundMessage:
    content = message.content or {}
    return OutboundMessage(channel=conversation.channel,
                           recipient_id=conversation.sender_id, text=message.text or "",
                           buttons=[Button.model_validate(b) for b in content.get("buttons") or []],
                           cards=[ProductCard.model_validate(c) for c in content.get("cards") or []],
                           custom=content.get("custom"), conversation_id=conversation.id, message_id=message.id,
                           author=message.author, locale=conversation.locale)


async def stored_replies(session: AsyncSession, *, conversation: Conversation,
                         inbound_id: int) -> list[OutboundMessage]:
    rows = await ConversationRepository(session).replies_to(inbound_id)
    return [outbound_of(conversation, row) for row in rows]


def stored_message(message: ConversationMessage) -> StoredMessage:
    content = message.content or {}
    return StoredMessage(
        id=message.id, conversation_id=message.conversation_id,
        direction="in" if message.direction == "in" else "out", author=message.author, kind=message.kind,
        text=message.text, payload=message.payload,
        buttons=[Button.model_validate(b) for b in content.get("buttons") or []],
        cards=[ProductCard.model_validate(c) for c in content.get("cards") or []],
        custom=content.get("custom"), created_at=message.created_at)


async def conversation_history(session: AsyncSession, *, channel: str, sender_id: str,
                               limit: int = 50) -> list[StoredMessage]:
    """The last `limit` messages of this channel identity's conversation, oldest first (empty if none)."""
    if limit < 1 or limit > 500:
        raise InvalidInput("limit must be between 1 and 500.", code="invalid_limit")
    repo = ConversationRepository(session)
    conversation = await repo.by_sender(channel, sender_id)
    if conversation is None:
        return []
    return [stored_message(m) for m in await repo.last_messages(conversation.id, limit)]


async def set_mode(session: AsyncSession, *, conversation_id: int, mode: str,
                   queue: str | None = None) -> Conversation:
    """Switch between the bot answering and a human agent answering."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}.", code="invalid_mode")
    conversation = await get_conversation(session, conversation_id=conversation_id)
    conversation.mode = mode
    conversation.queue = queue if mode == "human" else None
    conversation.pending = None
    conversation.updated_at = utcnow()
    await session.flush()
    return conversation


def verified_order(conversation: Conversation, number: str, *, now: datetime, ttl_seconds: int) -> bool:
    """Whether this conversation proved `number` owned less than `ttl_seconds` before `now`. A proof is bound
    to when it was made, so whoever speaks as this sender later has to prove it again."""
    for entry in conversation.verified_orders or []:
        if isinstance(entry, dict) and entry.get("number") == number:
            try:
                proven = datetime.fromisoformat(str(entry.get("at")))
            except ValueError:
                continue
            if proven.tzinfo is not None and timedelta(0) <= now - proven < timedelta(seconds=ttl_seconds):
                return True
    return False


def remember_verified_order(conversation: Conversation, number: str, *, now: datetime) -> None:
    """Record that this conversation proved `number` owned at `now` (replacing an earlier proof of it)."""
    kept = [entry for entry in conversation.verified_orders or []
            if not (entry == number or isinstance(entry, dict) and entry.get("number") == number)]
    conversation.verified_orders = [*kept, {"number": number, "at": now.isoformat()}]


async def failed_verifications(session: AsyncSession, *, conversation_id: int, window_seconds: int,
                               order_number: str | None = None) -> FailedProofs:
    """Wrong ownership proofs in the last `window_seconds`, with the latest one's time: by this conversation,
    and for `order_number` (an order number or public reference, as named) by anyone (0 without one)."""
    since = utcnow() - timedelta(seconds=window_seconds)
    return await ConversationRepository(session).failed_verifications_since(
        since, conversation_id, None if order_number is None else order_number[:40])


async def record_verification(session: AsyncSession, *, conversation_id: int, succeeded: bool,
                              order_number: str | None = None) -> None:
    session.add(VerificationAttempt(conversation_id=conversation_id, succeeded=succeeded,
                                    order_number=order_number[:40] if order_number else None, created_at=utcnow()))
    await session.flush()

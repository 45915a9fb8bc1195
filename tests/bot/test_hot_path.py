"""The engine's hot path: a failed skill's writes are undone whether or not the engine owns the transaction."""
from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot import BotDeps, FaqResult, HandleResult, InboundMessage, handle_inbound
from bot.conversations.models import ConversationMessage
from kit.db import Database
from kit.errors import Unavailable
from kit.outbox import OutboxEvent, enqueue
from kit.settings import Settings
from tests.bot.conftest import Say, TinyParser, texts

QUESTION = "what is your company's phone number"  # goes to the knowledge base


class WritesThenFails:
    """A knowledge base that writes in the shopper's transaction and then fails."""

    async def answer(self, session: AsyncSession, **_: object) -> FaqResult:
        await enqueue(session, topic="kb.half_done", payload={}, idempotency_key=f"half:{id(session)}")
        raise Unavailable("The FAQ index is rebuilding.", code="faq_rebuilding")


async def _events(db: Database, topic: str) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count(OutboxEvent.id)).where(OutboxEvent.topic == topic)) or 0)


async def _inbound_nlu(db: Database, message_id: str) -> list[dict[str, object] | None]:
    async with db.sessions() as session:
        return [m.nlu for m in (await session.scalars(select(ConversationMessage).where(
            ConversationMessage.external_id == message_id))).all()]


@pytest.mark.parametrize("caller_writes_first", [False, True])
async def test_a_failed_skill_leaves_no_write_behind_and_the_turn_is_stored_once(
        shop: Database, tiny_parser: TinyParser, caller_writes_first: bool) -> None:
    deps = BotDeps(settings=Settings(), nlu=tiny_parser, knowledge=WritesThenFails())
    inbound = InboundMessage(channel="telegram", sender_id="hp1", message_id="hp-1", text=QUESTION)
    async with shop.unit_of_work() as session:
        if caller_writes_first:  # the caller's own transaction: the engine must not roll it back
            await enqueue(session, topic="caller.own", payload={}, idempotency_key="caller-1")
        result: HandleResult = await handle_inbound(session, inbound, deps=deps)
    assert "something went wrong on my side (faq_rebuilding)" in texts(result)
    assert await _events(shop, "kb.half_done") == 0
    assert await _events(shop, "caller.own") == (1 if caller_writes_first else 0)
    assert await _events(shop, "send.telegram") == len(result.replies) == 1
    [nlu] = await _inbound_nlu(shop, "hp-1")
    assert nlu is not None
    assert nlu["policy"] == "error"
    assert nlu["error"] == "faq_rebuilding"
    async with shop.unit_of_work() as session:  # the same delivery again: the stored apology, nothing new
        again = await handle_inbound(session, inbound, deps=deps)
    assert again.duplicate
    assert [r.message_id for r in again.replies] == [r.message_id for r in result.replies]


async def test_several_replies_are_stored_in_order_with_one_outbox_event_each(
        shop: Database, bot_deps: BotDeps) -> None:
    inbound = InboundMessage(channel="rest", sender_id="hp2", message_id="hp-2", text="I need a kettle")
    async with shop.unit_of_work() as session:
        result = await handle_inbound(session, inbound, deps=bot_deps)
    assert len(result.replies) >= 2  # the results and their cards, or results plus "did this help?"
    ids = [r.message_id for r in result.replies if r.message_id is not None]
    assert len(ids) == len(result.replies)
    assert ids == sorted(ids)
    async with shop.sessions() as session:
        stored = {m.id: m for m in (await session.scalars(select(ConversationMessage).where(
            ConversationMessage.direction == "out", ConversationMessage.conversation_id == result.conversation_id)
        )).all()}
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.rest")
                                        .order_by(OutboxEvent.id))).all()
    assert [stored[i].text for i in ids if i is not None] == [r.text for r in result.replies]
    assert [e.idempotency_key for e in events] == [f"msg:{i}" for i in ids]
    assert [e.payload["text"] for e in events] == [r.text for r in result.replies]
    assert all(e.status == "pending" for e in events)  # the delivery worker sends them


async def test_replies_handed_over_inline_are_stored_without_outbox_events(shop: Database, bot_deps: BotDeps) -> None:
    inbound = InboundMessage(channel="rest", sender_id="hp3", message_id="hp-3", text="I need a kettle")
    async with shop.unit_of_work() as session:
        result = await handle_inbound(session, inbound, deps=bot_deps, delivered_inline=True)
    assert len(result.replies) >= 2
    async with shop.sessions() as session:
        stored = (await session.scalars(select(ConversationMessage.text).where(
            ConversationMessage.direction == "out", ConversationMessage.conversation_id == result.conversation_id)
            .order_by(ConversationMessage.id))).all()
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.rest"))).all()
    assert list(stored) == [r.text for r in result.replies]  # the stored replies are the record of what was said
    assert events == []  # nothing left for the delivery worker to send


@pytest.mark.parametrize("first_contact", [False, True], ids=["known", "first-contact"])
async def test_a_turn_writes_the_inbound_once_with_its_nlu_record(shop: Database, say: Say,
                                                                  first_contact: bool) -> None:
    if not first_contact:  # else the turn below creates the conversation and the REST sender's shopper
        await say("hello", sender="hp4", channel="rest", message_id="hp-4a")
    seen: list[str] = []
    listen = event.listens_for(shop.engine.sync_engine, "before_cursor_execute")
    record = listen(lambda _c, _cur, statement, *_a: seen.append(" ".join(statement.split())[:40].upper()))
    try:
        result = await say("thanks", sender="hp4", channel="rest", message_id="hp-4b")
    finally:
        event.remove(shop.engine.sync_engine, "before_cursor_execute", record)
    assert result.replies
    writes = [s for s in seen if not s.startswith(("SELECT", "BEGIN", "COMMIT"))]
    assert any(s.startswith("INSERT INTO SHOPPERS") for s in writes) == first_contact
    # The conversation's UPDATE, the inbound's INSERT (with its record), the replies' INSERT; no UPDATE of it.
    assert sum(s.startswith("INSERT INTO BOT_MESSAGES") for s in writes) == 2
    assert not any(s.startswith("UPDATE BOT_MESSAGES") for s in writes)
    [nlu] = await _inbound_nlu(shop, "hp-4b")
    assert nlu is not None
    assert nlu["intent"]["name"] == "thanks"  # type: ignore[index]
    assert nlu["policy"] == "answer"


async def test_a_repeat_delivered_while_the_first_is_handled_is_answered_once(
        shop: Database, say: Say, caplog: pytest.LogCaptureFixture) -> None:
    # The conversation exists: its row lock serialises the three deliveries below.
    await say("hello", sender="hp5", message_id="hp-5a")
    postgres = shop.engine.dialect.name == "postgresql"
    async with shop.engine.connect() as holder:
        if postgres:  # hold the row, so all three read "not seen yet" before they wait for it
            await holder.execute(text("SELECT id FROM bot_conversations WHERE sender_id = 'hp5' FOR UPDATE"))
        with caplog.at_level(logging.INFO, logger="bot.engine"):
            deliveries = [asyncio.ensure_future(say("hello", sender="hp5", message_id="hp-5b")) for _ in range(3)]
            await asyncio.sleep(0.5 if postgres else 0)
            await holder.rollback()
            results = await asyncio.gather(*deliveries)
    assert sorted(r.duplicate for r in results) == [False, True, True]
    first = next(r for r in results if not r.duplicate)
    assert all([m.message_id for m in r.replies] == [m.message_id for m in first.replies] for r in results)
    assert len(await _inbound_nlu(shop, "hp-5b")) == 1
    if postgres:  # the two repeats were caught by the inbound's unique constraint and answered as repeats
        assert sum("stored by a concurrent delivery" in r.getMessage() for r in caplog.records) == 2

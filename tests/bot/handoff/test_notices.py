"""The shopper is told when a person takes their conversation and when it goes back to the bot: one notice at that
moment, in their language, queued on their own channel through the outbox; a double click sends it once."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import handoff
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.errors import AlreadyResolved, AlreadyTaken
from kit.db import Database
from kit.outbox import OutboxEvent
from tests.bot.handoff.conftest import load_agent, make_agent, shopper_says


async def notices(db: Database, conversation_id: int) -> list[tuple[str | None, str | None, dict[str, object]]]:
    """(text, author, custom) of every message sent to the shopper, oldest first."""
    async with db.sessions() as session:
        rows = (await session.scalars(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "out")
            .order_by(ConversationMessage.id))).all()
    return [(r.text, r.author, (r.content or {}).get("custom") or {}) for r in rows]


async def queued_topics(db: Database) -> list[str]:
    async with db.sessions() as session:
        return list((await session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id))).all())


async def test_take_tells_the_shopper_once_and_a_double_click_sends_nothing_more(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    bo = await make_agent(db, "bo@shop.test")
    conversation_id = await shopper_says(db, "a person", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.take(session, agent=await load_agent(session, ana), conversation_id=conversation_id)
    async with db.unit_of_work() as session:  # the second click of a double click
        await handoff.inbox.take(session, agent=await load_agent(session, ana), conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        with pytest.raises(AlreadyTaken):
            await handoff.inbox.take(session, agent=await load_agent(session, bo), conversation_id=conversation_id)
    assert await notices(db, conversation_id) == [
        ("Ana joined the chat", "system", {"notice": "joined", "agent_name": "Ana"})]
    assert await queued_topics(db) == ["send.webchat"]


async def test_hand_back_tells_the_shopper_in_their_language_on_their_channel(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "找人工", channel="telegram", sender="777", human=True)
    async with db.unit_of_work() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        conversation.locale = "zh"
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.inbox.hand_back(session, agent=agent, conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        with pytest.raises(AlreadyResolved):
            await handoff.inbox.hand_back(session, agent=await load_agent(session, ana),
                                          conversation_id=conversation_id)
    assert [(text, custom.get("notice")) for text, _, custom in await notices(db, conversation_id)] == [
        ("Ana 加入了对话", "joined"), ("现在由智能助手继续为您服务", "returned")]
    assert await queued_topics(db) == ["send.telegram", "send.telegram"]


async def test_transfer_and_round_robin_name_the_agent_who_joins(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test", role="supervisor")
    bo = await make_agent(db, "bo@shop.test", online=True)
    first = await shopper_says(db, "a person", sender="s-1", human=True)
    second = await shopper_says(db, "a person", sender="s-2", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(auto_assign=True))
    async with db.unit_of_work() as session:
        assigned = await handoff.inbox.auto_assign(session)
    assert {conversation for conversation, _ in assigned} <= {first, second}
    assert assigned
    auto_id = assigned[0][0]
    assert [text for text, _, _ in await notices(db, auto_id)] == ["Bo joined the chat"]
    other = second if auto_id == first else first
    async with db.unit_of_work() as session:
        await handoff.inbox.assign(session, by=await load_agent(session, ana), conversation_id=other, agent_id=bo)
    assert [text for text, _, _ in await notices(db, other)][-1] == "Bo joined the chat"

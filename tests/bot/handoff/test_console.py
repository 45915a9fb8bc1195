"""The console on the db fixture (SQLite and PostgreSQL): inbox, assignment, replies, drafts, notes, canned
responses, CSAT, escalation triggers, opening hours, delivery state."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot import handoff
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.errors import (
    AlreadyResolved,
    AlreadyTaken,
    NotInHumanMode,
    NotYours,
    ThreadNotFound,
)
from kit.clock import clock, utcnow
from kit.db import Database
from kit.errors import ShopTalkError
from kit.outbox import OutboxEvent
from tests.bot.handoff.conftest import load_agent, make_agent, shopper_says


async def test_escalated_conversation_appears_unassigned_and_take_silences_the_bot(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "I want to talk to a person", human=True)
    async with db.unit_of_work() as session:
        assert await handoff.inbox.sync_escalations(session) == [conversation_id]
        assert await handoff.inbox.sync_escalations(session) == []
        agent = await load_agent(session, ana)
        waiting = await handoff.inbox.inbox(session, agent=agent, view="unassigned")
        assert [i.conversation_id for i in waiting] == [conversation_id]
        assert waiting[0].last_text == "I want to talk to a person"
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        assert await handoff.inbox.inbox(session, agent=agent, view="unassigned") == []
        mine = await handoff.inbox.inbox(session, agent=agent, view="mine")
        assert [(i.conversation_id, i.assignee_name, i.mode) for i in mine] == [(conversation_id, "Ana", "human")]


async def test_agent_takes_over_a_conversation_the_bot_is_answering(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "where is my parcel")
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        candidates = await handoff.inbox.inbox(session, agent=agent, view="bot")
        assert [i.conversation_id for i in candidates] == [conversation_id]
        with pytest.raises(NotInHumanMode):
            await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id, text="Hello")
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        assert conversation.mode == "human"


async def test_two_agents_racing_for_one_conversation_only_one_wins(db: Database) -> None:
    ids = [await make_agent(db, f"agent{n}@shop.test") for n in range(6)]
    conversation_id = await shopper_says(db, "a person please", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)

    async def race(agent_id: int) -> str:
        try:
            async with db.unit_of_work() as session:
                agent = await load_agent(session, agent_id)
                await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
            return "won"
        except AlreadyTaken:
            return "lost"

    results = await asyncio.gather(*(race(i) for i in ids))
    assert sorted(results) == ["lost"] * 5 + ["won"]
    winner = ids[results.index("won")]
    async with db.unit_of_work() as session:
        agent = await load_agent(session, winner)
        assert [i.assignee_id for i in await handoff.inbox.inbox(session, agent=agent, view="open")] == [winner]


async def test_take_over_race_on_a_bot_conversation_only_one_wins(db: Database) -> None:
    ids = [await make_agent(db, f"agent{n}@shop.test") for n in range(4)]
    conversation_id = await shopper_says(db, "hello")

    async def race(agent_id: int) -> str:
        try:
            async with db.unit_of_work() as session:
                await handoff.inbox.take(session, agent=await load_agent(session, agent_id),
                                         conversation_id=conversation_id)
            return "won"
        except AlreadyTaken:
            return "lost"

    results = await asyncio.gather(*(race(i) for i in ids))
    assert results.count("won") == 1


async def test_agent_of_another_shop_sees_nothing(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    other = await make_agent(db, "eve@other.test", shop_id=2)
    conversation_id = await shopper_says(db, "help me", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        await handoff.inbox.take(session, agent=await load_agent(session, ana), conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        eve = await load_agent(session, other)
        for view in handoff.inbox.VIEWS:
            assert await handoff.inbox.inbox(session, agent=eve, view=view) == []
        with pytest.raises(ThreadNotFound):
            await handoff.views.conversation_view(session, agent=eve, conversation_id=conversation_id)
        with pytest.raises(ThreadNotFound):
            await handoff.inbox.take(session, agent=eve, conversation_id=conversation_id)
        with pytest.raises(ThreadNotFound):
            await handoff.replies.reply(session, agent=eve, conversation_id=conversation_id, text="hi")


async def test_agent_reply_goes_through_the_outbox_to_the_shoppers_channel(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person", channel="telegram", sender="777", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        message_id = await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id,
                                                 text="Hi, I'm Ana. Let me check.")
    async with db.unit_of_work() as session:
        event = await session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"msg:{message_id}"))
        assert event is not None
        assert event.topic == "send.telegram"
        assert event.payload["author"] == "agent"
        assert event.payload["recipient_id"] == "777"
        assert event.payload["text"] == "Hi, I'm Ana. Let me check."
        view = await handoff.views.conversation_view(session, agent=await load_agent(session, ana),
                                                     conversation_id=conversation_id)
        last = view.messages[-1]
        assert (last.author, last.agent_name, last.delivery) == ("agent", "Ana", "sending")
        assert view.messages[0].intent == "human_handoff"
        assert view.messages[0].confidence == pytest.approx(0.91)


async def test_only_the_owner_replies(db: Database) -> None:
    ana, bo = await make_agent(db, "ana@shop.test"), await make_agent(db, "bo@shop.test")
    conversation_id = await shopper_says(db, "a person", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        with pytest.raises(NotYours):
            await handoff.replies.reply(session, agent=await load_agent(session, bo), conversation_id=conversation_id,
                                        text="hi")
        await handoff.inbox.take(session, agent=await load_agent(session, ana), conversation_id=conversation_id)
        with pytest.raises(NotYours):
            await handoff.replies.reply(session, agent=await load_agent(session, bo), conversation_id=conversation_id,
                                        text="hi")
        with pytest.raises(ShopTalkError) as caught:
            await handoff.replies.reply(session, agent=await load_agent(session, ana), conversation_id=conversation_id,
                                        text="   ")
        assert caught.value.code == "empty_reply"


async def test_resolve_asks_for_csat_and_resolving_twice_is_a_clear_conflict(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.inbox.resolve(session, agent=agent, conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        with pytest.raises(AlreadyResolved):
            await handoff.inbox.resolve(session, agent=agent, conversation_id=conversation_id)
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.mode == "bot"
        joined, returned, question = (await session.scalars(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "out")
            .order_by(ConversationMessage.id))).all()
        assert (joined.text, returned.text) == ("Ana joined the chat", "You're chatting with the assistant again")
        assert [b["payload"] for b in question.content["buttons"]] == [f"csat:{n}" for n in range(1, 6)]
        assert [i.conversation_id for i in await handoff.inbox.inbox(session, agent=agent, view="resolved")] == \
            [conversation_id]
    await shopper_says(db, "4", payload="csat:4")
    async with db.unit_of_work() as session:
        assert await handoff.csat.record_csat(session, conversation_id=conversation_id, score=4)
        assert not await handoff.csat.record_csat(session, conversation_id=conversation_id, score=5)
        stats = await handoff.csat.csat_per_agent(session, shop_id=1)
        assert [(s.agent_name, s.asked, s.answered, s.average) for s in stats] == [("Ana", 1, 1, 4.0)]


async def test_hand_back_returns_the_conversation_to_the_bot(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.inbox.hand_back(session, agent=agent, conversation_id=conversation_id)
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        assert conversation.mode == "bot"
        with pytest.raises(AlreadyResolved):
            await handoff.inbox.hand_back(session, agent=agent, conversation_id=conversation_id)
        assert await handoff.inbox.sync_escalations(session) == []


async def test_round_robin_respects_online_agents_and_capacity(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test", capacity=1, online=True)
    bo = await make_agent(db, "bo@shop.test", capacity=2, online=True)
    await make_agent(db, "cy@shop.test", capacity=5, online=False)
    ids = [await shopper_says(db, "person", sender=f"s{n}", human=True) for n in range(4)]
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        assigned = await handoff.inbox.auto_assign(session)
    owners = [agent for _, agent in assigned]
    assert sorted(owners) == sorted([ana, bo, bo])
    assert [c for c, _ in assigned] == ids[:3]
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        waiting = await handoff.inbox.inbox(session, agent=agent, view="unassigned")
        assert [i.conversation_id for i in waiting] == [ids[3]]
        notice = await handoff.inbox.queue_notice(session, conversation_id=ids[3])
        assert notice.open_now
        assert notice.position == 1
        assert notice.expected_wait_minutes is not None
        assert "number 1 in the queue" in notice.render("en")


async def test_auto_assign_can_be_turned_off_per_shop(db: Database) -> None:
    await make_agent(db, "ana@shop.test", online=True)
    await shopper_says(db, "person", human=True)
    async with db.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(auto_assign=False))
        await handoff.inbox.sync_escalations(session)
        assert await handoff.inbox.auto_assign(session) == []


async def test_transfer_and_supervisor_assignment(db: Database) -> None:
    ana, bo = await make_agent(db, "ana@shop.test"), await make_agent(db, "bo@shop.test")
    boss = await make_agent(db, "boss@shop.test", role="supervisor")
    conversation_id = await shopper_says(db, "person", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        with pytest.raises(ShopTalkError) as caught:
            await handoff.inbox.assign(session, by=await load_agent(session, bo), conversation_id=conversation_id,
                                       agent_id=bo)
        assert caught.value.code == "supervisor_only"
        await handoff.inbox.assign(session, by=await load_agent(session, boss), conversation_id=conversation_id,
                                   agent_id=ana)
        thread = await handoff.inbox.assign(session, by=await load_agent(session, ana), conversation_id=conversation_id,
                                            agent_id=bo)
        assert thread.assignee_id == bo


async def test_bot_draft_waits_for_an_agent_who_sends_or_edits_it(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "can I return opened headphones?")
    async with db.unit_of_work() as session:
        await handoff.drafts.hold_draft(session, conversation_id=conversation_id, text="Yes, within 30 days.",
                                        for_message_id=None)
        agent = await load_agent(session, ana)
        waiting = await handoff.inbox.inbox(session, agent=agent, view="unassigned")
        assert waiting[0].has_draft
        assert waiting[0].mode == "human"
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        message_id = await handoff.drafts.send_draft(session, agent=agent, conversation_id=conversation_id,
                                                     text="Yes, within 30 days, unused.")
        with pytest.raises(ShopTalkError) as caught:
            await handoff.drafts.send_draft(session, agent=agent, conversation_id=conversation_id)
        assert caught.value.code == "no_draft"
        message = await session.get(ConversationMessage, message_id)
        assert message is not None
        assert message.text == "Yes, within 30 days, unused."
        assert message.author == "agent"


async def test_notes_and_canned_responses(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    sue = await make_agent(db, "sue@shop.test", role="supervisor")
    conversation_id = await shopper_says(db, "person", human=True)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        supervisor = await load_agent(session, sue)
        await handoff.notes.add_note(session, agent=agent, conversation_id=conversation_id, body="VIP, be kind")
        canned = await handoff.canned.create_canned(session, agent=supervisor, shortcut="hello",
                                                    body="Hi {name}, about order {order_number}: ")
        with pytest.raises(ShopTalkError) as caught:
            await handoff.canned.create_canned(session, agent=supervisor, shortcut="bad", body="Hi {nickname}")
        assert caught.value.code == "unknown_variable"
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=conversation_id)
        assert [n.body for n in view.notes] == ["VIP, be kind"]
        assert all(m.text != "VIP, be kind" for m in view.messages)
        assert handoff.canned.fill_canned(canned.body, {"name": "Lin", "order_number": None}) == \
            ("Hi Lin, about order {order_number}:", ["order_number"])


async def test_offline_hours_tell_when_the_team_is_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation_id = await shopper_says(db, "person", human=True)
    hours = handoff.hours.OpeningHours(always_open=False, timezone="Europe/Berlin", days=[0, 1, 2, 3, 4])
    async with db.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(opening_hours=hours))
    saturday = utcnow().replace(year=2026, month=11, day=28, hour=21, minute=0)
    monkeypatch.setattr(clock, "now", lambda: saturday)
    async with db.unit_of_work() as session:
        notice = await handoff.inbox.queue_notice(session, conversation_id=conversation_id)
    assert not notice.open_now
    assert notice.opens_at is not None
    assert (notice.opens_at.weekday(), notice.opens_at.hour) == (0, 9)
    assert "Mon 09:00" in notice.render("en")


async def test_reply_to_a_shopper_who_blocked_the_bot_is_marked_failed(db: Database) -> None:
    from aiogram.client.telegram import TelegramAPIServer

    from api.workers.channels import channel_handlers
    from bot.channels.telegram import TelegramChannel
    from bot.messages import InboundMessage
    from kit.outbox import OutboxWorker
    from tests.bot.channels.conftest import BOT_TOKEN
    from tests.bot.channels.telegram_double import TelegramDouble

    async def only_sends(inbound: InboundMessage) -> None:
        raise AssertionError("no inbound expected")

    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person", channel="telegram", sender="4343", human=True)
    double = await TelegramDouble(token=BOT_TOKEN).start()
    telegram = TelegramChannel(token=BOT_TOKEN, database=db, handle=only_sends,
                               api=TelegramAPIServer.from_base(double.base_url))
    try:
        double.blocked_chats.add(4343)
        async with db.unit_of_work() as session:
            agent = await load_agent(session, ana)
            await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
            await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id, text="Still there?")
        worker = OutboxWorker(db.sessions, channel_handlers(telegram=telegram, hub=None))
        # The "joined" notice goes first and the reply after it (one recipient's events keep their order): two rounds.
        await worker.run_once()
        await worker.run_once()
    finally:
        await telegram.close()
        await double.stop()
    async with db.unit_of_work() as session:
        view = await handoff.views.conversation_view(session, agent=await load_agent(session, ana),
                                                     conversation_id=conversation_id)
    failed = view.messages[-1]
    assert (failed.text, failed.delivery) == ("Still there?", "failed")
    assert failed.delivery_error == "telegram refused: Forbidden: bot was blocked by the user"
    assert BOT_TOKEN.split(":")[1] not in (failed.delivery_error or "")

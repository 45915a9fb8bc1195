"""The engine with the handoff: queue notice, silence in human mode, per-shop triggers, drafts, CSAT."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import BotDeps, handoff
from bot.handoff.models import HandoffThread
from bot.policy import PolicyThresholds
from kit.clock import clock
from kit.db import Database
from kit.settings import Settings
from tests.bot.conftest import Say, TinyParser, payloads, texts
from tests.bot.handoff.conftest import load_agent, make_agent


async def test_asking_for_a_person_queues_the_shopper_and_silences_the_bot(say: Say, shop: Database) -> None:
    asked = await say(kind="callback", payload="handoff:request", sender="q1")
    assert "passing you to a member of our team" in texts(asked)
    assert "You are number 1 in the queue" in texts(asked)
    conversation_id = asked.conversation_id
    async with shop.unit_of_work() as session:
        thread = await session.get(HandoffThread, conversation_id)
        assert thread is not None
        assert thread.status == "open"
        assert thread.assignee_id is None
    assert (await say("hello? do you have kettles?", sender="q1")).replies == []
    second = await say(kind="callback", payload="handoff:request", sender="q2")
    assert "You are number 2 in the queue" in texts(second)


async def test_agent_reply_hand_back_then_the_bot_answers_again(say: Say, shop: Database) -> None:
    ana = await make_agent(shop, "ana@shop.test")
    conversation_id = (await say(kind="callback", payload="handoff:request", sender="h1")).conversation_id
    async with shop.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id, text="Hi, Ana here")
    assert (await say("thanks Ana", sender="h1")).replies == []
    async with shop.unit_of_work() as session:
        await handoff.inbox.hand_back(session, agent=await load_agent(session, ana), conversation_id=conversation_id)
    assert (await say("show my cart", sender="h1")).replies != []


async def test_two_unhelpful_answers_bring_a_person(say: Say) -> None:
    first = await say(kind="callback", payload="feedback:no", sender="u1")
    assert "talk to a person" in texts(first)
    second = await say(kind="callback", payload="feedback:no", sender="u1")
    assert "passing you to a member of our team" in texts(second)


async def test_strongly_negative_wording_brings_a_person(say: Say, shop: Database) -> None:
    result = await say("this shop is a total SCAM, useless", sender="n1")
    assert "member of our team" in texts(result)
    # The console shows what the policy decided for each message and why.
    cart = await say("show my cart, useless bot", sender="n3")
    assert "member of our team" in texts(cart)
    ana = await make_agent(shop, "ana@shop.test")
    async with shop.unit_of_work() as session:
        agent = await load_agent(session, ana)
        views = [await handoff.views.conversation_view(session, agent=agent, conversation_id=r.conversation_id)
                 for r in (result, cart)]
    decided = [(m.policy, m.reason) for view in views for m in view.messages if m.direction == "in"]
    assert decided == [("handoff", "complaint"), ("handoff", "negative_wording")]


async def test_negative_wording_trigger_can_be_turned_off(say: Say, shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1,
                                       rules=handoff.rules.EscalationRules(on_negative_wording=False))
    result = await say("show my cart, useless bot", sender="n2")
    assert "queue" not in texts(result)


async def test_middle_confidence_answer_waits_as_a_draft_for_an_agent(say: Say, shop: Database,
                                                                     tiny_parser: TinyParser) -> None:
    unsure = BotDeps(settings=Settings(), nlu=tiny_parser, policy=PolicyThresholds(answer_at=1.01, confirm_at=0.0))
    async with shop.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1,
                                       rules=handoff.rules.EscalationRules(mixed_reply_default="draft_for_agent"))
    result = await say("show my cart", sender="d1", deps=unsure)
    assert "queue" in texts(result)
    assert "cart" not in texts(result).lower()
    ana = await make_agent(shop, "ana@shop.test")
    async with shop.unit_of_work() as session:
        agent = await load_agent(session, ana)
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=result.conversation_id)
        assert view.draft
        assert "cart" in view.draft.lower()
        assert "Did this help" not in view.draft
        await handoff.inbox.take(session, agent=agent, conversation_id=result.conversation_id)
        await handoff.drafts.send_draft(session, agent=agent, conversation_id=result.conversation_id)


async def test_rating_after_resolve_is_recorded_and_thanked(say: Say, shop: Database) -> None:
    ana = await make_agent(shop, "ana@shop.test")
    conversation_id = (await say(kind="callback", payload="handoff:request", sender="c1")).conversation_id
    async with shop.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.inbox.resolve(session, agent=agent, conversation_id=conversation_id)
    rated = await say(kind="callback", payload="csat:5", sender="c1")
    assert "Thank you for your rating" in texts(rated)
    assert payloads(rated) == []
    assert (await say(kind="callback", payload="csat:1", sender="c1")).replies == []
    async with shop.unit_of_work() as session:
        stats = await handoff.csat.csat_per_agent(session, shop_id=1)
    assert [(s.agent_name, s.answered, s.average) for s in stats] == [("Ana", 1, 5.0)]


async def test_offline_hours_say_when_the_team_is_back(say: Say, shop: Database,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    async with shop.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(
            opening_hours=handoff.hours.OpeningHours(always_open=False, timezone="Europe/Berlin")))
    sunday_night = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: sunday_night)
    result = await say(kind="callback", payload="handoff:request", sender="o1")
    assert "We open again Mon 09:00 (Europe/Berlin)" in texts(result)


async def test_questions_about_an_expensive_order_go_to_a_person(say: Say, shop: Database) -> None:
    from decimal import Decimal

    from commerce.orders import service as orders
    from commerce.orders.schemas import OrderIn, OrderLineIn

    async with shop.unit_of_work() as session:
        order, _ = await orders.create_order(session, data=OrderIn(
            channel="web", external_id="web-big", currency="EUR", email="big@example.com", country="DE",
            lines=[OrderLineIn(sku="KET-1", quantity=5)]))
        await handoff.rules.save_rules(session, shop_id=1,
                                       rules=handoff.rules.EscalationRules(order_value_above=Decimal("100")))
    result = await say(f"where is my order #{order.number}?", sender="v1")
    assert "member of our team" in texts(result)
    # Named by its public reference, the same order is just as expensive.
    by_ref = await say(f"where is my order {order.public_ref}?", sender="v2")
    assert "member of our team" in texts(by_ref)
    async with shop.unit_of_work() as session:
        for conversation_id in (result.conversation_id, by_ref.conversation_id):
            thread = await session.get(HandoffThread, conversation_id)
            assert thread is not None
            assert thread.reason == "order_value"

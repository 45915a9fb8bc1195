"""The shop's escalation rules in the engine: each of the engine's own triggers can be switched off and tuned,
the explicit "Talk to a person" offer of a mixed reply, the order-value trigger across currencies, and the
per-process rules cache."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event

from bot import BotDeps, handoff
from bot.handoff.models import HandoffThread
from bot.policy import PolicyThresholds, ShopTriggers, decide, shop_triggers
from bot.templates import render
from kit.db import Database
from kit.settings import Settings
from tests.bot.conftest import Say, TinyParser, payloads, texts

OFFER = "handoff:offer"
REQUEST = "handoff:request"


@dataclass
class Parsed:
    intent: str
    confidence: float


def _decide(intent: str, confidence: float, before: int = 0, **triggers: Any) -> tuple[str, str]:
    decision = decide(Parsed(intent, confidence), thresholds=PolicyThresholds(),  # type: ignore[arg-type]
                      misunderstood_before=before, triggers=ShopTriggers(**triggers))
    return decision.action, decision.intent


def test_policy_follows_the_shops_triggers() -> None:
    assert _decide("human_handoff", 0.9) == ("handoff", "human_handoff")
    assert _decide("human_handoff", 0.9, on_request=False) == ("answer", "help")
    assert _decide("complaint", 0.9) == ("handoff", "complaint")
    assert _decide("complaint", 0.9, on_complaint=False) == ("answer", "faq")
    assert _decide("cancel_order", 0.9, on_request=False, on_complaint=False) == ("handoff", "cancel_order")
    # Not understood: the shop's count (0 = never) and its confidence line.
    assert _decide("nlu_fallback", 0.2, before=1) == ("handoff", "nlu_fallback")
    assert _decide("nlu_fallback", 0.2, before=9, low_confidence_in_a_row=0) == ("clarify", "nlu_fallback")
    assert _decide("nlu_fallback", 0.2, before=0, low_confidence_in_a_row=1) == ("handoff", "nlu_fallback")
    assert _decide("nlu_fallback", 0.2, before=1, low_confidence_in_a_row=3) == ("clarify", "nlu_fallback")
    assert _decide("view_cart", 0.5) == ("confirm", "view_cart")
    assert _decide("view_cart", 0.5, low_confidence_below=0.6) == ("clarify", "view_cart")
    assert _decide("view_cart", 0.3, low_confidence_below=0.2) == ("confirm", "view_cart")
    assert _decide("human_handoff", 0.5, low_confidence_below=0.6) == ("clarify", "human_handoff")


async def save(db: Database, **changes: Any) -> None:
    async with db.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(**changes))


async def thread_of(db: Database, conversation_id: int) -> HandoffThread | None:
    async with db.unit_of_work() as session:
        thread: HandoffThread | None = await session.get(HandoffThread, conversation_id)
        return thread


async def test_a_shop_can_switch_off_handing_off_on_request(say: Say, shop: Database) -> None:
    await save(shop, on_request=False)
    asked = await say("I want to talk to a real person", sender="r1")
    assert render("en", "handoff_unavailable") in texts(asked)
    assert "member of our team" not in texts(asked)
    assert REQUEST not in payloads(asked)  # no "Talk to a person" button that leads nowhere
    for pressed in (await say(kind="callback", payload=REQUEST, sender="r1"),
                    await say("/human", kind="command", sender="r1")):
        assert texts(pressed) == render("en", "handoff_unavailable")
        assert REQUEST not in payloads(pressed)
    assert await thread_of(shop, asked.conversation_id) is None
    assert (await say("show my cart", sender="r1")).replies != []  # the bot is still answering

    await save(shop, on_request=True)
    again = await say("I want to talk to a real person", sender="r1")
    assert "member of our team" in texts(again)
    thread = await thread_of(shop, asked.conversation_id)
    assert thread is not None
    assert thread.status == "open"


async def test_a_shop_can_switch_off_handing_off_complaints(say: Say, shop: Database) -> None:
    await save(shop, on_complaint=False)
    result = await say("I want to file a complaint about my order", sender="c1")
    assert texts(result).startswith(render("en", "complaint_no_person"))
    assert await thread_of(shop, result.conversation_id) is None
    await save(shop)
    handed = await say("I want to file a complaint about my order", sender="c2")
    assert render("en", "handoff_complaint") in texts(handed)


async def test_not_understood_in_a_row_is_the_shops_count(say: Say, shop: Database) -> None:
    await save(shop, low_confidence_in_a_row=0)
    for _ in range(3):
        result = await say("hmm", sender="l1")
        assert "member of our team" not in texts(result)
    await save(shop, low_confidence_in_a_row=3)
    assert "member of our team" not in texts(await say("hmm", sender="l2"))
    assert "member of our team" not in texts(await say("hmm", sender="l2"))
    assert "member of our team" in texts(await say("hmm", sender="l2"))


async def test_the_shops_confidence_line_decides_what_is_not_understood(say: Say, shop: Database) -> None:
    await save(shop, low_confidence_below=1.0, low_confidence_in_a_row=1)
    result = await say("show my cart", sender="t1")  # 0.99 from the small model: below the shop's line
    assert "member of our team" in texts(result)
    thread = await thread_of(shop, result.conversation_id)
    assert thread is not None


@pytest.fixture
def unsure(tiny_parser: TinyParser) -> BotDeps:
    """Every answer is middle-confidence (answer and ask "did this help?")."""
    return BotDeps(settings=Settings(), nlu=tiny_parser, policy=PolicyThresholds(answer_at=1.01, confirm_at=0.0))


async def test_answer_and_offer_a_person_adds_the_button_and_it_hands_off(say: Say, shop: Database,
                                                                        unsure: BotDeps) -> None:
    answered = await say("show my cart", sender="o1", deps=unsure)
    assert "Did this help?" in texts(answered)
    assert OFFER in payloads(answered)
    assert await thread_of(shop, answered.conversation_id) is None  # the bot answered; nobody is waiting
    pressed = await say(kind="callback", payload=OFFER, sender="o1", deps=unsure)
    assert "member of our team" in texts(pressed)
    assert "queue" in texts(pressed)
    thread = await thread_of(shop, answered.conversation_id)
    assert thread is not None
    assert (thread.status, thread.reason) == ("open", "offer_accepted")
    assert (await say("hello?", sender="o1", deps=unsure)).replies == []  # the bot is silent now


async def test_mixed_reply_is_chosen_per_intent(say: Say, shop: Database, unsure: BotDeps) -> None:
    await save(shop, mixed_reply_default="draft_for_agent", mixed_reply_by_intent={"view_cart": "answer_and_offer"},
               on_request=False)
    offered = await say("show my cart", sender="m1", deps=unsure)
    assert OFFER in payloads(offered)
    assert REQUEST not in payloads(offered)
    # The shop offers a person for this intent even though it does not hand off on request.
    assert "member of our team" in texts(await say(kind="callback", payload=OFFER, sender="m1", deps=unsure))
    drafted = await say("where is my order #123?", sender="m2", deps=unsure)
    assert OFFER not in payloads(drafted)
    assert "queue" in texts(drafted)


async def test_an_offer_the_shop_never_makes_is_declined(say: Say, shop: Database) -> None:
    await save(shop, mixed_reply_default="draft_for_agent", on_request=False)
    forged = await say(kind="callback", payload=OFFER, sender="f1")
    assert texts(forged) == render("en", "handoff_unavailable")
    assert await thread_of(shop, forged.conversation_id) is None


async def big_order(db: Database) -> str:
    from commerce.orders import service as orders
    from commerce.orders.schemas import OrderIn, OrderLineIn

    async with db.unit_of_work() as session:
        order, _ = await orders.create_order(session, data=OrderIn(
            channel="web", external_id="web-eur", currency="EUR", email="big@example.com", country="DE",
            lines=[OrderLineIn(sku="KET-1", quantity=5)]))  # 5 x 49.90 = 249.50 EUR
        assert order.total == Decimal("249.50")
        return order.number


@pytest.mark.parametrize(("threshold", "currency", "escalates"), [
    ("240", "GBP", False),  # 249.50 EUR is about 218.70 GBP: under, though 249.50 > 240 as raw numbers
    ("260", "USD", True),  # about 288.67 USD: over, though 249.50 < 260 as raw numbers
    ("30000", "JPY", True),  # about 45 122 JPY
    ("249.49", "EUR", True),
    ("249.50", "EUR", False),
])
async def test_order_value_is_compared_in_the_thresholds_currency(say: Say, shop: Database, threshold: str,
                                                                  currency: str, escalates: bool) -> None:
    number = await big_order(shop)
    await save(shop, order_value_above=Decimal(threshold), order_value_currency=currency)
    result = await say(f"where is my order #{number}?", sender=f"v-{currency}-{threshold}")
    assert ("member of our team" in texts(result)) is escalates
    thread = await thread_of(shop, result.conversation_id)
    assert (thread is not None and thread.reason == "order_value") is escalates


async def test_an_order_value_without_a_fresh_rate_goes_to_a_person(say: Say, shop: Database,
                                                                     caplog: pytest.LogCaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    number = await big_order(shop)
    await save(shop, order_value_above=Decimal("1000000"), order_value_currency="VND")  # no VND rate at all
    with caplog.at_level(logging.WARNING, logger="bot.handoff.rules"):
        result = await say(f"where is my order #{number}?", sender="nr1")
    assert "member of our team" in texts(result)
    assert "no_exchange_rate" in caplog.text
    async with shop.unit_of_work() as session:
        stale_on = (await session.get(HandoffThread, result.conversation_id))
        assert stale_on is not None
        assert stale_on.reason == "order_value"
    # A stale rate (older than max_rate_age_days) is refused by convert, never used: a person too.
    from datetime import timedelta

    from kit.clock import clock, utcnow

    later = utcnow() + timedelta(days=30)
    await save(shop, order_value_above=Decimal("1000000"), order_value_currency="USD")
    monkeypatch.setattr(clock, "now", lambda: later)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.handoff.rules"):
        stale = await say(f"where is my order #{number}?", sender="nr2")
    assert "member of our team" in texts(stale)
    assert "stale_exchange_rate" in caplog.text


def test_rules_refuse_what_makes_no_sense() -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        handoff.rules.EscalationRules(order_value_currency="EURO")
    with pytest.raises(ValidationError, match="not intent names"):
        handoff.rules.EscalationRules(mixed_reply_by_intent={"Order Status!": "draft_for_agent"})
    with pytest.raises(ValidationError):
        handoff.rules.EscalationRules(mixed_reply_by_intent={"order_status": "shout"})
    with pytest.raises(ValidationError, match="opens < closes"):
        handoff.hours.OpeningHours(always_open=False, opens="18:00", closes="09:00")
    with pytest.raises(ValidationError, match="at least one opening day"):
        handoff.hours.OpeningHours(always_open=False, days=[])
    with pytest.raises(ValidationError):
        handoff.rules.EscalationRules(on_requets=False)  # type: ignore[call-arg]  # a typo is refused, not ignored
    with pytest.raises(ValidationError):
        handoff.rules.EscalationRules(low_confidence_below=1.5)
    assert handoff.rules.EscalationRules(order_value_currency=" usd ").order_value_currency == "USD"


async def test_rules_are_cached_and_another_process_change_is_seen_within_a_second(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(handoff.rules, "monotonic", lambda: now[0])
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.unit_of_work() as session:
            assert (await shop_triggers(session)).on_request is True
            statements.clear()
            for _ in range(50):
                await shop_triggers(session)
            assert statements == []  # trusted for RULES_RECHECK_SECONDS: no query at all
        other = Database(db.engine.url.render_as_string(hide_password=False))  # another process
        try:
            async with other.unit_of_work() as session:
                await handoff.rules.save_rules(session, shop_id=1,
                                               rules=handoff.rules.EscalationRules(on_request=False))
        finally:
            await other.dispose()
        async with db.unit_of_work() as session:
            assert (await shop_triggers(session)).on_request is True  # still the cached copy
            now[0] += handoff.rules.RULES_RECHECK_SECONDS + 0.01
            statements.clear()
            assert (await shop_triggers(session)).on_request is False
            now[0] += handoff.rules.RULES_RECHECK_SECONDS + 0.01
            statements.clear()
            await shop_triggers(session)
            assert len(statements) == 1  # unchanged: one primary-key read of the stamp, no parse
            assert "updated_at" in statements[0]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_a_save_in_this_process_is_seen_at_once_and_a_rolled_back_one_never(db: Database) -> None:
    async with db.unit_of_work() as session:
        assert (await handoff.rules.rules_of(session)).on_complaint is True
    await save(db, on_complaint=False)
    async with db.unit_of_work() as session:
        assert (await handoff.rules.rules_of(session)).on_complaint is False

    class Undo(Exception):
        pass

    async def save_then_fail() -> None:
        async with db.unit_of_work() as session:
            await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(on_complaint=True))
            raise Undo

    with pytest.raises(Undo):
        await save_then_fail()
    async with db.unit_of_work() as session:
        assert (await handoff.rules.rules_of(session)).on_complaint is False


async def test_without_requests_no_reply_offers_a_person_that_never_comes(say: Say, shop: Database) -> None:
    await save(shop, on_complaint=False)
    kept = await say("I want to file a complaint about my order", sender="w1")
    assert REQUEST in payloads(kept)  # the shop still hands off on request: the FAQ's "no answer" offers one
    await save(shop, on_complaint=False, on_request=False)
    result = await say("I want to file a complaint about my order", sender="w2")
    assert render("en", "faq_none_no_person") in texts(result)
    assert render("en", "faq_none") not in texts(result)
    assert REQUEST not in payloads(result)
    sorry = await say(kind="callback", payload="feedback:no", sender="w3")
    assert texts(sorry) == render("en", "feedback_sorry_no_person")
    assert REQUEST not in payloads(sorry)
    # Repeated "did this help? no" is its own trigger, still on.
    assert "member of our team" in texts(await say(kind="callback", payload="feedback:no", sender="w3"))


async def test_stored_rules_that_no_longer_validate_fall_back_to_the_defaults(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    from bot.handoff.models import ShopHandoffRules
    from kit.clock import utcnow

    async with db.unit_of_work() as session:
        session.add(ShopHandoffRules(shop_id=1, updated_at=utcnow(), rules={
            "on_request": False, "opening_hours": {"always_open": False, "days": [], "timezone": "Europe/Berlin"}}))
    with caplog.at_level(logging.ERROR, logger="bot.handoff.rules"):
        async with db.unit_of_work() as session:
            assert await handoff.rules.rules_of(session) == handoff.rules.EscalationRules()
    assert "stored escalation rules are invalid" in caplog.text

"""The console's "never miss" and rich-timeline services on the db fixture (SQLite and PostgreSQL): the default
queue (mine + unassigned), unread counts per agent, the waiting clock, who-did-what events, a held draft sent
with its product cards, canned variables filled or refused, product cards from the catalog, money by locale."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot import handoff
from bot.conversations import service as conversations
from bot.conversations.models import ConversationMessage
from bot.messages import Button, OutboundMessage, ProductCard
from commerce.shoppers import service as shoppers
from kit.db import Database
from kit.errors import ShopTalkError
from tests.bot.conftest import make_bot_shop
from tests.bot.handoff.conftest import load_agent, make_agent, shopper_says


async def test_default_queue_is_mine_and_unassigned_with_unread_per_agent(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    bo = await make_agent(db, "bo@shop.test")
    waiting = await shopper_says(db, "help please", sender="s-1", human=True)
    taken_by_bo = await shopper_says(db, "hello?", sender="s-2", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        await handoff.inbox.take(session, agent=await load_agent(session, bo), conversation_id=taken_by_bo)
    await shopper_says(db, "anyone there?", sender="s-1", message_id="s-1:second")
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        queue = await handoff.inbox.inbox(session, agent=agent, view="queue")
        assert [i.conversation_id for i in queue] == [waiting]  # Bo's is neither mine nor unassigned
        assert queue[0].unread == 2
        assert queue[0].waiting_since is not None
        counts = {c.view: c for c in await handoff.inbox.view_counts(session, agent=agent)}
        assert (counts["queue"].conversations, counts["queue"].unread) == (1, 2)
        assert (counts["open"].conversations, counts["open"].unread) == (2, 3)
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=waiting)
        await handoff.inbox.mark_read(session, agent=agent, conversation_id=waiting, message_id=view.last_message_id)
        await handoff.inbox.mark_read(session, agent=agent, conversation_id=waiting, message_id=1)  # never backwards
    async with db.unit_of_work() as session:
        assert (await handoff.inbox.inbox(session, agent=await load_agent(session, ana), view="queue"))[0].unread == 0
        # Bo's read marker is his own.
        bo_view = await handoff.inbox.inbox(session, agent=await load_agent(session, bo), view="queue")
        assert {i.conversation_id: i.unread for i in bo_view} == {waiting: 2, taken_by_bo: 1}
    await shopper_says(db, "still waiting", sender="s-1", message_id="s-1:third")
    async with db.unit_of_work() as session:
        assert (await handoff.inbox.inbox(session, agent=await load_agent(session, ana), view="queue"))[0].unread == 1


async def test_waiting_clock_stops_when_an_agent_answers(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "where is my parcel", human=True)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.sync_escalations(session)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        assert (await handoff.inbox.inbox(session, agent=agent, view="mine"))[0].waiting_since is not None
        await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id, text="Looking now.")
    async with db.unit_of_work() as session:
        assert (await handoff.inbox.inbox(session, agent=await load_agent(session, ana),
                                          view="mine"))[0].waiting_since is None


async def test_timeline_records_who_did_what(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    bo = await make_agent(db, "bo@shop.test")
    conversation_id = await shopper_says(db, "person please", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.open_handoff(session, conversation_id=conversation_id, reason="on_request")
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        await handoff.inbox.assign(session, by=agent, conversation_id=conversation_id, agent_id=bo)
        await handoff.notes.add_note(session, agent=agent, conversation_id=conversation_id, body="VIP")
    async with db.unit_of_work() as session:
        other = await load_agent(session, bo)
        await handoff.inbox.hand_back(session, agent=other, conversation_id=conversation_id)
        await handoff.inbox.take(session, agent=other, conversation_id=conversation_id)
        await handoff.inbox.resolve(session, agent=other, conversation_id=conversation_id, ask_csat=False)
    async with db.unit_of_work() as session:
        view = await handoff.views.conversation_view(session, agent=await load_agent(session, ana),
                                                     conversation_id=conversation_id)
    assert [(e.kind, e.agent_name, e.target_agent_name) for e in view.events] == [
        ("escalated", None, None), ("taken", "Ana", None), ("transferred", "Ana", "Bo"), ("handed_back", "Bo", None),
        ("escalated", None, None), ("taken", "Bo", None), ("resolved", "Bo", None)]
    assert view.events[0].detail == "on_request"
    assert [n.body for n in view.notes] == ["VIP"]


async def test_approved_draft_reaches_the_shopper_with_its_cards(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "kettles?")
    card = ProductCard(sku="KET-1", product_id=1, title="Gooseneck Kettle", price_text="€59.00",
                       buttons=[Button(title="Add to cart", payload="cart:add:KET-1")])
    held = [OutboundMessage(channel="webchat", recipient_id="shopper-1", text="Here is what I found (1-1 of 1):",
                            cards=[card], buttons=[Button(title="More", payload="search:more")])]
    async with db.unit_of_work() as session:
        await handoff.hold_draft(session, conversation_id=conversation_id, text=held[0].text, for_message_id=None,
                                 replies=held)
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=conversation_id)
        assert [c["sku"] for c in view.draft_cards] == ["KET-1"]
        message_id = await handoff.drafts.send_draft(session, agent=agent, conversation_id=conversation_id)
    async with db.unit_of_work() as session:
        sent = await session.get(ConversationMessage, message_id)
        assert sent is not None
        assert sent.text == "Here is what I found (1-1 of 1):"
        assert [c["sku"] for c in (sent.content or {})["cards"]] == ["KET-1"]
        assert [b["payload"] for b in (sent.content or {})["buttons"]] == ["search:more"]
        view = await handoff.views.conversation_view(session, agent=await load_agent(session, ana),
                                                     conversation_id=conversation_id)
        assert view.messages[-1].cards[0]["title"] == "Gooseneck Kettle"
        assert view.draft is None


async def test_canned_variables_are_filled_and_an_unfilled_one_is_never_sent(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    sue = await make_agent(db, "sue@shop.test", role="supervisor")
    conversation_id = await shopper_says(db, "hi", human=True)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        canned = await handoff.canned.create_canned(session, agent=await load_agent(session, sue), shortcut="hi",
                                                    body="Hi {first_name}, {agent_name} here about {order_number}.")
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        values = await handoff.views.conversation_values(session, agent=agent, conversation_id=conversation_id)
        filled = await handoff.canned.canned_for_conversation(session, agent=agent, conversation_id=conversation_id,
                                                              canned_id=canned.id, values=values)
        assert filled.text == "Hi {first_name}, Ana here about {order_number}."
        assert filled.missing == ["first_name", "order_number"]
        with pytest.raises(ShopTalkError) as refused:
            await handoff.replies.reply(session, agent=agent, conversation_id=conversation_id, text=filled.text)
        assert refused.value.code == "unfilled_variable"
        assert "{first_name}" in str(refused.value.detail)
        assert "{order_number}" in str(refused.value.detail)
        assert refused.value.extra["variables"] == ["first_name", "order_number"]
    async with db.unit_of_work() as session:
        texts = (await session.scalars(select(ConversationMessage.text)
                                       .where(ConversationMessage.author == "agent"))).all()
        assert texts == []  # nothing reached the outbox


async def test_shopper_panel_names_the_person_and_formats_money_by_locale(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "hi", sender="tg-1", channel="telegram", human=True)
    async with db.unit_of_work() as session:
        shopper = await shoppers.shopper_for_identity(session, kind="telegram", external_id="tg-1",
                                                      name="Anna Schmidt", locale="en")
        shopper.email, shopper.country, shopper.currency = "anna@example.com", "DE", "EUR"
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        conversation.shopper_id = shopper.id
        agent = await load_agent(session, ana)
        await handoff.inbox.sync_escalations(session)
        item = (await handoff.inbox.inbox(session, agent=agent, view="queue"))[0]
        assert (item.shopper_name, item.shopper_email) == ("Anna Schmidt", "anna@example.com")
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=conversation_id,
                                                     locale=handoff.views.agent_locale("de-DE"))
        assert view.shopper.display_name == "Anna Schmidt"
        assert view.shopper.country_name == "Deutschland"
        assert view.canned_values["first_name"] == "Anna"
    anonymous = handoff.views.display_name(name=None, email=None, channel="webchat",
                                           sender_id="34ebbe0a9fb2656512b9e0d31b97efcf")
    assert anonymous == "Webchat shopper 97efcf"
    assert handoff.views.agent_locale("not a locale!") == "en"
    assert handoff.views.agent_locale("zh-CN") == "zh_CN"
    from commerce.money import format_money

    assert format_money(Decimal("161.850000"), "USD", "en_US") == "$161.85"


async def test_agent_sends_product_cards_from_the_catalog(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_bot_shop(session)
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "do you have kettles", human=True)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        found = await handoff.catalog.search_cards(session, agent=agent, conversation_id=conversation_id,
                                                   query="kettle", default_currency="EUR")
        assert found
        assert all("kettle" in c.title.lower() for c in found)
        with pytest.raises(ShopTalkError):  # not theirs yet
            await handoff.catalog.send_cards(session, agent=agent, conversation_id=conversation_id, skus=["KET-1"],
                                             default_currency="EUR")
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        with pytest.raises(ShopTalkError) as unknown:
            await handoff.catalog.send_cards(session, agent=agent, conversation_id=conversation_id, skus=["NOPE-1"],
                                             default_currency="EUR")
        assert "NOPE-1" in str(unknown.value.detail)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        message_id = await handoff.catalog.send_cards(session, agent=agent, conversation_id=conversation_id,
                                                      skus=["KET-1"], default_currency="EUR")
    async with db.unit_of_work() as session:
        sent = await session.get(ConversationMessage, message_id)
        assert sent is not None
        assert sent.text == "You might like these:"
        cards = (sent.content or {})["cards"]
        assert [c["sku"] for c in cards] == ["KET-1"]
        assert cards[0]["price_text"].startswith("€")
        assert [b["payload"] for b in cards[0]["buttons"]] == [f"product:details:{cards[0]['product_id']}",
                                                               "cart:add:KET-1"]


def test_sla_minutes_are_validated() -> None:
    with pytest.raises(ValueError, match="sla_breach_minutes"):
        handoff.rules.EscalationRules(sla_warn_minutes=10, sla_breach_minutes=5)
    rules = handoff.rules.EscalationRules()
    assert rules.sla_warn_minutes <= rules.sla_breach_minutes
    assert timedelta(minutes=rules.sla_breach_minutes) > timedelta(0)


async def test_agent_cards_show_prices_in_the_shoppers_currency(db: Database) -> None:
    from commerce.cross_border import admin as cross_border_admin
    from kit.clock import utcnow

    async with db.unit_of_work() as session:
        await make_bot_shop(session)
        await cross_border_admin.set_rate(session, base="EUR", currency="USD", rate=Decimal("1.10"),
                                          as_of=utcnow().date())
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "do you have kettles", human=True)
    async with db.unit_of_work() as session:
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        conversation.currency = "USD"  # the shopper's currency (the bot's search cards use the same)
        agent = await load_agent(session, ana)
        await handoff.inbox.take(session, agent=agent, conversation_id=conversation_id)
        found = await handoff.catalog.search_cards(session, agent=agent, conversation_id=conversation_id,
                                                   query="kettle", default_currency="EUR")
        kettle = next(c for c in found if c.sku == "KET-1")
        assert kettle.price_text == "$54.89"  # 49.90 EUR at 1.10
        message_id = await handoff.catalog.send_cards(session, agent=agent, conversation_id=conversation_id,
                                                      skus=["KET-1"], default_currency="EUR")
    async with db.unit_of_work() as session:
        sent = await session.get(ConversationMessage, message_id)
        assert sent is not None
        assert (sent.content or {})["cards"][0]["price_text"] == "$54.89"
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        conversation.currency = "CLP"  # no rate known: the product's own currency, never a wrong number
        found = await handoff.catalog.search_cards(session, agent=await load_agent(session, ana),
                                                   conversation_id=conversation_id, query="kettle",
                                                   default_currency="EUR")
        assert next(c for c in found if c.sku == "KET-1").price_text == "€49.90"

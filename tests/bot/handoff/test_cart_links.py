"""Cart links from the console's reply box on both backends: the agent prices a draft cart in the shopper's currency
(each line that cannot be bought named), sends it through the outbox on the shopper's channel; the shopper's press
fills their cart with exactly those lines and starts the chat's checkout while the agent keeps the conversation; a
replay, a forged or another conversation's link, an expired link and stock gone meanwhile add nothing and say why.
Also: handoff_replies.source holds more than 12 characters (it failed on PostgreSQL only)."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import BotDeps, handoff
from bot.conversations.models import Conversation
from bot.handoff import cart_links
from bot.handoff.models import AgentReply
from commerce.inventory import service as inventory
from kit.clock import clock, utcnow
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.bot.conftest import Say, TinyParser
from tests.bot.handoff.conftest import make_agent, shopper_says, sign_in

SHOPPER = "7001"


async def _conversation(db: Database, conversation_id: int) -> Conversation:
    async with db.sessions() as session:
        found = await session.get(Conversation, conversation_id)
        assert found is not None
        return found


async def _taken(client: httpx.AsyncClient, db: Database, sender: str = SHOPPER) -> tuple[int, dict[str, str]]:
    conversation_id = await shopper_says(db, "a person please", channel="telegram", sender=sender, human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
    headers = await sign_in(client, "ana@shop.test")
    taken = await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=headers)
    assert taken.status_code == 200, taken.text
    return conversation_id, headers


async def _send(client: httpx.AsyncClient, conversation_id: int, headers: dict[str, str],
                lines: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(f"/api/v1/agent/conversations/{conversation_id}/cart-link", json={"lines": lines},
                             headers=headers)


async def _button_of(db: Database, message_id: int) -> tuple[str, str]:
    """The text and the button payload of the message as the outbox sends it to the shopper's channel."""
    async with db.sessions() as session:
        event = await session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"msg:{message_id}"))
    assert event is not None
    assert event.topic == "send.telegram"
    buttons = event.payload["buttons"]
    assert len(buttons) == 1
    return str(event.payload["text"]), str(buttons[0]["payload"])


@pytest.fixture
def deps(settings: Settings, tiny_parser: TinyParser) -> BotDeps:
    return BotDeps(settings=settings, nlu=tiny_parser)  # the bot verifies links with the API's secret key


async def test_agent_sends_a_cart_link_and_the_shopper_opens_it_once(
        client: httpx.AsyncClient, shop: Database, say: Say, deps: BotDeps) -> None:
    await make_agent(shop, "ana@shop.test")
    conversation_id, headers = await _taken(client, shop)

    # The draft, priced as the shopper's cart shows it; what cannot be bought is named, not a crash.
    preview = await client.post(f"/api/v1/agent/conversations/{conversation_id}/cart-link/preview", headers=headers,
                                json={"lines": [{"sku": "KET-1", "quantity": 2}, {"sku": "HOOD-BLK-M", "quantity": 1},
                                                {"sku": "NOPE-1", "quantity": 1},
                                                {"sku": "HOOD-BLK-L", "quantity": 1}]})
    assert preview.status_code == 200, preview.text
    draft = preview.json()
    assert [(line["sku"], line["problem"]) for line in draft["lines"]] == [
        ("KET-1", None), ("HOOD-BLK-M", None), ("NOPE-1", "unknown_sku"), ("HOOD-BLK-L", "no_stock")]
    assert draft["sendable"] is False
    good = [line for line in draft["lines"] if line["problem"] is None]
    assert Decimal(draft["total"]) == sum(Decimal(line["line_total"]) for line in good) > 0
    assert Decimal(good[0]["line_total"]) == 2 * Decimal(good[0]["unit_price"])
    refused = await _send(client, conversation_id, headers, [{"sku": "NOPE-1", "quantity": 1}])
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_cart_link"
    assert "NOPE-1" in refused.json()["detail"]
    assert (await _send(client, conversation_id, headers, [{"sku": "KET-1", "quantity": 0}])).status_code == 422
    assert (await _send(client, conversation_id, {}, [{"sku": "KET-1", "quantity": 1}])).status_code == 403

    sent = await _send(client, conversation_id, headers, [{"sku": "KET-1", "quantity": 2},
                                                          {"sku": "HOOD-BLK-M", "quantity": 1}])
    assert sent.status_code == 201, sent.text
    text, payload = await _button_of(shop, sent.json()["message_id"])
    assert "2 × Electric Kettle" in text
    assert sent.json()["draft"]["total_text"] in text
    assert payload.startswith("cartlink:")
    assert len(payload.encode()) <= 64  # Telegram's callback data
    # The timeline shows it as the shopper saw it: the text and the button, attributed to the agent.
    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}")).json()
    shown = next(m for m in view["messages"] if m.get("id") == sent.json()["message_id"])
    assert shown["text"] == text
    assert [b["payload"] for b in shown["buttons"]] == [payload]

    # The shopper presses it while Ana keeps the conversation: exactly those lines, then the chat's checkout.
    opened = await say(kind="callback", payload=payload, sender=SHOPPER, deps=deps)
    assert not opened.held_for_person
    assert "Which country" in opened.replies[-1].text
    conversation = await _conversation(shop, conversation_id)
    assert conversation.mode == "human"
    assert [(line["sku"], line["quantity"]) for line in conversation.cart] == [("KET-1", 2), ("HOOD-BLK-M", 1)]
    # The checkout's question is answered by the bot too; other talk stays the agent's (below, another shopper).
    answered = await say("Germany", sender=SHOPPER, deps=deps)
    assert not answered.held_for_person
    assert answered.replies

    again = await say(kind="callback", payload=payload, sender=SHOPPER, deps=deps)  # a replay adds nothing
    assert "already opened" in again.replies[0].text
    assert [(line["sku"], line["quantity"]) for line in (await _conversation(shop, conversation_id)).cart] == [
        ("KET-1", 2), ("HOOD-BLK-M", 1)]

    forged = payload[:-4] + ("0000" if not payload.endswith("0000") else "1111")
    assert "not valid" in (await say(kind="callback", payload=forged, sender=SHOPPER, deps=deps)).replies[0].text
    # Another shopper cannot use it (the link is bound to its conversation); their other messages stay the agent's.
    other_id = await shopper_says(shop, "hello", channel="telegram", sender="7002", human=True)
    stolen = await say(kind="callback", payload=payload, sender="7002", deps=deps)
    assert "not valid" in stolen.replies[0].text
    assert (await _conversation(shop, other_id)).cart in ([], None)
    assert (await say("where is my parcel?", sender="7002", deps=deps)).held_for_person


async def test_an_expired_link_and_stock_gone_meanwhile_add_nothing(
        client: httpx.AsyncClient, shop: Database, say: Say, deps: BotDeps, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_agent(shop, "ana@shop.test")
    conversation_id, headers = await _taken(client, shop)
    expiring = await _send(client, conversation_id, headers, [{"sku": "KET-1", "quantity": 1}])
    short = await _send(client, conversation_id, headers, [{"sku": "HOOD-RED-L", "quantity": 2}])
    assert expiring.status_code == short.status_code == 201
    _, expiring_payload = await _button_of(shop, expiring.json()["message_id"])
    _, short_payload = await _button_of(shop, short.json()["message_id"])

    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku="HOOD-RED-L", location="RTM", on_hand=1)
    gone = await say(kind="callback", payload=short_payload, sender=SHOPPER, deps=deps)
    assert "Only 1 of" in gone.replies[0].text
    assert (await _conversation(shop, conversation_id)).cart in ([], None)

    later = utcnow() + cart_links.LINK_LIFETIME + timedelta(minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = await say(kind="callback", payload=expiring_payload, sender=SHOPPER, deps=deps)
    assert "expired" in expired.replies[0].text
    assert (await _conversation(shop, conversation_id)).cart in ([], None)


async def test_a_reply_source_longer_than_twelve_characters_is_stored(db: Database) -> None:
    # String(12) took "draft_edited" and nothing longer; PostgreSQL refused a longer one (SQLite ignores lengths).
    agent_id = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person please", human=True)
    async with db.unit_of_work() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        message_id = await handoff.delivery.send(session, conversation=conversation, agent_id=agent_id,
                                                 source="x" * 32, text="hello")
    async with db.sessions() as session:
        stored = await session.get(AgentReply, message_id)
    assert stored is not None
    assert stored.source == "x" * 32


async def test_two_presses_at_once_fill_the_cart_once(client: httpx.AsyncClient, shop: Database, say: Say,
                                                      deps: BotDeps) -> None:
    await make_agent(shop, "ana@shop.test")
    conversation_id, headers = await _taken(client, shop)
    sent = await _send(client, conversation_id, headers, [{"sku": "KET-1", "quantity": 3}])
    _, payload = await _button_of(shop, sent.json()["message_id"])
    results = await asyncio.gather(*(say(kind="callback", payload=payload, sender=SHOPPER, deps=deps,
                                         message_id=f"race-{n}") for n in range(2)))
    said = sorted(" ".join(reply.text for reply in result.replies) for result in results)
    assert sum("already opened" in text for text in said) == 1, said
    assert sum("Which country" in text for text in said) == 1, said
    assert [(line["sku"], line["quantity"]) for line in (await _conversation(shop, conversation_id)).cart] == [
        ("KET-1", 3)]

"""The console's new HTTP surface on both backends: the default queue and its counts, read markers, a canned
response filled for a conversation, catalog cards from the reply box, money in the agent's locale, and the
watcher's escalation and shopper-message events."""
from __future__ import annotations

import asyncio

import httpx

from api.http.agent.realtime import AgentEvents, InboxWatcher
from bot import handoff
from kit.db import Database
from tests.bot.conftest import make_bot_shop
from tests.bot.handoff.conftest import load_agent, make_agent, shopper_says, sign_in


async def test_queue_counts_read_and_filled_canned_over_http(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    sue = await make_agent(db, "sue@shop.test", role="supervisor")
    async with db.unit_of_work() as session:
        await make_bot_shop(session)
        await handoff.canned.create_canned(session, agent=await load_agent(session, sue), shortcut="hi",
                                           body="Hi {name}, {agent_name} here.")
    conversation_id = await shopper_says(db, "a person please", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
    headers = await sign_in(client, "ana@shop.test")

    queue = (await client.get("/api/v1/agent/inbox")).json()  # the default view: mine + unassigned
    assert [i["conversation_id"] for i in queue] == [conversation_id]
    assert queue[0]["unread"] == 1
    assert queue[0]["shopper_name"] is None
    counts = {c["view"]: c for c in (await client.get("/api/v1/agent/inbox/counts")).json()}
    assert counts["queue"] == {"view": "queue", "conversations": 1, "unread": 1}

    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}?locale=de-DE")).json()
    assert view["shopper"]["display_name"].startswith("Webchat shopper")
    assert [e["kind"] for e in view["events"]] == ["escalated"]
    read = await client.post(f"/api/v1/agent/conversations/{conversation_id}/read",
                             json={"message_id": view["last_message_id"]}, headers=headers)
    assert read.status_code == 204
    assert (await client.get("/api/v1/agent/inbox/counts")).json()[0]["unread"] == 0
    no_csrf = await client.post(f"/api/v1/agent/conversations/{conversation_id}/read", json={"message_id": 1})
    assert no_csrf.status_code == 403

    canned_id = (await client.get("/api/v1/agent/canned")).json()[0]["id"]
    filled = (await client.get(f"/api/v1/agent/conversations/{conversation_id}/canned/{canned_id}")).json()
    assert filled == {"canned_id": canned_id, "shortcut": "hi", "text": "Hi {name}, Ana here.", "missing": ["name"]}

    cards = (await client.get("/api/v1/agent/catalog", params={"q": "kettle",
                                                               "conversation_id": conversation_id})).json()
    assert cards
    assert all("sku" in c and c["price_text"] for c in cards)
    taken = await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=headers)
    assert taken.status_code == 200
    sent = await client.post(f"/api/v1/agent/conversations/{conversation_id}/cards",
                             json={"skus": [cards[0]["sku"]], "text": "Try this one, {name}"}, headers=headers)
    assert sent.status_code == 422
    assert sent.json()["code"] == "unfilled_variable"
    sent = await client.post(f"/api/v1/agent/conversations/{conversation_id}/cards",
                             json={"skus": [cards[0]["sku"]], "text": "Try this one"}, headers=headers)
    assert sent.status_code == 201
    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}")).json()
    assert view["messages"][-1]["cards"][0]["sku"] == cards[0]["sku"]
    assert [e["kind"] for e in view["events"]] == ["escalated", "taken"]


async def test_watcher_tells_consoles_about_escalations_and_shopper_messages(db: Database) -> None:
    events = AgentEvents()
    queue = events.subscribe(handoff.DEFAULT_SHOP_ID)
    watcher = InboxWatcher(db, events)
    await watcher.run_once()  # starts from the newest message and event
    conversation_id = await shopper_says(db, "I want a human", sender="s-9")
    async with db.unit_of_work() as session:
        await handoff.inbox.open_handoff(session, conversation_id=conversation_id, reason="on_request")
    await watcher.run_once()
    seen = []
    while not queue.empty():
        seen.append(queue.get_nowait())
    kinds = [e["type"] for e in seen]
    assert "escalation" in kinds
    assert "shopper_message" in kinds
    escalation = next(e for e in seen if e["type"] == "escalation")
    assert escalation == {"type": "escalation", "conversation_id": conversation_id, "reason": "on_request"}
    message = next(e for e in seen if e["type"] == "shopper_message")
    assert message["preview"] == "I want a human"
    await watcher.run_once()
    assert queue.empty()  # nothing twice


async def test_streams_are_told_to_reconnect_when_the_server_stops() -> None:
    events = AgentEvents()
    queue = events.subscribe(1)
    events.tell_to_reconnect()
    assert await asyncio.wait_for(queue.get(), timeout=1) == {"type": "reconnect"}
    assert events.closing


def test_watcher_cursor_sees_a_lower_id_committed_after_a_higher_one() -> None:
    from api.http.agent.realtime import _Cursor

    cursor = _Cursor()
    cursor.start(10)
    assert cursor.fresh([5, 9, 10]) == []  # there before the watcher looked
    assert cursor.fresh([12]) == [12]  # 11 is inserted but not committed yet
    assert cursor.fresh([11, 12]) == [11]  # committed later: seen once, late, not lost
    assert cursor.fresh([11, 12, 13]) == [13]

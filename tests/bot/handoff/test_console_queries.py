"""What the console's reloads cost in statements: the unread badges are one query whatever the number of views and
conversations, shopper names are one query for the whole list, and a WhatsApp conversation's reply window comes in
its view (no request of its own)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from api.app import create_app
from bot import handoff
from bot.conversations.models import Conversation
from commerce.shoppers import service as shoppers
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings
from tests.bot.handoff.conftest import PASSWORD, load_agent, make_agent, shopper_says
from tests.http import app_client


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def named_conversations(db: Database, count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        conversation_id = await shopper_says(db, f"help {n}", sender=f"s-{n}", human=True)
        async with db.unit_of_work() as session:
            shopper = await shoppers.shopper_for_identity(session, kind="webchat", external_id=f"s-{n}",
                                                          name=f"Shopper {n}", locale="en")
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            conversation.shopper_id = shopper.id
            await handoff.inbox.sync_escalations(session)


async def costs(db: Database, agent_id: int) -> tuple[int, int, list[handoff.inbox.ViewCount]]:
    async with db.unit_of_work() as session:
        agent = await load_agent(session, agent_id)
        with statements(db) as counted:
            counts = await handoff.inbox.view_counts(session, agent=agent)
        with statements(db) as listed:
            items = await handoff.inbox.inbox(session, agent=agent, view="queue")
        assert all(i.shopper_name and i.shopper_name.startswith("Shopper ") for i in items)
        return len(counted), len(listed), counts


async def test_badges_are_one_query_and_names_are_batched(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    await named_conversations(db, 2)
    counted_small, listed_small, counts = await costs(db, ana)
    assert counted_small == 1
    assert {c.view: (c.conversations, c.unread) for c in counts}["queue"] == (2, 2)
    await named_conversations(db, 6, start=2)
    await shopper_says(db, "again", sender="s-3", message_id="s-3:again")
    async with db.unit_of_work() as session:
        bo = await make_agent(db, "bo@shop.test")
        await handoff.inbox.take(session, agent=await load_agent(session, bo),
                                 conversation_id=(await handoff.inbox.inbox(
                                     session, agent=await load_agent(session, bo), view="queue"))[0].conversation_id)
    counted_big, listed_big, counts = await costs(db, ana)
    assert counted_big == 1
    assert listed_big == listed_small  # the same statements for 8 conversations as for 2
    by_view = {c.view: (c.conversations, c.unread) for c in counts}
    assert by_view == {"queue": (7, 8), "mine": (0, 0), "unassigned": (7, 8), "open": (8, 9)}


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", data_dir=tmp_path, security={"secret_key": "test-secret-key-0123456789"},
                        whatsapp={"templates": {"order_update": "en_US"}, "window_hours": 24})
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def test_whatsapp_window_is_part_of_the_conversation_view(client: httpx.AsyncClient, db: Database) -> None:
    from bot.channels import repository as contacts

    await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "hola", channel="whatsapp", sender="4915112345678", human=True)
    web_id = await shopper_says(db, "hello", sender="web-1", human=True)
    async with db.unit_of_work() as session:
        await handoff.inbox.sync_escalations(session)
        await contacts.touch_contact(session, channel="whatsapp", sender_id="4915112345678",
                                    at=utcnow() - timedelta(hours=25))
    signed = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    assert signed.status_code == 200
    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}")).json()
    assert view["reply_window"]["open"] is False
    assert view["reply_window"]["templates"] == ["order_update"]
    assert view["reply_window"]["closes_at"] is not None
    assert (await client.get(f"/api/v1/agent/conversations/{web_id}")).json()["reply_window"] is None
    script = (await client.get("/agent/static/console.js")).text
    assert "/whatsapp-window" not in script  # the console no longer asks on every reload

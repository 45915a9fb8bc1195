"""A shopper's message while a person has the conversation: stored and pushed to every console (through Redis, on
another process too) without waiting for the NLU (it is not parsed while a person has it); the watcher does not tell
it twice."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np

from api.http.agent.realtime import AgentEvents, InboxWatcher, announce_inbound
from bot import BotDeps, handoff
from bot.channels.runtime import ChannelRuntime
from bot.conversations.models import ConversationMessage
from bot.messages import InboundMessage
from kit.db import Database
from kit.settings import Settings
from nlu.service import ParseResult
from tests.bot.handoff.conftest import shopper_says

REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


class GatedParser:
    """An NLU that answers only once the test opens the gate (a busy encoder), counting what it read."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.read: list[str] = []

    async def parse(self, text: str) -> ParseResult:
        self.read.append(text)
        await self.gate.wait()
        return ParseResult(text=text, intent="order_status", confidence=0.87, intent_ranking=(), entities=(),
                           language="en", embedding=np.zeros(0, np.float32), out_of_scope=False)


def drained(queue: asyncio.Queue[dict[str, object]]) -> list[dict[str, object]]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def test_held_message_reaches_consoles_before_its_parse(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    parser = GatedParser()
    runtime = ChannelRuntime(settings=settings, database=db)
    runtime._deps = BotDeps(settings=settings, nlu=parser)
    process_a, process_b = AgentEvents(REDIS_URL), AgentEvents(REDIS_URL)
    ready = asyncio.Event()
    relay = asyncio.create_task(process_b.run_subscriber(ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=5)
        runtime.listeners.append(announce_inbound(process_a))
        console_on_b = process_b.subscribe(handoff.DEFAULT_SHOP_ID)
        watcher_b = InboxWatcher(db, process_b)
        conversation_id = await shopper_says(db, "a person please", sender="s-held", human=True)
        await watcher_b.run_once()  # starts from the newest message
        drained(console_on_b)

        inbound = InboundMessage(channel="webchat", sender_id="s-held", message_id="held-1",
                                 text="where is my parcel?")
        result = await asyncio.wait_for(runtime.handle(inbound, delivered_inline=True), timeout=5)
        assert result.held_for_person
        assert result.replies == []
        event = await asyncio.wait_for(console_on_b.get(), timeout=1.0)  # the other process, before any parse
        assert event == {"type": "shopper_message", "conversation_id": conversation_id,
                         "message_id": result.message_id, "preview": "where is my parcel?"}
        async with db.unit_of_work() as session:
            stored = await session.get(ConversationMessage, result.message_id)
            assert stored is not None
            assert stored.text == "where is my parcel?"
            assert stored.nlu is None
        await watcher_b.run_once()  # finds it in the database too: not told twice
        assert [e for e in drained(console_on_b) if e["type"] == "shopper_message"] == []

        assert parser.read == []  # a person has it: the NLU never held it up
        again = await runtime.handle(inbound, delivered_inline=True)  # a repeat delivery: nothing announced
        assert again.duplicate
        await asyncio.sleep(0.2)
        assert drained(console_on_b) == []
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await process_a.close()
        await process_b.close()


async def test_bot_conversation_is_parsed_before_it_is_stored(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    parser = GatedParser()
    runtime = ChannelRuntime(settings=settings, database=db)
    runtime._deps = BotDeps(settings=settings, nlu=parser)
    told: list[int] = []

    async def listener(stored: object) -> None:
        told.append(stored.message_id)  # type: ignore[attr-defined]

    runtime.listeners.append(listener)
    inbound = InboundMessage(channel="webchat", sender_id="s-bot", message_id="bot-1", text="where is my parcel?")
    handling = asyncio.create_task(runtime.handle(inbound, delivered_inline=True))
    await asyncio.sleep(0.3)
    assert not handling.done()
    assert told == []
    parser.gate.set()
    result = await asyncio.wait_for(handling, timeout=10)
    assert not result.held_for_person
    assert told == [result.message_id]

"""What every channel shares in one process: the engine's dependencies and the unit of work per inbound event."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import (
    BotDeps,
    HandleResult,
    build_bot_deps,
    conversation_history,
    handle_inbound,
    held_by_person,
    understand,
)
from bot.messages import ChannelName, InboundMessage
from kit.db import Database
from kit.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredInbound:
    """A shopper's message just committed."""

    conversation_id: int
    message_id: int
    text: str
    held_for_person: bool


InboundListener = Callable[[StoredInbound], Awaitable[None]]


class ChannelRuntime:
    """Builds the engine's dependencies once (lazily, so importing the app costs nothing) and runs inbound events."""

    def __init__(self, *, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self._deps: BotDeps | None = None
        self._lock = asyncio.Lock()
        self.outbox_wakeup = asyncio.Event()
        # SQLite has one writer and the engine's unit of work holds it throughout: queue here, in order,
        # rather than in SQLite's busy handler (which polls, is unfair, and gives up after its timeout).
        # On PostgreSQL the bound keeps inbound work within the connection pool.
        slots = 1 if database.engine.dialect.name == "sqlite" else max(1, settings.database.pool_size)
        self._units_of_work = asyncio.Semaphore(slots)
        # Told after each inbound commits (the agent console's push); a failing listener never fails the turn.
        self.listeners: list[InboundListener] = []

    async def deps(self) -> BotDeps:
        if self._deps is None:
            async with self._lock:
                if self._deps is None:
                    self._deps = await build_bot_deps(self.settings, self.database)
        return self._deps

    async def handle(self, inbound: InboundMessage, *, delivered_inline: bool = False) -> HandleResult:
        """One unit of work per inbound event; `delivered_inline` when the caller hands the replies over itself."""
        deps = await self.deps()
        # While a person has the conversation the bot does not answer: the message is stored and shown to the agent
        # at once, unparsed (measured: parsing it later cost more CPU than it was worth under load). Otherwise the
        # NLU runs first, outside the transaction: concurrent messages share its micro-batches and no connection
        # (no SQLite write lock) is held while the encoder works.
        held = await self._held_by_person(inbound)
        parsed = None if held else await understand(inbound, deps=deps)
        async with self._units_of_work, self.database.unit_of_work() as session:
            result = await handle_inbound(session, inbound, deps=deps, parsed=parsed,
                                          delivered_inline=delivered_inline, parse_first=not held)
        if not delivered_inline and result.replies:
            self.outbox_wakeup.set()
        if result.message_id is not None and not result.duplicate:
            stored = StoredInbound(conversation_id=result.conversation_id, message_id=result.message_id,
                                   text=inbound.text or inbound.payload or "", held_for_person=result.held_for_person)
            await self._tell(stored)
        return result

    async def _held_by_person(self, inbound: InboundMessage) -> bool:
        async with self.database.sessions() as session:  # a read: waits for no writer
            return await held_by_person(session, channel=inbound.channel, sender_id=inbound.sender_id)

    async def _tell(self, stored: StoredInbound) -> None:
        for listener in list(self.listeners):
            try:
                await listener(stored)
            except Exception:  # the message is stored; consoles also find it by their own watcher
                log.warning("inbound listener failed", exc_info=True)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A channel's own small write (a receipt, a contact's last message) in the same queue as the turns."""
        async with self._units_of_work, self.database.unit_of_work() as session:
            yield session

    async def history(self, *, channel: ChannelName, sender_id: str, limit: int = 50) -> list[Any]:
        async with self._units_of_work, self.database.unit_of_work() as session:
            return list(await conversation_history(session, channel=channel, sender_id=sender_id, limit=limit))

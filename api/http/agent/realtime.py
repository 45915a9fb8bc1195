"""Real time for the agent console: Server-Sent Events at /api/v1/agent/events.

Events are small JSON hints ({"type": "inbox"}, {"type": "conversation", "conversation_id"},
{"type": "escalation", "conversation_id", "reason"} for a conversation newly waiting for a person,
{"type": "shopper_message", "conversation_id", "message_id", "preview"}, or {"type": "settings"} when a
supervisor changed the escalation rules or canned responses); the console refetches what changed and notifies
the agent. On shutdown every stream gets {"type": "reconnect"} and ends, so the server stops at once (uvicorn
waits for open responses) and consoles reconnect, to another process or to this one once it is back.
Agent actions are published through Redis pub/sub when settings.redis.url is set
(every API process relays them to its own consoles) and in-process otherwise. A shopper's message is pushed the
same way the moment the channel runtime has committed it (`announce_inbound`), before the NLU reads it when a
person has the conversation. Each process's own watcher (while a console is connected to it) also polls the
database every 250 ms, for what no process announced (the bot's replies, hand-offs, another writer) and as the
safety net when Redis is down; it opens inbox threads for conversations handed to a person and round-robins waiting
conversations. A message announced and also found by the watcher reaches each console once (`_announced`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse

from api import accounts
from api.deps import get_database
from bot import handoff
from bot.channels.runtime import StoredInbound
from kit.db import Database
from kit.errors import ShopTalkError
from kit.pubsub import RedisPubSub
from kit.settings import Settings
from kit.tasks import cancel_and_wait

log = logging.getLogger(__name__)
router = APIRouter(tags=["agent console"])

REDIS_CHANNEL = "shoptalk:agent-events"
WATCH_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
PREVIEW_CHARS = 80
Event = dict[str, Any]
RECONNECT: Event = {"type": "reconnect"}
ANNOUNCED_KEPT = 5000  # shopper message ids remembered per process, so the watcher does not tell them twice
_HUBS: weakref.WeakSet[AgentEvents] = weakref.WeakSet()


class AgentEvents:
    """Console subscribers of this process by shop, plus the Redis fan-out across processes when configured."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self._queues: dict[int, set[asyncio.Queue[Event]]] = {}
        self.pubsub = RedisPubSub(redis_url, name="agent events") if redis_url else None
        self.closing = False
        # Set while this process's watcher follows the database: a stream says hello only then, and the console
        # refetches on hello, so nothing falls between its first load and the first event.
        self.watching = asyncio.Event()
        self._announced: OrderedDict[int, None] = OrderedDict()
        _HUBS.add(self)

    def announced(self, message_id: int) -> bool:
        return message_id in self._announced

    def _first_time(self, event: Event) -> bool:
        """False for a shopper message already told to this process's consoles (pushed, then found by the watcher,
        or the other way round)."""
        if event.get("type") != "shopper_message":
            return True
        message_id = int(event["message_id"])
        if message_id in self._announced:
            return False
        self._announced[message_id] = None
        while len(self._announced) > ANNOUNCED_KEPT:
            self._announced.popitem(last=False)
        return True

    def tell_to_reconnect(self) -> None:
        """The server is stopping: every console stream ends after telling its console to reconnect."""
        self.closing = True
        for queues in list(self._queues.values()):
            for queue in list(queues):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(RECONNECT)

    def subscribe(self, shop_id: int) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self._queues.setdefault(shop_id, set()).add(queue)
        return queue

    def unsubscribe(self, shop_id: int, queue: asyncio.Queue[Event]) -> None:
        queues = self._queues.get(shop_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._queues[shop_id]

    def subscribers(self, shop_id: int) -> int:
        return len(self._queues.get(shop_id, ()))

    def subscribers_anywhere(self) -> bool:
        return any(self._queues.values())

    def push_local(self, shop_id: int, event: Event) -> None:
        if not self._first_time(event):
            return
        for queue in list(self._queues.get(shop_id, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled console refetches on reconnect
                queue.put_nowait(event)

    async def publish(self, shop_id: int, event: Event) -> None:
        """Tell every console of the shop, on whichever process it is connected."""
        if self.pubsub is not None:
            try:
                await self.pubsub.publish(REDIS_CHANNEL, json.dumps({"shop_id": shop_id, "event": event}))
                return
            except Exception:  # Redis down: at least this process's consoles hear it; the watcher covers the rest
                log.warning("agent events: Redis publish failed; delivering locally", exc_info=True)
        self.push_local(shop_id, event)

    async def run_subscriber(self, ready: asyncio.Event | None = None) -> None:
        """Relay events published by any process to this process's consoles (runs until cancelled; a lost Redis
        connection is made again, and consoles refetch on the next event)."""
        if self.pubsub is None:
            if ready is not None:
                ready.set()
            return

        async def relay(channel: str, data: str) -> None:
            message = json.loads(data)
            self.push_local(int(message["shop_id"]), message["event"])

        await self.pubsub.listen(relay, channels=[REDIS_CHANNEL], ready=ready)

    async def close(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.close()


LOOKBACK_IDS = 200


class _Cursor:
    """Where a watcher is in an id sequence. On PostgreSQL ids are handed out at insert but seen at commit, so a
    lower id can appear after a higher one: each read looks LOOKBACK_IDS back and skips the ids already seen."""

    def __init__(self) -> None:
        self.high: int | None = None
        self.seen: set[int] = set()

    def start(self, newest: int) -> None:
        self.high = newest
        self.seen = set(range(max(0, newest - LOOKBACK_IDS), newest + 1))  # what was there before we looked

    @property
    def read_from(self) -> int:
        assert self.high is not None
        return max(0, self.high - LOOKBACK_IDS)

    def fresh(self, ids: list[int]) -> list[int]:
        new = [i for i in ids if i not in self.seen]
        self.seen.update(new)
        if ids:
            self.high = max(self.high or 0, *ids)
        floor = self.read_from
        self.seen = {i for i in self.seen if i >= floor}
        return new


class InboxWatcher:
    """Polls the database for what the engine did (new messages, handoffs) and tells this process's consoles."""

    def __init__(self, database: Database, events: AgentEvents) -> None:
        self.database = database
        self.events = events
        self.messages = _Cursor()
        self.escalations = _Cursor()

    def reset(self) -> None:
        self.messages = _Cursor()
        self.escalations = _Cursor()
        self.events.watching.clear()

    async def run_once(self) -> None:
        async with self.database.unit_of_work() as session:
            if self.messages.high is None:
                self.messages.start(await handoff.inbox.newest_message_id(session))
            if self.escalations.high is None:
                self.escalations.start(await handoff.inbox.newest_event_id(session))
                self.events.watching.set()
            opened = await handoff.inbox.sync_escalations(session)
            recent = await handoff.inbox.escalations_after(session, after_id=self.escalations.read_from)
            new_events = set(self.escalations.fresh([event_id for event_id, _, _ in recent]))
            escalated = [e for e in recent if e[0] in new_events]
            read = await handoff.inbox.messages_after(session, after_id=self.messages.read_from)
            new_messages = set(self.messages.fresh([m.id for m in read]))
            # Messages a runtime announced when it stored them have been told (and their conversation refetched).
            fresh = [m for m in read if m.id in new_messages and not self.events.announced(m.id)]
            changed: set[int] = set(opened)
            for message in fresh:
                changed.add(message.conversation_id)
            assigned = await handoff.inbox.auto_assign(session)
        shop = handoff.DEFAULT_SHOP_ID
        if opened or fresh:
            self.events.push_local(shop, {"type": "inbox"})
        for conversation_id in sorted(changed):
            self.events.push_local(shop, {"type": "conversation", "conversation_id": conversation_id})
        for message in fresh:
            if message.direction == "in":  # every process's watcher sees it: each tells its own consoles
                self.events.push_local(shop, shopper_message_event(
                    conversation_id=message.conversation_id, message_id=message.id,
                    text=message.text or message.payload or ""))
        for _, conversation_id, reason in escalated:
            # From the inbox's event log, whoever opened the thread (the engine, a watcher, another process).
            self.events.push_local(shop, {"type": "escalation", "conversation_id": conversation_id,
                                          "reason": reason})
        for conversation_id, agent_id in assigned:
            # Other processes' watchers do not see an assignment, so it travels like an agent action.
            await self.events.publish(shop, {"type": "conversation", "conversation_id": conversation_id,
                                             "assignee_id": agent_id})
        if assigned:
            await self.events.publish(shop, {"type": "inbox"})

    async def run(self) -> None:
        while True:
            if not self.events.subscribers_anywhere():
                # No console on this process: nothing to show, and no online agent to assign to from here.
                self.reset()
                await asyncio.sleep(WATCH_SECONDS)
                continue
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the console's real time
                log.exception("agent inbox watcher failed; retrying")
            await asyncio.sleep(WATCH_SECONDS)


def shopper_message_event(*, conversation_id: int, message_id: int, text: str) -> Event:
    return {"type": "shopper_message", "conversation_id": conversation_id, "message_id": message_id,
            "preview": text[:PREVIEW_CHARS]}


def announce_inbound(events: AgentEvents) -> Callable[[StoredInbound], Coroutine[Any, Any, None]]:
    """The channel runtime's listener: a shopper's message goes to every console (all processes, through Redis)
    as soon as it is committed."""

    async def announce(stored: StoredInbound) -> None:
        shop = handoff.DEFAULT_SHOP_ID
        await events.publish(shop, shopper_message_event(conversation_id=stored.conversation_id,
                                                         message_id=stored.message_id, text=stored.text))

    return announce


def events_of(app: FastAPI) -> AgentEvents:
    events: AgentEvents | None = getattr(app.state, "agent_events", None)
    if events is None:
        settings: Settings = app.state.settings
        events = AgentEvents(settings.redis.url)
        app.state.agent_events = events
    return events


async def start(app: FastAPI) -> None:
    events = events_of(app)
    ready = asyncio.Event()
    tasks = [asyncio.create_task(events.run_subscriber(ready), name="agent-events-redis"),
             asyncio.create_task(InboxWatcher(app.state.database, events).run(), name="agent-inbox-watcher")]
    app.state.agent_realtime_tasks = tasks
    channels = getattr(app.state, "channels", None)
    if channels is not None:
        channels.runtime.listeners.append(announce_inbound(events))
    install_shutdown_notice()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), timeout=2.0)


def _announce_shutdown_before(shutdown: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Any]:
    async def shutdown_with_notice(self: Any, *args: Any, **kwargs: Any) -> None:
        for hub in list(_HUBS):
            hub.tell_to_reconnect()
        await shutdown(self, *args, **kwargs)

    shutdown_with_notice.shoptalk_announces = True  # type: ignore[attr-defined]
    return shutdown_with_notice


def install_shutdown_notice() -> None:
    """uvicorn waits for every open response before it shuts the app down, and an event stream never ends by
    itself: so its shutdown first tells our streams to end (once per process; the same hook sse-starlette uses)."""
    try:
        import uvicorn
    except ImportError:  # served by another ASGI server: its own shutdown timeout applies
        return
    if not getattr(uvicorn.Server.shutdown, "shoptalk_announces", False):
        uvicorn.Server.shutdown = _announce_shutdown_before(uvicorn.Server.shutdown)  # type: ignore[method-assign]


async def stop(app: FastAPI) -> None:
    for task in getattr(app.state, "agent_realtime_tasks", []):
        await cancel_and_wait(task)
    events: AgentEvents | None = getattr(app.state, "agent_events", None)
    if events is not None:
        await events.close()


def _frame(event: Event) -> str:
    return f"data: {json.dumps(event)}\n\n"


@router.get("/api/v1/agent/events", summary="Server-Sent Events for the agent console (session cookie)",
            response_class=StreamingResponse)
async def agent_events(request: Request) -> StreamingResponse:
    from api.http.agent.console import SESSION_COOKIE

    database = get_database(request)
    token = request.cookies.get(SESSION_COOKIE)
    async with database.unit_of_work() as session:
        agent = await handoff.agents.agent_for_session(session, token=token)
        accounts.require(agent.role, "console")  # staff: 403 before the stream opens
        await handoff.agents.check_in(session, agent_id=agent.id)
    shop_id, agent_id = agent.shop_id, agent.id
    events = events_of(request.app)

    async def stream() -> AsyncIterator[str]:
        queue = events.subscribe(shop_id)
        try:
            if events.closing:
                yield _frame(RECONNECT)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(events.watching.wait(), timeout=2.0)
            yield _frame({"type": "hello", "agent_id": agent_id})
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    try:
                        async with database.unit_of_work() as session:
                            await handoff.agents.agent_for_session(session, token=token)
                            await handoff.agents.check_in(session, agent_id=agent_id)
                    except ShopTalkError as error:
                        yield _frame({"type": "signed_out", "code": error.code})
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield _frame(event)
                if event is RECONNECT or event.get("type") == "reconnect":
                    return
        finally:
            events.unsubscribe(shop_id, queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

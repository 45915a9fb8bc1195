"""The agent inbox: a conversation's thread (opened when the bot hands off), the inbox views, race-free
assignment (take over, assign or transfer, round-robin), hand back, resolve, and the queue notice."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff._rows import rowcount
from bot.handoff.agents import ONLINE_SECONDS, AgentRepository, supervises
from bot.handoff.csat import ask_rating
from bot.handoff.errors import (
    AgentNotFound,
    AlreadyResolved,
    AlreadyTaken,
    BadAgentInput,
    NotInHumanMode,
    NotSupervisor,
    NotYours,
    ThreadNotFound,
)
from bot.handoff.models import DEFAULT_SHOP_ID, Agent, ConversationRead, HandoffThread, ThreadEvent
from bot.handoff.notices import tell_shopper
from bot.handoff.rules import rules_of
from kit.clock import as_utc, utcnow

VIEWS = ("queue", "unassigned", "mine", "open", "resolved", "bot")  # queue = mine + unassigned (the default)
DEFAULT_HANDLE_SECONDS = 300.0


class InboxItem(BaseModel):
    conversation_id: int
    channel: str
    sender_id: str
    shopper_name: str | None = None
    mode: str
    status: str
    reason: str | None
    assignee_id: int | None
    assignee_name: str | None = None
    has_draft: bool = False
    last_text: str | None = None
    last_author: str | None = None
    opened_at: datetime | None
    updated_at: datetime
    shopper_email: str | None = None
    unread: int = 0  # shopper messages after this agent's read marker
    # Since when the shopper waits for an answer: their oldest message after the last agent/bot reply (or None).
    waiting_since: datetime | None = None


class ViewCount(BaseModel):
    view: str
    conversations: int
    unread: int


@dataclass(frozen=True)
class QueueNotice:
    """What to tell a shopper who waits for a person (rendered from the reply catalogs)."""

    open_now: bool
    position: int | None = None
    expected_wait_minutes: int | None = None
    opens_at: datetime | None = None
    timezone: str | None = None

    def render(self, locale: str | None) -> str:
        language = i18n.supported_locale(locale) or i18n.DEFAULT_LOCALE
        if self.open_now:
            minutes = self.expected_wait_minutes or 1
            return i18n.t(language, "queued", n=minutes, position=self.position or 1, minutes=minutes)
        opens = i18n.format_weekday_time(language, self.opens_at) if self.opens_at else "-"
        return i18n.t(language, "offline", opens_at=opens, timezone=self.timezone or "")


# Reads of chat turns, built once (SQLAlchemy reuses their cache key and compiled form).
_UNASSIGNED_QUEUE = select(HandoffThread).where(
    HandoffThread.shop_id == bindparam("shop_id"), HandoffThread.status == "open", HandoffThread.assignee_id.is_(None),
).order_by(HandoffThread.opened_at, HandoffThread.conversation_id)


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def thread(self, conversation_id: int) -> HandoffThread | None:
        return await self.session.get(HandoffThread, conversation_id)

    async def claim(self, *, conversation_id: int, shop_id: int, agent_id: int, now: datetime) -> bool:
        """The one statement that decides who gets a conversation: only a still-unowned open thread moves."""
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open", HandoffThread.assignee_id.is_(None))
            .values(assignee_id=agent_id, assigned_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def move(self, *, conversation_id: int, shop_id: int, from_agent_id: int | None, to_agent_id: int,
                   now: datetime) -> bool:
        """Transfer: only moves when the thread is still open and still where the caller saw it."""
        owner = (HandoffThread.assignee_id.is_(None) if from_agent_id is None
                 else HandoffThread.assignee_id == from_agent_id)
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open", owner)
            .values(assignee_id=to_agent_id, assigned_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def close(self, *, conversation_id: int, shop_id: int, status: str, agent_id: int,
                    now: datetime) -> bool:
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open")
            .values(status=status, resolved_at=now, resolved_by=agent_id, draft_text=None,
                    draft_for_message_id=None, updated_at=now)
            .execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def reopen(self, *, conversation_id: int, reason: str | None, now: datetime) -> bool:
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.status != "open")
            .values(status="open", assignee_id=None, assigned_at=None, resolved_at=None, resolved_by=None,
                    reason=reason, opened_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def mark_assigned(self, agent_id: int, now: datetime) -> None:
        await self.session.execute(update(Agent).where(Agent.id == agent_id).values(last_assigned_at=now))

    async def human_conversations_without_open_thread(self, limit: int = 200) -> Sequence[Conversation]:
        open_thread = select(HandoffThread.conversation_id).where(HandoffThread.status == "open")
        return (await self.session.scalars(
            select(Conversation).where(Conversation.mode == "human", Conversation.id.not_in(open_thread))
            .order_by(Conversation.id).limit(limit))).all()

    async def threads(self, *, shop_id: int, status: str | None, assignee_id: int | None = None,
                      unassigned: bool = False, mine_or_unassigned: int | None = None,
                      limit: int = 200) -> Sequence[tuple[HandoffThread, Conversation]]:
        query = (select(HandoffThread, Conversation)
                 .join(Conversation, Conversation.id == HandoffThread.conversation_id)
                 .where(HandoffThread.shop_id == shop_id))
        if status is not None:
            query = query.where(HandoffThread.status == status)
        if assignee_id is not None:
            query = query.where(HandoffThread.assignee_id == assignee_id)
        if unassigned:
            query = query.where(HandoffThread.assignee_id.is_(None))
        if mine_or_unassigned is not None:
            query = query.where(or_(HandoffThread.assignee_id.is_(None),
                                    HandoffThread.assignee_id == mine_or_unassigned))
        order = HandoffThread.resolved_at.desc() if status == "resolved" else HandoffThread.opened_at
        rows = (await self.session.execute(query.order_by(order, HandoffThread.conversation_id).limit(limit))).all()
        return [(row[0], row[1]) for row in rows]

    async def bot_conversations(self, *, limit: int = 50) -> Sequence[Conversation]:
        """Conversations the bot is answering and nobody has an open thread on (candidates to take over)."""
        open_thread = select(HandoffThread.conversation_id).where(HandoffThread.status == "open")
        return (await self.session.scalars(
            select(Conversation).where(Conversation.mode == "bot", Conversation.id.not_in(open_thread))
            .order_by(Conversation.updated_at.desc()).limit(limit))).all()

    async def unassigned_queue(self, shop_id: int) -> Sequence[HandoffThread]:
        return (await self.session.scalars(_UNASSIGNED_QUEUE, {"shop_id": shop_id})).all()

    async def recent_handle_seconds(self, shop_id: int, limit: int = 20) -> list[float]:
        rows = (await self.session.execute(
            select(HandoffThread.opened_at, HandoffThread.resolved_at)
            .where(HandoffThread.shop_id == shop_id, HandoffThread.status == "resolved",
                   HandoffThread.resolved_at.is_not(None))
            .order_by(HandoffThread.resolved_at.desc()).limit(limit))).all()
        return [(resolved - opened).total_seconds() for opened, resolved in rows if resolved and opened]

    async def last_shopper_messages(self, conversation_ids: Sequence[int]) -> dict[int, ConversationMessage]:
        if not conversation_ids:
            return {}
        # The shopper's latest words are what an agent triages by, not the bot's "a person is coming".
        newest = (select(func.max(ConversationMessage.id))
                  .where(ConversationMessage.conversation_id.in_(conversation_ids),
                         ConversationMessage.direction == "in")
                  .group_by(ConversationMessage.conversation_id))
        rows = (await self.session.scalars(select(ConversationMessage).where(ConversationMessage.id.in_(newest)))).all()
        return {row.conversation_id: row for row in rows}

    async def messages_after(self, after_id: int, limit: int = 500) -> Sequence[ConversationMessage]:
        return (await self.session.scalars(select(ConversationMessage).where(ConversationMessage.id > after_id)
                                           .order_by(ConversationMessage.id).limit(limit))).all()

    async def add_event(self, *, conversation_id: int, kind: str, agent_id: int | None,
                        target_agent_id: int | None = None, detail: str | None = None) -> None:
        self.session.add(ThreadEvent(conversation_id=conversation_id, kind=kind, agent_id=agent_id,
                                     target_agent_id=target_agent_id, detail=detail, created_at=utcnow()))

    async def unread_counts(self, agent_id: int, conversation_ids: Sequence[int]) -> dict[int, int]:
        """Shopper messages after the agent's read marker, per conversation."""
        if not conversation_ids:
            return {}
        read = (select(ConversationRead.conversation_id, ConversationRead.last_read_message_id)
                .where(ConversationRead.agent_id == agent_id).subquery())
        rows = (await self.session.execute(
            select(ConversationMessage.conversation_id, func.count(ConversationMessage.id))
            .outerjoin(read, read.c.conversation_id == ConversationMessage.conversation_id)
            .where(ConversationMessage.conversation_id.in_(conversation_ids), ConversationMessage.direction == "in",
                   ConversationMessage.id > func.coalesce(read.c.last_read_message_id, 0))
            .group_by(ConversationMessage.conversation_id))).all()
        return {int(row[0]): int(row[1]) for row in rows}

    async def open_threads_with_unread(self, *, shop_id: int, agent_id: int,
                                       limit: int = 200) -> list[tuple[int | None, int]]:
        """(assignee, the agent's unread shopper messages) of each open thread of the shop, in one query (the same
        200 oldest threads a view lists)."""
        threads = (select(HandoffThread.conversation_id, HandoffThread.assignee_id)
                   .where(HandoffThread.shop_id == shop_id, HandoffThread.status == "open")
                   .order_by(HandoffThread.opened_at, HandoffThread.conversation_id).limit(limit).subquery())
        read = (select(ConversationRead.conversation_id, ConversationRead.last_read_message_id)
                .where(ConversationRead.agent_id == agent_id).subquery())
        unread = (select(func.count(ConversationMessage.id))
                  .where(ConversationMessage.conversation_id == threads.c.conversation_id,
                         ConversationMessage.direction == "in",
                         ConversationMessage.id > func.coalesce(read.c.last_read_message_id, 0))
                  .correlate(threads, read).scalar_subquery())
        rows = (await self.session.execute(
            select(threads.c.assignee_id, unread)
            .outerjoin(read, read.c.conversation_id == threads.c.conversation_id))).all()
        return [(None if row[0] is None else int(row[0]), int(row[1])) for row in rows]

    async def waiting_since(self, conversation_ids: Sequence[int]) -> dict[int, datetime]:
        """The shopper's oldest message after the last reply a person or the bot gave (system notices don't
        count), per conversation that waits."""
        if not conversation_ids:
            return {}
        last_out = (select(ConversationMessage.conversation_id, func.max(ConversationMessage.id).label("last_out"))
                    .where(ConversationMessage.conversation_id.in_(conversation_ids),
                           ConversationMessage.direction == "out", ConversationMessage.author == "agent")
                    .group_by(ConversationMessage.conversation_id).subquery())
        rows = (await self.session.execute(
            select(ConversationMessage.conversation_id, func.min(ConversationMessage.created_at))
            .outerjoin(last_out, last_out.c.conversation_id == ConversationMessage.conversation_id)
            .where(ConversationMessage.conversation_id.in_(conversation_ids), ConversationMessage.direction == "in",
                   ConversationMessage.id > func.coalesce(last_out.c.last_out, 0))
            .group_by(ConversationMessage.conversation_id))).all()
        return {int(row[0]): as_utc(row[1]) for row in rows}

    async def mark_read(self, *, agent_id: int, conversation_id: int, message_id: int) -> None:
        read = await self.session.get(ConversationRead, (agent_id, conversation_id))
        if read is None:
            try:
                async with self.session.begin_nested():
                    self.session.add(ConversationRead(agent_id=agent_id, conversation_id=conversation_id,
                                                      last_read_message_id=message_id, updated_at=utcnow()))
                    await self.session.flush()
                return
            except IntegrityError:  # the same agent's other tab marked it at the same moment
                read = await self.session.get(ConversationRead, (agent_id, conversation_id))
                assert read is not None
        if message_id > read.last_read_message_id:
            read.last_read_message_id = message_id
            read.updated_at = utcnow()
            await self.session.flush()

    async def newest_event_id(self) -> int:
        return int(await self.session.scalar(select(func.max(ThreadEvent.id))) or 0)

    async def events_after(self, after_id: int, *, kind: str, limit: int = 200) -> Sequence[ThreadEvent]:
        return (await self.session.scalars(select(ThreadEvent)
                                           .where(ThreadEvent.id > after_id, ThreadEvent.kind == kind)
                                           .order_by(ThreadEvent.id).limit(limit))).all()

    async def newest_message_id(self) -> int:
        return int(await self.session.scalar(select(func.max(ConversationMessage.id))) or 0)


async def queue_notice(session: AsyncSession, *, conversation_id: int,
                       shop_id: int = DEFAULT_SHOP_ID) -> QueueNotice:
    """Place in the queue and expected wait, or when the team is back (offline hours)."""
    rules = await rules_of(session, shop_id=shop_id)
    now = utcnow()
    hours = rules.opening_hours
    if not hours.is_open(now):
        return QueueNotice(open_now=False, opens_at=hours.next_opening(now), timezone=hours.timezone)
    repo = InboxRepository(session)
    queue = [t.conversation_id for t in await repo.unassigned_queue(shop_id)]
    position = queue.index(conversation_id) + 1 if conversation_id in queue else len(queue) + 1
    handled = await repo.recent_handle_seconds(shop_id)
    per_conversation = sum(handled) / len(handled) if handled else DEFAULT_HANDLE_SECONDS
    online = await AgentRepository(session).online_agents(shop_id, now - timedelta(seconds=ONLINE_SECONDS))
    minutes = max(1, round(position * per_conversation / max(1, len(online)) / 60))
    return QueueNotice(open_now=True, position=position, expected_wait_minutes=minutes)


async def open_handoff(session: AsyncSession, *, conversation_id: int, reason: str | None,
                       shop_id: int = DEFAULT_SHOP_ID) -> HandoffThread:
    """Put a conversation in the agent inbox (idempotent; reopens a resolved one)."""
    repo = InboxRepository(session)
    thread = await repo.thread(conversation_id)
    now = utcnow()
    if thread is None:
        try:
            async with session.begin_nested():
                thread = HandoffThread(conversation_id=conversation_id, shop_id=shop_id, status="open", reason=reason,
                                       opened_at=now, updated_at=now)
                session.add(thread)
                await session.flush()
        except IntegrityError:
            thread = await repo.thread(conversation_id)  # another process opened it first
            assert thread is not None
            return thread
        await repo.add_event(conversation_id=conversation_id, kind="escalated", agent_id=None, detail=reason)
        return thread
    if thread.status != "open":
        if await repo.reopen(conversation_id=conversation_id, reason=reason, now=now):
            await repo.add_event(conversation_id=conversation_id, kind="escalated", agent_id=None, detail=reason)
        await session.refresh(thread)
    return thread


async def sync_escalations(session: AsyncSession) -> list[int]:
    """Open inbox threads for conversations the engine handed to a person; returns their ids."""
    repo = InboxRepository(session)
    opened = []
    for conversation in await repo.human_conversations_without_open_thread():
        thread = await repo.thread(conversation.id)
        await open_handoff(session, conversation_id=conversation.id, reason=(thread.reason if thread else None)
                           or conversation.queue or "handoff",
                           shop_id=thread.shop_id if thread else DEFAULT_SHOP_ID)
        opened.append(conversation.id)
    return opened


async def newest_event_id(session: AsyncSession) -> int:
    """The id of the newest inbox event (0 when none): where a watcher starts."""
    return await InboxRepository(session).newest_event_id()


async def escalations_after(session: AsyncSession, *, after_id: int) -> list[tuple[int, int, str | None]]:
    """(event id, conversation, why) of conversations handed to a person after event `after_id`, oldest first."""
    return [(e.id, e.conversation_id, e.detail) for e in await InboxRepository(session).events_after(
        after_id, kind="escalated")]


async def newest_message_id(session: AsyncSession) -> int:
    """The id of the newest stored message of any conversation (0 when none): where a watcher starts."""
    return await InboxRepository(session).newest_message_id()


async def messages_after(session: AsyncSession, *, after_id: int, limit: int = 500) -> list[ConversationMessage]:
    """Messages stored after `after_id`, oldest first (what a watcher has not seen yet)."""
    return list(await InboxRepository(session).messages_after(after_id, limit))


async def inbox(session: AsyncSession, *, agent: Agent, view: str) -> list[InboxItem]:
    """One view of the agent's shop: queue (mine + unassigned, the default), unassigned, mine, open (all open),
    resolved, or bot (take-over candidates); each with the agent's unread count and the shopper's waiting time."""
    if view not in VIEWS:
        raise BadAgentInput(f"view must be one of {', '.join(VIEWS)}.", code="unknown_view")
    repo = InboxRepository(session)
    names = {a.id: a.name for a in await AgentRepository(session).agents_of_shop(agent.shop_id)}
    if view == "bot":
        if agent.shop_id != DEFAULT_SHOP_ID:
            return []
        rows = await repo.bot_conversations()
        last = await repo.last_shopper_messages([c.id for c in rows])
        people = await _people(session, rows)
        return [InboxItem(conversation_id=c.id, channel=c.channel, sender_id=c.sender_id, mode=c.mode, status="bot",
                          reason=None, assignee_id=None, last_text=_preview(last.get(c.id)),
                          last_author=last[c.id].author if c.id in last else None, opened_at=None,
                          updated_at=c.updated_at, shopper_name=people.get(c.id, (None, None))[0],
                          shopper_email=people.get(c.id, (None, None))[1]) for c in rows]
    status = "resolved" if view == "resolved" else "open"
    pairs = await repo.threads(shop_id=agent.shop_id, status=status,
                               assignee_id=agent.id if view == "mine" else None, unassigned=view == "unassigned",
                               mine_or_unassigned=agent.id if view == "queue" else None)
    ids = [c.id for _, c in pairs]
    last = await repo.last_shopper_messages(ids)
    unread = await repo.unread_counts(agent.id, ids)
    waiting = await repo.waiting_since(ids) if status == "open" else {}
    people = await _people(session, [c for _, c in pairs])
    items = []
    for t, c in pairs:
        since = waiting.get(c.id)
        items.append(InboxItem(
            conversation_id=c.id, channel=c.channel, sender_id=c.sender_id, mode=c.mode, status=t.status,
            reason=t.reason, assignee_id=t.assignee_id, assignee_name=names.get(t.assignee_id or 0),
            has_draft=t.draft_text is not None, last_text=_preview(last.get(c.id)),
            last_author=last[c.id].author if c.id in last else None, opened_at=t.opened_at,
            updated_at=max(as_utc(t.updated_at), as_utc(c.updated_at)),
            shopper_name=people.get(c.id, (None, None))[0], shopper_email=people.get(c.id, (None, None))[1],
            unread=unread.get(c.id, 0),
            waiting_since=max(since, as_utc(t.opened_at)) if since is not None else None))
    return items


async def view_counts(session: AsyncSession, *, agent: Agent) -> list[ViewCount]:
    """Per inbox view: how many conversations and how many unread shopper messages for this agent."""
    open_threads = await InboxRepository(session).open_threads_with_unread(shop_id=agent.shop_id, agent_id=agent.id)
    counts = []
    for view in ("queue", "mine", "unassigned", "open"):
        rows = [unread for assignee, unread in open_threads if _in_view(view, assignee, agent.id)]
        counts.append(ViewCount(view=view, conversations=len(rows), unread=sum(rows)))
    return counts


def _in_view(view: str, assignee: int | None, me: int) -> bool:
    """Which open threads an inbox view lists (as `InboxRepository.threads` selects them)."""
    if view == "queue":
        return assignee is None or assignee == me
    if view == "mine":
        return assignee == me
    if view == "unassigned":
        return assignee is None
    return True


async def mark_read(session: AsyncSession, *, agent: Agent, conversation_id: int, message_id: int) -> None:
    """The agent has seen the conversation up to `message_id` (never moves backwards)."""
    await thread_of_shop(session, agent, conversation_id)
    await InboxRepository(session).mark_read(agent_id=agent.id, conversation_id=conversation_id,
                                             message_id=message_id)


async def _people(session: AsyncSession, rows: Sequence[Conversation]) -> dict[int, tuple[str | None, str | None]]:
    """The shopper's name and e-mail per conversation (what an agent recognises, not a channel id)."""
    from commerce.shoppers import service as shoppers

    known = await shoppers.shoppers_by_id(session, shopper_ids=[c.shopper_id for c in rows if c.shopper_id is not None])
    found: dict[int, tuple[str | None, str | None]] = {}
    for conversation in rows:
        name, email = None, conversation.email
        shopper = known.get(conversation.shopper_id) if conversation.shopper_id is not None else None
        if shopper is not None:
            name, email = shopper.name, shopper.email or email
        found[conversation.id] = (name, email)
    return found


def _preview(message: ConversationMessage | None) -> str | None:
    if message is None:
        return None
    value = message.text or message.payload or ""
    return value[:140]


async def thread_of_shop(session: AsyncSession, agent: Agent, conversation_id: int) -> HandoffThread | None:
    """The thread if it exists; ThreadNotFound when the conversation is another shop's or does not exist."""
    repo = InboxRepository(session)
    thread = await repo.thread(conversation_id)
    if thread is not None:
        if thread.shop_id != agent.shop_id:
            raise ThreadNotFound(f"No conversation {conversation_id}.")  # never confirm another shop's data
        return thread
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or agent.shop_id != DEFAULT_SHOP_ID:
        raise ThreadNotFound(f"No conversation {conversation_id}.")
    return None


def require_owner(agent: Agent, thread: HandoffThread | None, *, supervisor_may: bool) -> HandoffThread:
    """The open thread the agent owns (or, with `supervisor_may`, any open one for a supervisor)."""
    if thread is None:
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    if thread.status != "open":
        raise AlreadyResolved("The conversation is already resolved.")
    if thread.assignee_id != agent.id and not (supervisor_may and supervises(agent.role)):
        if thread.assignee_id is None:
            raise NotYours("Take the conversation before answering it.", code="take_it_first")
        raise NotYours("This conversation belongs to another agent.")
    return thread


async def take(session: AsyncSession, *, agent: Agent, conversation_id: int) -> HandoffThread:
    """Take a conversation (waiting in the queue, or taken over from the bot); the bot goes silent at once.

    Exactly one agent wins a race: the assignment is a conditional UPDATE on an unowned open thread."""
    thread = await thread_of_shop(session, agent, conversation_id)
    if thread is None or thread.status != "open":
        thread = await open_handoff(session, conversation_id=conversation_id, reason="taken_over",
                                    shop_id=agent.shop_id)
    repo = InboxRepository(session)
    now = utcnow()
    if not await repo.claim(conversation_id=conversation_id, shop_id=agent.shop_id, agent_id=agent.id, now=now):
        await session.refresh(thread)
        if thread.assignee_id != agent.id:
            raise AlreadyTaken("Another agent already took this conversation.",
                               assignee_id=thread.assignee_id)
        return thread
    await repo.mark_assigned(agent.id, now)
    await repo.add_event(conversation_id=conversation_id, kind="taken", agent_id=agent.id)
    conversation = await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="agent")
    await tell_shopper(session, conversation=conversation, notice="joined", agent_id=agent.id, agent_name=agent.name)
    await session.refresh(thread)
    return thread


async def assign(session: AsyncSession, *, by: Agent, conversation_id: int, agent_id: int) -> HandoffThread:
    """Manual assignment (supervisor) or transfer (the owner hands their conversation to a colleague)."""
    repo = InboxRepository(session)
    thread = await thread_of_shop(session, by, conversation_id)
    if thread is None or thread.status != "open":
        raise AlreadyResolved("Only an open conversation can be assigned.") if thread else \
            ThreadNotFound(f"Conversation {conversation_id} is not in the inbox.")
    target = await AgentRepository(session).agent(agent_id)
    if target is None or target.shop_id != by.shop_id or target.disabled_at is not None:
        raise AgentNotFound(f"No agent {agent_id} in this shop.")
    if not supervises(by.role) and thread.assignee_id != by.id:
        raise NotSupervisor("Only a supervisor can assign a conversation that is not yours.")
    now = utcnow()
    if not await repo.move(conversation_id=conversation_id, shop_id=by.shop_id, from_agent_id=thread.assignee_id,
                           to_agent_id=agent_id, now=now):
        raise AlreadyTaken("The conversation changed hands meanwhile; reload it.")
    await repo.mark_assigned(agent_id, now)
    await repo.add_event(conversation_id=conversation_id, kind="transferred" if thread.assignee_id == by.id else
                         "assigned", agent_id=by.id, target_agent_id=agent_id)
    conversation = await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="agent")
    await tell_shopper(session, conversation=conversation, notice="joined", agent_id=target.id, agent_name=target.name)
    await session.refresh(thread)
    return thread


async def auto_assign(session: AsyncSession, *, shop_id: int = DEFAULT_SHOP_ID) -> list[tuple[int, int]]:
    """Round-robin the waiting conversations over online agents below their capacity; (conversation, agent)."""
    rules = await rules_of(session, shop_id=shop_id)
    if not rules.auto_assign:
        return []
    repo = InboxRepository(session)
    waiting = await repo.unassigned_queue(shop_id)
    if not waiting:
        return []
    now = utcnow()
    agent_repo = AgentRepository(session)
    agents = list(await agent_repo.online_agents(shop_id, now - timedelta(seconds=ONLINE_SECONDS)))
    load = await agent_repo.open_load(shop_id)
    done: list[tuple[int, int]] = []
    for thread in waiting:
        free = [a for a in agents if load.get(a.id, 0) < a.capacity]
        if not free:
            break
        agent = free[0]  # longest since their last assignment
        if await repo.claim(conversation_id=thread.conversation_id, shop_id=shop_id, agent_id=agent.id, now=now):
            await repo.mark_assigned(agent.id, now)
            await repo.add_event(conversation_id=thread.conversation_id, kind="assigned", agent_id=None,
                                 target_agent_id=agent.id, detail="round_robin")
            conversation = await conversations.set_mode(session, conversation_id=thread.conversation_id,
                                                        mode="human", queue="agent")
            await tell_shopper(session, conversation=conversation, notice="joined", agent_id=agent.id,
                               agent_name=agent.name)
            load[agent.id] = load.get(agent.id, 0) + 1
            done.append((thread.conversation_id, agent.id))
        agents.remove(agent)
        agents.append(agent)
    return done


async def hand_back(session: AsyncSession, *, agent: Agent, conversation_id: int) -> HandoffThread:
    """Give the conversation back to the bot, which answers the shopper's next message again."""
    thread = require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=True)
    if not await InboxRepository(session).close(conversation_id=conversation_id, shop_id=agent.shop_id,
                                                status="returned", agent_id=agent.id, now=utcnow()):
        raise AlreadyResolved("The conversation is already resolved.")
    await InboxRepository(session).add_event(conversation_id=conversation_id, kind="handed_back", agent_id=agent.id)
    conversation = await conversations.set_mode(session, conversation_id=conversation_id, mode="bot")
    await tell_shopper(session, conversation=conversation, notice="returned", agent_id=agent.id, agent_name=agent.name)
    await session.refresh(thread)
    return thread


async def resolve(session: AsyncSession, *, agent: Agent, conversation_id: int, ask_csat: bool = True) -> HandoffThread:
    """Close the conversation, give it back to the bot and ask the shopper for a 1-5 rating."""
    thread = require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=True)
    owner = thread.assignee_id
    repo = InboxRepository(session)
    now = utcnow()
    if not await repo.close(conversation_id=conversation_id, shop_id=agent.shop_id, status="resolved",
                            agent_id=agent.id, now=now):
        raise AlreadyResolved("The conversation is already resolved.")
    await repo.add_event(conversation_id=conversation_id, kind="resolved", agent_id=agent.id)
    conversation = await conversations.set_mode(session, conversation_id=conversation_id, mode="bot")
    await tell_shopper(session, conversation=conversation, notice="returned", agent_id=agent.id, agent_name=agent.name)
    if ask_csat:
        await ask_rating(session, conversation=conversation, shop_id=agent.shop_id, rated_agent_id=owner or agent.id,
                         sent_by=agent.id, now=now)
    await session.refresh(thread)
    return thread

"""Handoff rules: agent accounts and console sessions, the inbox, race-free assignment, agent replies
through the outbox, CSAT, escalation triggers, and what agents teach the bot."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.errors import (
    AgentExists,
    AgentNotFound,
    AlreadyResolved,
    AlreadyTaken,
    BadAgentInput,
    CannedNotFound,
    CsrfRejected,
    NoDraft,
    NotInHumanMode,
    NotSignedIn,
    NotSupervisor,
    NotYours,
    SessionExpired,
    ThreadNotFound,
    WrongCredentials,
)
from bot.handoff.models import (
    Agent,
    AgentReply,
    AgentSession,
    CannedResponse,
    CsatSurvey,
    FaqDraftFromAgent,
    HandoffThread,
    IntentCorrection,
    PrivateNote,
    ShopHandoffRules,
)
from bot.handoff.repository import HandoffRepository
from bot.messages import Button, OutboundMessage
from kit.clock import as_utc, utcnow
from kit.outbox import DEAD, DELIVERED, SUPERSEDED, enqueue

log = logging.getLogger(__name__)

DEFAULT_SHOP_ID = 1  # conversations carry no shop yet: the demo is one shop
ROLES = ("agent", "supervisor")
VIEWS = ("unassigned", "mine", "open", "resolved", "bot")
ONLINE_SECONDS = 45  # an agent whose console has not checked in for this long is offline
MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 4000
DEFAULT_HANDLE_SECONDS = 300.0
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
CANNED_VARIABLE = re.compile(r"\{([a-z_]+)\}")
CSAT_PAYLOAD = re.compile(r"^csat:([1-5])$")
# OWASP's argon2id minimum; a login costs ~20 ms on this hardware.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not-a-password-anyone-has")
ThreadStatus = Literal["open", "resolved", "returned"]
MixedReply = Literal["answer_and_offer", "draft_for_agent"]


# ---------------------------------------------------------------------------------------------- accounts

def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_agent(session: AsyncSession, *, email: str, name: str, role: str, password: str,
                       shop_id: int = DEFAULT_SHOP_ID, capacity: int = 3) -> Agent:
    """Create a console account; the password is stored as an argon2id hash only."""
    email = email.strip()
    if not EMAIL.match(email):
        raise BadAgentInput(f"{email!r} is not an email address.", code="invalid_email")
    if role not in ROLES:
        raise BadAgentInput(f"role must be one of {', '.join(ROLES)}.", code="unknown_role")
    if len(password) < 10:
        raise BadAgentInput("The password needs at least 10 characters.", code="weak_password")
    if not name.strip():
        raise BadAgentInput("The agent needs a name.", code="missing_name")
    if not 1 <= capacity <= 100:
        raise BadAgentInput("capacity must be between 1 and 100.", code="invalid_capacity")
    repo = HandoffRepository(session)
    if await repo.agent_by_email(email) is not None:
        raise AgentExists(f"An agent with {email} exists.")
    agent = Agent(shop_id=shop_id, email=email, name=name.strip(), role=role, password_hash=hash_password(password),
                  capacity=capacity, available=True, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(agent)
            await session.flush()
    except IntegrityError as exc:
        raise AgentExists(f"An agent with {email} exists.") from exc
    return agent


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(session: AsyncSession, *, email: str, password: str, ttl_seconds: int) -> tuple[Agent, str]:
    """Check the password and open a console session; returns the agent and the session token (shown once)."""
    agent = await HandoffRepository(session).agent_by_email(email.strip())
    try:
        # The same argon2 work whether or not the email exists, so timing does not reveal accounts.
        _hasher.verify(agent.password_hash if agent else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WrongCredentials("Wrong email or password.") from exc
    if agent is None or agent.disabled_at is not None:
        raise WrongCredentials("Wrong email or password.")
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(AgentSession(token_hash=_token_hash(token), agent_id=agent.id, created_at=now,
                             expires_at=now + timedelta(seconds=ttl_seconds)))
    await session.flush()
    return agent, token


async def sign_out(session: AsyncSession, *, token: str) -> None:
    row = await HandoffRepository(session).session_by_hash(_token_hash(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()


async def agent_for_session(session: AsyncSession, *, token: str | None) -> Agent:
    """The signed-in agent of a session token; NotSignedIn or SessionExpired otherwise."""
    if not token:
        raise NotSignedIn("Sign in to the agent console.")
    repo = HandoffRepository(session)
    row = await repo.session_by_hash(_token_hash(token))
    if row is None or row.revoked_at is not None:
        raise NotSignedIn("This console session is not valid; sign in again.")
    if as_utc(row.expires_at) <= utcnow():
        raise SessionExpired("The console session has expired; sign in again.")
    agent = await repo.agent(row.agent_id)
    if agent is None or agent.disabled_at is not None:
        raise NotSignedIn("This account is disabled.")
    return agent


def csrf_token(*, session_token: str, secret: str) -> str:
    """The session's CSRF token: derived, so the console can fetch it again after a reload."""
    return hmac.new(secret.encode(), f"csrf:{session_token}".encode(), hashlib.sha256).hexdigest()


def check_csrf(*, session_token: str, given: str | None, secret: str) -> None:
    if not given or not hmac.compare_digest(given, csrf_token(session_token=session_token, secret=secret)):
        raise CsrfRejected("Send the session's CSRF token in the X-CSRF-Token header.")


async def check_in(session: AsyncSession, *, agent_id: int) -> None:
    """Mark the agent's console as connected (round-robin only assigns to agents seen recently)."""
    await HandoffRepository(session).touch_agent(agent_id, utcnow())


async def set_available(session: AsyncSession, *, agent: Agent, available: bool) -> Agent:
    agent.available = available
    await session.flush()
    return agent


async def agent_by_email(session: AsyncSession, *, email: str) -> Agent | None:
    """The account with this sign-in email (any case), or None."""
    return await HandoffRepository(session).agent_by_email(email.strip())


async def list_agents(session: AsyncSession, *, shop_id: int) -> list[AgentCard]:
    repo = HandoffRepository(session)
    load = await repo.open_load(shop_id)
    since = utcnow() - timedelta(seconds=ONLINE_SECONDS)
    return [AgentCard(id=a.id, name=a.name, role=a.role, capacity=a.capacity, open=load.get(a.id, 0),
                      online=bool(a.available and a.last_seen_at and as_utc(a.last_seen_at) >= since))
            for a in await repo.agents_of_shop(shop_id)]


class AgentCard(BaseModel):
    id: int
    name: str
    role: str
    capacity: int
    open: int
    online: bool


# ---------------------------------------------------------------------------------------- escalation rules

class OpeningHours(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    always_open: bool = True
    timezone: str = "Europe/Berlin"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday")
    # Wall-clock times in `timezone`, without an offset: RFC 3339 "partial-time", not "time" (which needs one).
    opens: time = Field(default=time(9, 0), json_schema_extra={"format": "partial-time"})
    closes: time = Field(default=time(18, 0), json_schema_extra={"format": "partial-time"})

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _a_real_window(self) -> OpeningHours:
        if not self.always_open:
            if not self.days:
                raise ValueError("pick at least one opening day (or always open)")
            if self.opens >= self.closes:
                raise ValueError("the team must open before it closes (opens < closes, same day)")
        return self

    def is_open(self, when: datetime) -> bool:
        if self.always_open:
            return True
        local = as_utc(when).astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.opens <= local.time().replace(tzinfo=None) < self.closes

    def next_opening(self, when: datetime) -> datetime | None:
        if self.always_open or not self.days:
            return None
        zone = ZoneInfo(self.timezone)
        local = as_utc(when).astimezone(zone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            start = datetime.combine(day, self.opens, tzinfo=zone)
            if day.weekday() in self.days and start > local:
                return start
        return None


DEFAULT_LOW_CONFIDENCE = 0.35  # the bot's own line (PolicyThresholds.confirm_at) when the shop sets none
MAX_INTENT_CHOICES = 200


class EscalationRules(BaseModel):
    """What sends a shopper to a person, per shop; every trigger can be turned off.

    The engine's own triggers (a request, the complaint intent, not understanding N messages in a row) read
    `on_request`, `on_complaint`, `low_confidence_in_a_row` and `low_confidence_below` through
    `bot.policy.shop_triggers`; the rest are applied after the bot's turn (`engine_hooks.after_bot`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_request: bool = Field(default=True, description="the shopper asks for a person (words, /human, menu)")
    low_confidence_in_a_row: int = Field(default=2, ge=0, le=10, description="0 turns it off")
    low_confidence_below: float | None = Field(default=None, ge=0, le=1,
                                               description="None: the bot's own line (0.35 by default)")
    on_complaint: bool = True
    on_negative_wording: bool = True
    order_value_above: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"))
    order_value_currency: str = Field(default="EUR", description="ISO 4217; order totals are converted to it")
    unhelpful_in_a_row: int = Field(default=2, ge=0, le=10, description="'did this help? no' answers; 0 = off")
    mixed_reply_default: MixedReply = "answer_and_offer"
    mixed_reply_by_intent: dict[str, MixedReply] = Field(default_factory=dict)
    auto_assign: bool = True
    opening_hours: OpeningHours = Field(default_factory=OpeningHours)

    @field_validator("order_value_currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        from commerce.money import known_currencies

        code = value.strip().upper()
        if code not in known_currencies():
            raise ValueError(f"{value!r} is not an ISO 4217 currency")
        return code

    @field_validator("mixed_reply_by_intent")
    @classmethod
    def _intent_names(cls, value: dict[str, MixedReply]) -> dict[str, MixedReply]:
        if len(value) > MAX_INTENT_CHOICES:
            raise ValueError(f"at most {MAX_INTENT_CHOICES} intents")
        bad = sorted(name for name in value if not INTENT_NAME.match(name))
        if bad:
            raise ValueError(f"not intent names (lowercase letters, digits, '_'): {', '.join(bad[:5])}")
        return value

    @property
    def offers_a_person(self) -> bool:
        """True when some middle-confidence answer carries a "Talk to a person" button."""
        choices = {self.mixed_reply_default, *self.mixed_reply_by_intent.values()}
        return "answer_and_offer" in choices


NEGATIVE_WORDS = ("terrible", "awful", "worst", "scam", "useless", "ridiculous", "disgusting", "furious",
                  "rip off", "rip-off", "fraud", "never again", "unacceptable", "angry", "hate",
                  "垃圾", "骗子", "太差", "差劲", "气死", "恶心", "骗人", "退钱", "愤怒")


def strongly_negative(message: str) -> bool:
    """Strongly negative wording: a word from the list, or shouting (mostly capitals with '!!')."""
    lowered = message.lower()
    if any(word in lowered for word in NEGATIVE_WORDS):
        return True
    letters = [c for c in message if c.isalpha() and c.isascii()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.8 and "!!" in message


@dataclass(frozen=True)
class EscalationSignals:
    """What the engine knows about the current message and the turns before it."""

    text: str
    intent: str
    confidence: float
    low_confidence_before: int = 0  # consecutive earlier messages below the threshold
    unhelpful_before: int = 0  # consecutive earlier "did this help? no" answers, counting this one
    asked_for_person: bool = False
    # Value of the order the message is about, converted to the rules' `order_value_currency`
    # (`order_value_in`); `order_value_unknown` when it could not be converted (no fresh rate).
    order_value: Decimal | None = None
    order_value_unknown: bool = False


def should_escalate(rules: EscalationRules, signals: EscalationSignals) -> str | None:
    """The trigger that sends this shopper to a person (its name), or None when the bot keeps answering."""
    if rules.on_request and (signals.asked_for_person or signals.intent == "human_handoff"):
        return "asked_for_person"
    if rules.on_complaint and signals.intent == "complaint":
        return "complaint"
    if rules.on_negative_wording and strongly_negative(signals.text):
        return "negative_wording"
    if rules.order_value_above is not None and (
            signals.order_value_unknown
            or (signals.order_value is not None and signals.order_value > rules.order_value_above)):
        return "order_value"  # an order we cannot value goes to a person: the safer side
    below = DEFAULT_LOW_CONFIDENCE if rules.low_confidence_below is None else rules.low_confidence_below
    if (rules.low_confidence_in_a_row and signals.confidence < below
            and signals.low_confidence_before + 1 >= rules.low_confidence_in_a_row):
        return "low_confidence"
    if rules.unhelpful_in_a_row and signals.unhelpful_before >= rules.unhelpful_in_a_row:
        return "not_helpful"
    return None


async def order_value_in(session: AsyncSession, *, amount: Decimal, currency: str, target: str) -> Decimal | None:
    """An order's value in the threshold's currency, through commerce's cross-border `convert` at the
    mid-market rate (the shop's shopper-facing FX markup taken out); None when no fresh rate is known
    (logged; the caller escalates)."""
    from sqlalchemy.exc import DBAPIError

    from commerce.cross_border import convert
    from kit.errors import ShopTalkError

    if currency.upper() == target.upper():
        return amount
    try:
        # A savepoint: a failed rate lookup must not poison the shopper's transaction on PostgreSQL.
        async with session.begin_nested():
            conversion = await convert(session, amount=amount, from_currency=currency, to_currency=target)
    except (ShopTalkError, DBAPIError) as error:
        code = error.code if isinstance(error, ShopTalkError) else "database_error"
        log.warning("order value %s %s cannot be compared with the %s threshold (%s); escalating", amount,
                    currency, target, code)
        return None
    return conversion.amount / (1 + conversion.markup_percent / 100)


def mixed_reply_for(rules: EscalationRules, intent: str) -> MixedReply:
    """For a middle-confidence answer: answer and offer a person, or keep the bot's draft for an agent."""
    return rules.mixed_reply_by_intent.get(intent, rules.mixed_reply_default)


# Rules per shop, cached per database (keyed weakly by the engine's pool: a disposed engine takes its entries).
# A cached copy is trusted for RULES_RECHECK_SECONDS; after that one primary-key read of `updated_at` tells
# whether it moved (another process saved), and only then is the row parsed again. A save in this process makes every
# read check the stamp for a while (the save may not be committed yet, or may roll back).
RULES_RECHECK_SECONDS = 1.0
_UNSETTLED_SECONDS = 10.0


@dataclass
class _CachedRules:
    stamp: datetime | None
    rules: EscalationRules
    trusted_until: float


_rules_cache: weakref.WeakKeyDictionary[Any, dict[int, _CachedRules]] = weakref.WeakKeyDictionary()
_rules_unsettled: weakref.WeakKeyDictionary[Any, dict[int, float]] = weakref.WeakKeyDictionary()


def _cache_key(session: AsyncSession) -> Any:
    # The engine's connection pool: shared by the engine's option copies (every unit of work makes one),
    # and gone (with its cache entries) when the engine is disposed.
    return session.get_bind().engine.pool


async def rules_of(session: AsyncSession, *, shop_id: int = DEFAULT_SHOP_ID) -> EscalationRules:
    """The shop's escalation rules (defaults when it saved none); cheap to call on every message."""
    bind = _cache_key(session)
    per_shop = _rules_cache.setdefault(bind, {})
    cached = per_shop.get(shop_id)
    now = monotonic()
    if cached is not None and now < cached.trusted_until:
        return cached.rules
    repo = HandoffRepository(session)
    stamp = await repo.rules_stamp(shop_id)
    if cached is None or cached.stamp is None or stamp is None or as_utc(cached.stamp) != as_utc(stamp):
        row = await repo.rules(shop_id, fresh=True)  # never the identity map's older copy
        rules = _stored_rules(row.rules, shop_id) if row is not None else EscalationRules()
        stamp = row.updated_at if row is not None else None
    else:
        rules = cached.rules
    unsettled = _rules_unsettled.get(bind, {}).get(shop_id, 0.0) > now
    per_shop[shop_id] = _CachedRules(stamp=stamp, rules=rules,
                                     trusted_until=now if unsettled else now + RULES_RECHECK_SECONDS)
    return rules


def _stored_rules(data: dict[str, Any], shop_id: int) -> EscalationRules:
    try:
        return EscalationRules.model_validate(data)
    except ValidationError as error:
        # Saved before a rule was tightened (or edited by hand): every trigger on, the safer side, and say so
        # rather than failing every shopper message.
        log.error("shop %s: stored escalation rules are invalid (%s problems); using the defaults until a "
                  "supervisor saves them again", shop_id, error.error_count())
        return EscalationRules()


def forget_cached_rules() -> None:
    """Drop every cached copy (tests, or after restoring a database under a running process)."""
    _rules_cache.clear()
    _rules_unsettled.clear()


async def save_rules(session: AsyncSession, *, shop_id: int, rules: EscalationRules) -> EscalationRules:
    repo = HandoffRepository(session)
    row = await repo.rules(shop_id)
    data = rules.model_dump(mode="json")
    if row is None:
        session.add(ShopHandoffRules(shop_id=shop_id, rules=data, updated_at=utcnow()))
    else:
        row.rules = data
        row.updated_at = utcnow()
    await session.flush()
    bind = _cache_key(session)
    _rules_cache.get(bind, {}).pop(shop_id, None)
    _rules_unsettled.setdefault(bind, {})[shop_id] = monotonic() + _UNSETTLED_SECONDS
    return rules


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


async def queue_notice(session: AsyncSession, *, conversation_id: int,
                       shop_id: int = DEFAULT_SHOP_ID) -> QueueNotice:
    """Place in the queue and expected wait, or when the team is back (offline hours)."""
    rules = await rules_of(session, shop_id=shop_id)
    now = utcnow()
    hours = rules.opening_hours
    if not hours.is_open(now):
        return QueueNotice(open_now=False, opens_at=hours.next_opening(now), timezone=hours.timezone)
    repo = HandoffRepository(session)
    queue = [t.conversation_id for t in await repo.unassigned_queue(shop_id)]
    position = queue.index(conversation_id) + 1 if conversation_id in queue else len(queue) + 1
    handled = await repo.recent_handle_seconds(shop_id)
    per_conversation = sum(handled) / len(handled) if handled else DEFAULT_HANDLE_SECONDS
    online = await repo.online_agents(shop_id, now - timedelta(seconds=ONLINE_SECONDS))
    minutes = max(1, round(position * per_conversation / max(1, len(online)) / 60))
    return QueueNotice(open_now=True, position=position, expected_wait_minutes=minutes)


# ----------------------------------------------------------------------------------------------- inbox

async def open_handoff(session: AsyncSession, *, conversation_id: int, reason: str | None,
                       shop_id: int = DEFAULT_SHOP_ID) -> HandoffThread:
    """Put a conversation in the agent inbox (idempotent; reopens a resolved one)."""
    repo = HandoffRepository(session)
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
    if thread.status != "open":
        await repo.reopen(conversation_id=conversation_id, reason=reason, now=now)
        await session.refresh(thread)
    return thread


async def sync_escalations(session: AsyncSession) -> list[int]:
    """Open inbox threads for conversations the engine handed to a person; returns their ids."""
    repo = HandoffRepository(session)
    opened = []
    for conversation in await repo.human_conversations_without_open_thread():
        thread = await repo.thread(conversation.id)
        await open_handoff(session, conversation_id=conversation.id, reason=(thread.reason if thread else None)
                           or conversation.queue or "handoff",
                           shop_id=thread.shop_id if thread else DEFAULT_SHOP_ID)
        opened.append(conversation.id)
    return opened


async def newest_message_id(session: AsyncSession) -> int:
    """The id of the newest stored message of any conversation (0 when none): where a watcher starts."""
    return await HandoffRepository(session).newest_message_id()


async def messages_after(session: AsyncSession, *, after_id: int, limit: int = 500) -> list[ConversationMessage]:
    """Messages stored after `after_id`, oldest first (what a watcher has not seen yet)."""
    return list(await HandoffRepository(session).messages_after(after_id, limit))


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


async def inbox(session: AsyncSession, *, agent: Agent, view: str) -> list[InboxItem]:
    """One view of the agent's shop: unassigned, mine, open (all open), resolved, or bot (take-over candidates)."""
    if view not in VIEWS:
        raise BadAgentInput(f"view must be one of {', '.join(VIEWS)}.", code="unknown_view")
    repo = HandoffRepository(session)
    names = {a.id: a.name for a in await repo.agents_of_shop(agent.shop_id)}
    if view == "bot":
        if agent.shop_id != DEFAULT_SHOP_ID:
            return []
        rows = await repo.bot_conversations()
        last = await repo.last_shopper_messages([c.id for c in rows])
        return [InboxItem(conversation_id=c.id, channel=c.channel, sender_id=c.sender_id, mode=c.mode, status="bot",
                          reason=None, assignee_id=None, last_text=_preview(last.get(c.id)),
                          last_author=last[c.id].author if c.id in last else None, opened_at=None,
                          updated_at=c.updated_at) for c in rows]
    status = "resolved" if view == "resolved" else "open"
    pairs = await repo.threads(shop_id=agent.shop_id, status=status,
                               assignee_id=agent.id if view == "mine" else None, unassigned=view == "unassigned")
    last = await repo.last_shopper_messages([c.id for _, c in pairs])
    return [InboxItem(conversation_id=c.id, channel=c.channel, sender_id=c.sender_id, mode=c.mode, status=t.status,
                      reason=t.reason, assignee_id=t.assignee_id, assignee_name=names.get(t.assignee_id or 0),
                      has_draft=t.draft_text is not None, last_text=_preview(last.get(c.id)),
                      last_author=last[c.id].author if c.id in last else None, opened_at=t.opened_at,
                      updated_at=max(as_utc(t.updated_at), as_utc(c.updated_at))) for t, c in pairs]


def _preview(message: ConversationMessage | None) -> str | None:
    if message is None:
        return None
    value = message.text or message.payload or ""
    return value[:140]


async def _thread_of_shop(session: AsyncSession, agent: Agent, conversation_id: int) -> HandoffThread | None:
    """The thread if it exists; ThreadNotFound when the conversation is another shop's or does not exist."""
    repo = HandoffRepository(session)
    thread = await repo.thread(conversation_id)
    if thread is not None:
        if thread.shop_id != agent.shop_id:
            raise ThreadNotFound(f"No conversation {conversation_id}.")  # never confirm another shop's data
        return thread
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or agent.shop_id != DEFAULT_SHOP_ID:
        raise ThreadNotFound(f"No conversation {conversation_id}.")
    return None


async def take(session: AsyncSession, *, agent: Agent, conversation_id: int) -> HandoffThread:
    """Take a conversation (waiting in the queue, or taken over from the bot); the bot goes silent at once.

    Exactly one agent wins a race: the assignment is a conditional UPDATE on an unowned open thread."""
    thread = await _thread_of_shop(session, agent, conversation_id)
    if thread is None or thread.status != "open":
        thread = await open_handoff(session, conversation_id=conversation_id, reason="taken_over",
                                    shop_id=agent.shop_id)
    repo = HandoffRepository(session)
    now = utcnow()
    if not await repo.claim(conversation_id=conversation_id, shop_id=agent.shop_id, agent_id=agent.id, now=now):
        await session.refresh(thread)
        if thread.assignee_id != agent.id:
            raise AlreadyTaken("Another agent already took this conversation.",
                               assignee_id=thread.assignee_id)
        return thread
    await repo.mark_assigned(agent.id, now)
    await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="agent")
    await session.refresh(thread)
    return thread


async def assign(session: AsyncSession, *, by: Agent, conversation_id: int, agent_id: int) -> HandoffThread:
    """Manual assignment (supervisor) or transfer (the owner hands their conversation to a colleague)."""
    repo = HandoffRepository(session)
    thread = await _thread_of_shop(session, by, conversation_id)
    if thread is None or thread.status != "open":
        raise AlreadyResolved("Only an open conversation can be assigned.") if thread else \
            ThreadNotFound(f"Conversation {conversation_id} is not in the inbox.")
    target = await repo.agent(agent_id)
    if target is None or target.shop_id != by.shop_id or target.disabled_at is not None:
        raise AgentNotFound(f"No agent {agent_id} in this shop.")
    if by.role != "supervisor" and thread.assignee_id != by.id:
        raise NotSupervisor("Only a supervisor can assign a conversation that is not yours.")
    now = utcnow()
    if not await repo.move(conversation_id=conversation_id, shop_id=by.shop_id, from_agent_id=thread.assignee_id,
                           to_agent_id=agent_id, now=now):
        raise AlreadyTaken("The conversation changed hands meanwhile; reload it.")
    await repo.mark_assigned(agent_id, now)
    await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="agent")
    await session.refresh(thread)
    return thread


async def auto_assign(session: AsyncSession, *, shop_id: int = DEFAULT_SHOP_ID) -> list[tuple[int, int]]:
    """Round-robin the waiting conversations over online agents below their capacity; (conversation, agent)."""
    rules = await rules_of(session, shop_id=shop_id)
    if not rules.auto_assign:
        return []
    repo = HandoffRepository(session)
    waiting = await repo.unassigned_queue(shop_id)
    if not waiting:
        return []
    now = utcnow()
    agents = list(await repo.online_agents(shop_id, now - timedelta(seconds=ONLINE_SECONDS)))
    load = await repo.open_load(shop_id)
    done: list[tuple[int, int]] = []
    for thread in waiting:
        free = [a for a in agents if load.get(a.id, 0) < a.capacity]
        if not free:
            break
        agent = free[0]  # longest since their last assignment
        if await repo.claim(conversation_id=thread.conversation_id, shop_id=shop_id, agent_id=agent.id, now=now):
            await repo.mark_assigned(agent.id, now)
            await conversations.set_mode(session, conversation_id=thread.conversation_id, mode="human",
                                         queue="agent")
            load[agent.id] = load.get(agent.id, 0) + 1
            done.append((thread.conversation_id, agent.id))
        agents.remove(agent)
        agents.append(agent)
    return done


def _require_owner(agent: Agent, thread: HandoffThread | None, *, supervisor_may: bool) -> HandoffThread:
    if thread is None:
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    if thread.status != "open":
        raise AlreadyResolved("The conversation is already resolved.")
    if thread.assignee_id != agent.id and not (supervisor_may and agent.role == "supervisor"):
        if thread.assignee_id is None:
            raise NotYours("Take the conversation before answering it.", code="take_it_first")
        raise NotYours("This conversation belongs to another agent.")
    return thread


async def hand_back(session: AsyncSession, *, agent: Agent, conversation_id: int) -> HandoffThread:
    """Give the conversation back to the bot, which answers the shopper's next message again."""
    thread = _require_owner(agent, await _thread_of_shop(session, agent, conversation_id), supervisor_may=True)
    if not await HandoffRepository(session).close(conversation_id=conversation_id, shop_id=agent.shop_id,
                                                  status="returned", agent_id=agent.id, now=utcnow()):
        raise AlreadyResolved("The conversation is already resolved.")
    await conversations.set_mode(session, conversation_id=conversation_id, mode="bot")
    await session.refresh(thread)
    return thread


async def resolve(session: AsyncSession, *, agent: Agent, conversation_id: int, ask_csat: bool = True) -> HandoffThread:
    """Close the conversation, give it back to the bot and ask the shopper for a 1-5 rating."""
    thread = _require_owner(agent, await _thread_of_shop(session, agent, conversation_id), supervisor_may=True)
    owner = thread.assignee_id
    repo = HandoffRepository(session)
    now = utcnow()
    if not await repo.close(conversation_id=conversation_id, shop_id=agent.shop_id, status="resolved",
                            agent_id=agent.id, now=now):
        raise AlreadyResolved("The conversation is already resolved.")
    conversation = await conversations.set_mode(session, conversation_id=conversation_id, mode="bot")
    if ask_csat:
        session.add(CsatSurvey(shop_id=agent.shop_id, conversation_id=conversation_id, agent_id=owner or agent.id,
                               asked_at=now))
        buttons = [Button(title=str(n), payload=f"csat:{n}") for n in range(1, 6)]
        await _send(session, conversation=conversation, agent_id=agent.id, source="csat", author="system",
                    text=i18n.t(conversation.locale, "csat_question"), buttons=buttons)
    await session.refresh(thread)
    return thread


async def record_csat(session: AsyncSession, *, conversation_id: int, score: int) -> bool:
    """Store the shopper's rating for the latest unanswered survey; False when none is waiting."""
    if not 1 <= score <= 5:
        raise BadAgentInput("A rating is 1 to 5.", code="invalid_rating")
    repo = HandoffRepository(session)
    survey = await repo.open_survey(conversation_id)
    return survey is not None and await repo.answer_survey(survey.id, score, utcnow())


def csat_score_of(message: ConversationMessage) -> int | None:
    """The rating a shopper message carries (a pressed 1-5 button), if any."""
    match = CSAT_PAYLOAD.match((message.payload or message.text or "").strip())
    return int(match.group(1)) if match and message.direction == "in" else None


class CsatStat(BaseModel):
    agent_id: int | None
    agent_name: str | None
    asked: int
    answered: int
    average: float | None


async def csat_per_agent(session: AsyncSession, *, shop_id: int) -> list[CsatStat]:
    return [CsatStat(agent_id=a, agent_name=n, asked=asked, answered=answered,
                     average=round(avg, 2) if avg is not None else None)
            for a, n, asked, answered, avg in await HandoffRepository(session).csat_per_agent(shop_id)]


# --------------------------------------------------------------------------------------------- replies

async def _send(session: AsyncSession, *, conversation: Conversation, agent_id: int, source: str, text: str,
                author: Literal["agent", "system"] = "agent", buttons: list[Button] | None = None) -> int:
    last_in = await HandoffRepository(session).last_inbound(conversation.id)
    reply = OutboundMessage(channel=conversation.channel, recipient_id=conversation.sender_id,
                            text=text, buttons=buttons or [], author=author)
    saved = await conversations.record_outbound(session, conversation=conversation, reply=reply,
                                                in_reply_to=last_in.id if last_in else None)
    assert saved.message_id is not None
    # The channels' outbox worker delivers it to the shopper's own channel; the key makes it exactly-once.
    await enqueue(session, topic=f"send.{conversation.channel}", payload=saved.model_dump(mode="json"),
                  idempotency_key=f"msg:{saved.message_id}")
    session.add(AgentReply(message_id=saved.message_id, conversation_id=conversation.id, agent_id=agent_id,
                           source=source, created_at=utcnow()))
    conversation.updated_at = utcnow()
    await session.flush()
    return saved.message_id


def _clean_text(text: str, *, limit: int, what: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise BadAgentInput(f"The {what} is empty.", code=f"empty_{what}")
    if len(cleaned) > limit:
        raise BadAgentInput(f"The {what} is longer than {limit} characters.", code=f"{what}_too_long")
    return cleaned


async def reply(session: AsyncSession, *, agent: Agent, conversation_id: int, text: str) -> int:
    """Send the agent's message to the shopper through the outbox; returns the stored message id."""
    body = _clean_text(text, limit=MAX_REPLY_CHARS, what="reply")
    thread = _require_owner(agent, await _thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    if conversation.mode != "human":
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    source = "own"
    if thread.draft_text is not None:
        thread.draft_text = None  # the agent answered in their own words; the bot's draft is spent
        thread.draft_for_message_id = None
    return await _send(session, conversation=conversation, agent_id=agent.id, source=source, text=body)


async def hold_draft(session: AsyncSession, *, conversation_id: int, text: str, for_message_id: int | None,
                     reason: str = "draft_for_agent", shop_id: int = DEFAULT_SHOP_ID) -> HandoffThread:
    """Mixed reply: keep the bot's answer as a draft for an agent instead of sending it (the bot stays silent)."""
    thread = await open_handoff(session, conversation_id=conversation_id, reason=reason, shop_id=shop_id)
    thread.draft_text = text
    thread.draft_for_message_id = for_message_id
    thread.updated_at = utcnow()
    await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="draft")
    await session.flush()
    return thread


async def send_draft(session: AsyncSession, *, agent: Agent, conversation_id: int, text: str | None = None) -> int:
    """Send the bot's draft with one click, or the agent's edit of it."""
    thread = _require_owner(agent, await _thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    if thread.draft_text is None:
        raise NoDraft("There is no bot draft waiting in this conversation.")
    body = _clean_text(text if text is not None else thread.draft_text, limit=MAX_REPLY_CHARS, what="reply")
    source = "draft" if body == thread.draft_text.strip() else "draft_edited"
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    thread.draft_text = None
    thread.draft_for_message_id = None
    return await _send(session, conversation=conversation, agent_id=agent.id, source=source, text=body)


# -------------------------------------------------------------------------------------- notes and canned

async def add_note(session: AsyncSession, *, agent: Agent, conversation_id: int, body: str) -> PrivateNote:
    """A private note for colleagues; never sent to the shopper."""
    text = _clean_text(body, limit=MAX_NOTE_CHARS, what="note")
    await _thread_of_shop(session, agent, conversation_id)
    note = PrivateNote(conversation_id=conversation_id, agent_id=agent.id, body=text, created_at=utcnow())
    session.add(note)
    await session.flush()
    return note


def _require_supervisor(agent: Agent, what: str) -> None:
    if agent.role != "supervisor":
        raise NotSupervisor(f"Only a supervisor can {what}.")


def _canned_fields(shortcut: str, body: str) -> tuple[str, str]:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", shortcut):
        raise BadAgentInput("A shortcut is 1-40 lowercase letters, digits, '-' or '_'.", code="invalid_shortcut")
    text = _clean_text(body, limit=MAX_REPLY_CHARS, what="canned_response")
    unknown = set(CANNED_VARIABLE.findall(text)) - set(CANNED_VARIABLES)
    if unknown:
        raise BadAgentInput(f"Unknown variables: {', '.join(sorted(unknown))}; use {', '.join(CANNED_VARIABLES)}.",
                            code="unknown_variable")
    return shortcut, text


async def create_canned(session: AsyncSession, *, agent: Agent, shortcut: str, body: str) -> CannedResponse:
    """A new canned response for the agent's shop (supervisors only; agents use them)."""
    _require_supervisor(agent, "add canned responses")
    shortcut, text = _canned_fields(shortcut, body)
    repo = HandoffRepository(session)
    if await repo.canned_by_shortcut(agent.shop_id, shortcut) is not None:
        raise BadAgentInput(f"The shortcut {shortcut!r} exists.", code="shortcut_exists", status=409)
    canned = CannedResponse(shop_id=agent.shop_id, shortcut=shortcut, body=text, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(canned)
            await session.flush()
    except IntegrityError as exc:  # the same shortcut saved by a colleague at the same moment
        raise BadAgentInput(f"The shortcut {shortcut!r} exists.", code="shortcut_exists", status=409) from exc
    return canned


async def _canned_of_shop(session: AsyncSession, agent: Agent, canned_id: int) -> CannedResponse:
    canned = await HandoffRepository(session).canned_item(canned_id)
    if canned is None or canned.shop_id != agent.shop_id:
        raise CannedNotFound(f"No canned response {canned_id}.")  # never confirm another shop's data
    return canned


async def update_canned(session: AsyncSession, *, agent: Agent, canned_id: int, shortcut: str,
                        body: str) -> CannedResponse:
    """Change a canned response's shortcut or text (supervisors only)."""
    _require_supervisor(agent, "edit canned responses")
    canned = await _canned_of_shop(session, agent, canned_id)
    shortcut, text = _canned_fields(shortcut, body)
    other = await HandoffRepository(session).canned_by_shortcut(agent.shop_id, shortcut)
    if other is not None and other.id != canned.id:
        raise BadAgentInput(f"The shortcut {shortcut!r} exists.", code="shortcut_exists", status=409)
    canned.shortcut, canned.body = shortcut, text
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise BadAgentInput(f"The shortcut {shortcut!r} exists.", code="shortcut_exists", status=409) from exc
    return canned


async def delete_canned(session: AsyncSession, *, agent: Agent, canned_id: int) -> None:
    """Remove a canned response (supervisors only); a second delete is CannedNotFound."""
    _require_supervisor(agent, "delete canned responses")
    canned = await _canned_of_shop(session, agent, canned_id)
    if not await HandoffRepository(session).delete_canned(canned.id):
        raise CannedNotFound(f"No canned response {canned_id}.")


async def canned_responses(session: AsyncSession, *, shop_id: int) -> list[CannedResponse]:
    return list(await HandoffRepository(session).canned(shop_id))


CANNED_VARIABLES = ("name", "order_number", "agent_name")


def fill_canned(body: str, values: dict[str, str | None]) -> str:
    """Replace {name}, {order_number}, {agent_name}; a variable without a value is left for the agent to fill."""
    return CANNED_VARIABLE.sub(lambda m: values.get(m.group(1)) or m.group(0), body)


# ------------------------------------------------------------------------------------ conversation view

class MessageView(BaseModel):
    id: int
    direction: str
    author: str
    kind: str
    text: str | None
    payload: str | None = None
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    policy: str | None = None
    corrected_intent: str | None = None
    agent_name: str | None = None
    delivery: str | None = None  # sending | delivered | failed (agent and system messages)
    delivery_error: str | None = None
    created_at: datetime


class NoteView(BaseModel):
    id: int
    agent_name: str
    body: str
    created_at: datetime


class OrderView(BaseModel):
    number: str
    status: str
    total: str
    currency: str
    created_at: datetime


class ShopperPanel(BaseModel):
    shopper_id: int | None
    name: str | None
    email: str | None
    country: str | None
    currency: str | None
    locale: str | None
    cart: list[dict[str, Any]]
    orders: list[OrderView]


class ConversationView(BaseModel):
    conversation_id: int
    channel: str
    sender_id: str
    mode: str
    status: str
    reason: str | None
    assignee_id: int | None
    assignee_name: str | None
    draft: str | None
    messages: list[MessageView]
    notes: list[NoteView]
    shopper: ShopperPanel
    canned_values: dict[str, str | None]


def _delivery(status: str | None) -> str | None:
    if status is None:
        return None
    if status == DELIVERED:
        return "delivered"
    if status == DEAD:
        return "failed"
    if status == SUPERSEDED:
        return "superseded"
    return "sending"


async def conversation_view(session: AsyncSession, *, agent: Agent, conversation_id: int) -> ConversationView:
    """Everything the console shows for one conversation: history with intents, the draft, notes, the shopper."""
    thread = await _thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    repo = HandoffRepository(session)
    rows = await repo.messages(conversation_id)
    outgoing = [m.id for m in rows if m.direction == "out"]
    authors = await repo.replies_by_agent(outgoing)
    events = await repo.deliveries([f"msg:{i}" for i in outgoing if i in authors])
    corrections = {c.message_id: c.intent for c in await repo.corrections(agent.shop_id)
                   if c.message_id in {m.id for m in rows}}
    messages = []
    for m in rows:
        nlu = m.nlu or {}
        intent = nlu.get("intent") if isinstance(nlu.get("intent"), dict) else None
        event = events.get(f"msg:{m.id}")
        messages.append(MessageView(
            id=m.id, direction=m.direction, author=m.author, kind=m.kind, text=m.text, payload=m.payload,
            buttons=list((m.content or {}).get("buttons") or []),
            intent=intent.get("name") if intent else None,
            confidence=float(intent["confidence"]) if intent and intent.get("confidence") is not None else None,
            policy=nlu.get("policy"), corrected_intent=corrections.get(m.id),
            agent_name=authors[m.id][1] if m.id in authors else None,
            delivery=_delivery(event.status) if event is not None else None,
            delivery_error=_safe_error(event.last_error) if event is not None and event.status == DEAD else None,
            created_at=m.created_at))
    names = {a.id: a.name for a in await repo.agents_of_shop(agent.shop_id)}
    panel = await shopper_panel(session, conversation=conversation)
    order_number = panel.orders[0].number if panel.orders else None
    return ConversationView(
        conversation_id=conversation.id, channel=conversation.channel, sender_id=conversation.sender_id,
        mode=conversation.mode, status=thread.status if thread else "bot", reason=thread.reason if thread else None,
        assignee_id=thread.assignee_id if thread else None,
        assignee_name=names.get(thread.assignee_id) if thread and thread.assignee_id else None,
        draft=thread.draft_text if thread else None, messages=messages,
        notes=[NoteView(id=n.id, agent_name=name, body=n.body, created_at=n.created_at)
               for n, name in await repo.notes(conversation_id)],
        shopper=panel, canned_values={"name": panel.name, "order_number": order_number, "agent_name": agent.name})


def _safe_error(error: str | None) -> str:
    # Only the peer's refusal reason; never anything that could carry a token or URL.
    text = (error or "delivery failed").splitlines()[0][:200]
    text = re.sub(r"^[A-Za-z_.]*Error: ", "", text)  # the outbox prefixes the exception class
    return re.sub(r"\d{6,}:[A-Za-z0-9_-]{20,}", "[token]", text)


async def shopper_panel(session: AsyncSession, *, conversation: Conversation) -> ShopperPanel:
    """Identity, country, currency, cart and recent orders, through the commerce services."""
    from commerce.orders import service as orders
    from commerce.shoppers import service as shoppers
    from kit.errors import NotFound

    name = email = None
    order_views: list[OrderView] = []
    country, currency, locale = conversation.country, conversation.currency, conversation.locale
    if conversation.shopper_id is not None:
        try:
            shopper = await shoppers.get_shopper(session, shopper_id=conversation.shopper_id)
        except NotFound:
            shopper = None
        if shopper is not None:
            name, email = shopper.name, shopper.email
            country, currency = country or shopper.country, currency or shopper.currency
            locale = locale or shopper.locale
        for order in await orders.orders_for_shopper(session, shopper_id=conversation.shopper_id, limit=5):
            order_views.append(OrderView(number=order.number, status=order.status, total=str(order.total),
                                         currency=order.currency, created_at=order.created_at))
    return ShopperPanel(shopper_id=conversation.shopper_id, name=name, email=email or conversation.email,
                        country=country, currency=currency, locale=locale, cart=list(conversation.cart or []),
                        orders=order_views)


# ---------------------------------------------------------------------------------------- learning

async def correct_intent(session: AsyncSession, *, agent: Agent, message_id: int, intent: str) -> IntentCorrection:
    """Record the right intent of a shopper message; it becomes a training example (see corrections_yaml)."""
    if not INTENT_NAME.match(intent):
        raise BadAgentInput("An intent name is lowercase letters, digits and '_'.", code="invalid_intent")
    repo = HandoffRepository(session)
    message = await repo.message(message_id)
    if message is None or message.direction != "in" or not (message.text or "").strip():
        raise BadAgentInput("Only a shopper's text message can be corrected.", code="not_a_shopper_message",
                            status=404 if message is None else 422)
    await _thread_of_shop(session, agent, message.conversation_id)
    nlu = message.nlu or {}
    predicted = nlu.get("intent", {}).get("name") if isinstance(nlu.get("intent"), dict) else None
    correction = await repo.correction_for(message_id)
    if correction is None:
        correction = IntentCorrection(shop_id=agent.shop_id, message_id=message_id, agent_id=agent.id,
                                      text=(message.text or "").strip(), predicted_intent=predicted, intent=intent,
                                      created_at=utcnow())
        session.add(correction)
    else:
        correction.intent = intent
        correction.agent_id = agent.id
    await session.flush()
    return correction


def _example_line(text: str) -> str:
    # One line per example; square brackets would read as Rasa entity annotations.
    return " ".join(text.replace("[", "(").replace("]", ")").split())


async def corrections_yaml(session: AsyncSession) -> str:
    """Every correction as Rasa NLU YAML (version 3.1), grouped by intent."""
    by_intent: dict[str, list[str]] = {}
    for correction in await HandoffRepository(session).corrections():
        line = _example_line(correction.text)
        if line and line not in by_intent.setdefault(correction.intent, []):
            by_intent[correction.intent].append(line)
    lines = ['version: "3.1"', "# Intent corrections made by agents in the console (regenerated on each one).",
             "nlu:"]
    for intent, examples in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {example}" for example in examples)
    if not by_intent:
        lines[-1] = "nlu: []"
    return "\n".join(lines) + "\n"


async def write_corrections(session: AsyncSession, *, path: Path) -> Path:
    """Write the corrections file atomically (picked up by the next `shoptalk nlu train`)."""
    content = await corrections_yaml(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    temporary.write_text(content, encoding="utf-8")
    temporary.replace(path)
    return path


async def save_faq_draft(session: AsyncSession, *, agent: Agent, question: str, answer: str,
                         language: str) -> FaqDraftFromAgent:
    """Save an agent's answer as a draft FAQ entry; the merchant publishes it in the FAQ editor."""
    from knowledge_base import create_entry
    from knowledge_base.schemas import FaqEntryIn

    q = _clean_text(question, limit=500, what="question")
    a = _clean_text(answer, limit=MAX_REPLY_CHARS, what="answer")
    entry = await create_entry(session, data=FaqEntryIn(language=language, questions=[q], answer=a,
                                                        tags=["from-agent"], status="draft"),
                               author=f"agent:{agent.id}")
    draft = FaqDraftFromAgent(shop_id=agent.shop_id, agent_id=agent.id, faq_entry_id=entry.id, question=q,
                              created_at=utcnow())
    session.add(draft)
    await session.flush()
    return draft


@dataclass
class LearningCounts:
    corrections: int
    corrections_by_intent: dict[str, int] = field(default_factory=dict)
    faq_drafts: int = 0
    faq_drafts_published: int = 0


async def learning_counts(session: AsyncSession, *, shop_id: int) -> LearningCounts:
    from kit.errors import NotFound
    from knowledge_base import get_entry

    repo = HandoffRepository(session)
    by_intent: dict[str, int] = {}
    for correction in await repo.corrections(shop_id):
        by_intent[correction.intent] = by_intent.get(correction.intent, 0) + 1
    drafts = await repo.faq_drafts(shop_id)
    published = 0
    for draft in drafts:
        try:
            entry = await get_entry(session, entry_id=draft.faq_entry_id)
        except NotFound:
            continue
        published += entry.status == "published"
    return LearningCounts(corrections=sum(by_intent.values()), corrections_by_intent=by_intent,
                          faq_drafts=len(drafts), faq_drafts_published=published)

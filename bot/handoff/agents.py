"""Accounts (shop owner, merchant staff, supervisors, agents), sign-in and sessions, CSRF, availability and who is
online. One session serves the agent console and the back office; what each role may do there is decided by
`api.accounts.PERMISSIONS` (the console itself only tells supervisors from the rest)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.errors import AgentExists, BadAgentInput, CsrfRejected, NotSignedIn, SessionExpired, WrongCredentials
from bot.handoff.models import DEFAULT_SHOP_ID, Agent, AgentSession, HandoffThread
from kit.clock import as_utc, utcnow
from kit.text import is_email_address

ROLES = ("owner", "staff", "supervisor", "agent")
CONSOLE_ROLES = ("supervisor", "agent")  # who takes conversations by round-robin
# Who supervises in the console (rules, canned responses, assigning others' conversations): the shop's owner too.
SUPERVISOR_ROLES = frozenset({"owner", "supervisor"})


def supervises(role: str) -> bool:
    return role in SUPERVISOR_ROLES
ONLINE_SECONDS = 45  # an agent whose console has not checked in for this long is offline
# OWASP's argon2id minimum; a login costs ~20 ms on this hardware.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not-a-password-anyone-has")


class AgentCard(BaseModel):
    id: int
    name: str
    role: str
    capacity: int
    open: int
    online: bool


class AgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def agent_by_email(self, email: str) -> Agent | None:
        return await self.session.scalar(select(Agent).where(func.lower(Agent.email) == email.lower()))

    async def agent(self, agent_id: int) -> Agent | None:
        return await self.session.get(Agent, agent_id)

    async def agents_of_shop(self, shop_id: int) -> Sequence[Agent]:
        return (await self.session.scalars(select(Agent).where(Agent.shop_id == shop_id, Agent.disabled_at.is_(None))
                                           .order_by(Agent.id))).all()

    async def session_by_hash(self, token_hash: str) -> AgentSession | None:
        return await self.session.scalar(select(AgentSession).where(AgentSession.token_hash == token_hash))

    async def touch_agent(self, agent_id: int, now: datetime) -> None:
        await self.session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=now))

    async def online_agents(self, shop_id: int, seen_since: datetime) -> Sequence[Agent]:
        return (await self.session.scalars(
            select(Agent).where(Agent.shop_id == shop_id, Agent.available.is_(True), Agent.disabled_at.is_(None),
                                Agent.role.in_(CONSOLE_ROLES), Agent.last_seen_at >= seen_since)
            .order_by(Agent.last_assigned_at.is_not(None), Agent.last_assigned_at, Agent.id))).all()

    async def open_load(self, shop_id: int) -> dict[int, int]:
        """Open conversations per agent of the shop."""
        rows = (await self.session.execute(
            select(HandoffThread.assignee_id, func.count())
            .where(HandoffThread.shop_id == shop_id, HandoffThread.status == "open",
                   HandoffThread.assignee_id.is_not(None))
            .group_by(HandoffThread.assignee_id))).all()
        return {agent_id: int(count) for agent_id, count in rows if agent_id is not None}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_agent(session: AsyncSession, *, email: str, name: str, role: str, password: str,
                       shop_id: int = DEFAULT_SHOP_ID, capacity: int = 3) -> Agent:
    """Create a console account; the password is stored as an argon2id hash only."""
    email = email.strip()
    if not is_email_address(email):
        raise BadAgentInput(f"{email!r} is not an email address.", code="invalid_email", field="email")
    if role not in ROLES:
        raise BadAgentInput(f"role must be one of {', '.join(ROLES)}.", code="unknown_role", field="role")
    if len(password) < 10:
        raise BadAgentInput("The password needs at least 10 characters.", code="weak_password", field="password")
    if not name.strip():
        raise BadAgentInput("The agent needs a name.", code="missing_name", field="name")
    if not 1 <= capacity <= 100:
        raise BadAgentInput("capacity must be between 1 and 100.", code="invalid_capacity", field="capacity")
    repo = AgentRepository(session)
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


async def check_password(session: AsyncSession, *, email: str, password: str) -> Agent:
    """The account whose email and password these are; WrongCredentials (one message) otherwise."""
    agent = await AgentRepository(session).agent_by_email(email.strip())
    try:
        # The same argon2 work whether or not the email exists, so timing does not reveal accounts.
        _hasher.verify(agent.password_hash if agent else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as exc:
        raise WrongCredentials("Wrong email or password.") from exc
    if agent is None or agent.disabled_at is not None:
        raise WrongCredentials("Wrong email or password.")
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    return agent


async def open_session(session: AsyncSession, *, agent: Agent, ttl_seconds: int) -> str:
    """A new session for an account whose credentials were checked; returns the token (shown once)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(AgentSession(token_hash=_token_hash(token), agent_id=agent.id, created_at=now,
                             expires_at=now + timedelta(seconds=ttl_seconds)))
    await session.flush()
    return token


async def sign_in(session: AsyncSession, *, email: str, password: str, ttl_seconds: int) -> tuple[Agent, str]:
    """Check the password and open a session (no second factor: `api.accounts.sign_in` adds it)."""
    agent = await check_password(session, email=email, password=password)
    return agent, await open_session(session, agent=agent, ttl_seconds=ttl_seconds)


async def sign_out(session: AsyncSession, *, token: str) -> None:
    row = await AgentRepository(session).session_by_hash(_token_hash(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()


async def agent_for_session(session: AsyncSession, *, token: str | None) -> Agent:
    """The signed-in agent of a session token; NotSignedIn or SessionExpired otherwise."""
    if not token:
        raise NotSignedIn("Sign in to the agent console.")
    repo = AgentRepository(session)
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
    await AgentRepository(session).touch_agent(agent_id, utcnow())


async def set_available(session: AsyncSession, *, agent: Agent, available: bool) -> Agent:
    agent.available = available
    await session.flush()
    return agent


async def agent_by_email(session: AsyncSession, *, email: str) -> Agent | None:
    """The account with this sign-in email (any case), or None."""
    return await AgentRepository(session).agent_by_email(email.strip())


async def accounts_of_shop(session: AsyncSession, *, shop_id: int) -> Sequence[Agent]:
    """Every account of the shop, disabled ones too (the back office's team page)."""
    return (await session.scalars(select(Agent).where(Agent.shop_id == shop_id).order_by(Agent.id))).all()


async def list_agents(session: AsyncSession, *, shop_id: int) -> list[AgentCard]:
    repo = AgentRepository(session)
    load = await repo.open_load(shop_id)
    since = utcnow() - timedelta(seconds=ONLINE_SECONDS)
    return [AgentCard(id=a.id, name=a.name, role=a.role, capacity=a.capacity, open=load.get(a.id, 0),
                      online=bool(a.available and a.last_seen_at and as_utc(a.last_seen_at) >= since))
            for a in await repo.agents_of_shop(shop_id)]

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import get_database
from api.models import ApiToken
from api.throttle import mark_client
from kit.clock import as_utc, utcnow
from kit.db import Database
from kit.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from kit.ids import new_token

ROLES = ("admin", "merchant", "agent", "channel")  # channel: a server posting to the REST chat channel
CHANNEL_TOKEN_CACHE_SECONDS = 5.0  # a revoked channel token stops passing within this long


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


LAST_USED_EVERY = timedelta(minutes=1)
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '2w', '90m', '45s' -> a timedelta (for token expiry)."""
    match = _DURATION.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(f"{text!r} is not a duration like 30d, 12h, 2w or 90m.", code="invalid_duration")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


async def issue_token(session: AsyncSession, *, name: str, role: str,
                      expires_in: timedelta | None = None) -> tuple[ApiToken, str]:
    """Create an API token: the row and the plain token, which is shown once (only its hash is stored)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", code="unknown_role")
    token = new_token("st")
    now = utcnow()
    row = ApiToken(name=name, role=role, token_hash=hash_token(token), created_at=now,
                   expires_at=now + expires_in if expires_in is not None else None)
    session.add(row)
    await session.flush()
    return row, token


async def create_token(session: AsyncSession, *, name: str, role: str, expires_in: timedelta | None = None) -> str:
    """Create an API token; the plain token is returned once and only its hash is stored."""
    return (await issue_token(session, name=name, role=role, expires_in=expires_in))[1]


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    """Every token, newest first (revoked and expired ones too)."""
    return (await session.scalars(select(ApiToken).order_by(ApiToken.id.desc()))).all()


async def revoke_token(session: AsyncSession, *, token_id: int) -> ApiToken:
    """Revoke a token at once (its next request gets 401); revoking it again keeps the first revocation time."""
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"No API token {token_id}.", code="token_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


def token_status(row: ApiToken, *, now: datetime | None = None) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= (now or utcnow()):
        return "expired"
    return "active"


def may_grant(granter_role: str, role: str) -> bool:
    """A caller may hand out its own role or, as admin (the top role), any role."""
    return granter_role == "admin" or granter_role == role


_FIND_TOKEN = select(ApiToken).where(ApiToken.token_hash == bindparam("token_hash"))
# Conditional, so several processes seeing the same stale time write it once.
_TOUCH_TOKEN = (update(ApiToken)
                .where(ApiToken.id == bindparam("token_id"),
                       or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < bindparam("stale_before")))
                .values(last_used_at=bindparam("now"))
                .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: str


async def authenticate(request: Request, database: Annotated[Database, Depends(get_database)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send an API token as 'Authorization: Bearer <token>'.", code="missing_token")
    now = utcnow()
    row = await _usable_token(database, hash_token(token.strip()), now=now, invalid_code="invalid_token")
    await _touch(database, row, now)
    mark_client(request, f"token:{row.id}")
    return Principal(token_id=row.id, name=row.name, role=row.role)


async def _usable_token(database: Database, token_hash: str, *, now: datetime, invalid_code: str) -> ApiToken:
    """The token's row when it is known, not revoked and not expired; Unauthorized otherwise."""
    async with database.sessions() as session:
        row = await session.scalar(_FIND_TOKEN, {"token_hash": token_hash})
    if row is None or row.revoked_at is not None:
        raise Unauthorized("The API token is unknown or revoked.", code=invalid_code)
    if token_status(row, now=now) == "expired":
        raise Unauthorized("The API token has expired; ask an admin for a new one.", code="token_expired")
    return row


async def _touch(database: Database, row: ApiToken, now: datetime) -> None:
    """Record the token's use, at most once a minute (not a write on every request)."""
    if row.last_used_at is None or as_utc(row.last_used_at) <= now - LAST_USED_EVERY:
        async with database.unit_of_work() as session:
            await session.execute(_TOUCH_TOKEN, {"token_id": row.id, "stale_before": now - LAST_USED_EVERY,
                                                 "now": now})


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role != "admin" and principal.role not in roles:
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", code="wrong_role")
        return principal

    return check


MerchantDep = Annotated[Principal, Depends(require_role("merchant"))]
AgentDep = Annotated[Principal, Depends(require_role("agent", "merchant"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]


# Verified channel tokens by (database, token hash): a chat turn then costs no token lookup (the REST channel's
# hot path); only passing tokens are kept, so the cache holds at most the shop's own channel tokens.
_channel_tokens: dict[tuple[int, str], tuple[float, Principal]] = {}


async def verify_channel_token(database: Database, token: str) -> Principal:
    """The principal of an API token allowed to post to a chat channel (role `channel` or `admin`);
    Unauthorized when unknown or revoked, Forbidden for another role."""
    key = (id(database), hash_token(token.strip()))
    cached = _channel_tokens.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    now = utcnow()
    row = await _usable_token(database, key[1], now=now, invalid_code="rest_token_invalid")
    if row.role not in ("channel", "admin"):
        raise Forbidden("This API token's role may not post to chat channels; create one with role 'channel'.",
                        code="rest_token_wrong_role")
    await _touch(database, row, now)
    principal = Principal(token_id=row.id, name=row.name, role=row.role)
    if len(_channel_tokens) >= 1_000:
        _channel_tokens.clear()
    _channel_tokens[key] = (time.monotonic() + CHANNEL_TOKEN_CACHE_SECONDS, principal)
    return principal

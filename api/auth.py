from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import get_database
from api.models import ApiToken
from kit.clock import utcnow
from kit.db import Database
from kit.errors import Forbidden, InvalidInput, Unauthorized
from kit.ids import new_token

ROLES = ("admin", "merchant", "agent", "channel")  # channel: a server posting to the REST chat channel
CHANNEL_TOKEN_CACHE_SECONDS = 5.0  # a revoked channel token stops passing within this long


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, *, name: str, role: str) -> str:
    """Create an API token; the plain token is returned once and only its hash is stored."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", code="unknown_role")
    token = new_token("st")
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token), created_at=utcnow()))
    await session.flush()
    return token


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
    async with database.sessions() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()),
                                                         ApiToken.revoked_at.is_(None)))
    if row is None:
        raise Unauthorized("The API token is unknown or revoked.", code="invalid_token")
    return Principal(token_id=row.id, name=row.name, role=row.role)


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
    async with database.sessions() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == key[1],
                                                         ApiToken.revoked_at.is_(None)))
    if row is None:
        raise Unauthorized("The API token is unknown or revoked.", code="rest_token_invalid")
    if row.role not in ("channel", "admin"):
        raise Forbidden("This API token's role may not post to chat channels; create one with role 'channel'.",
                        code="rest_token_wrong_role")
    principal = Principal(token_id=row.id, name=row.name, role=row.role)
    if len(_channel_tokens) >= 1_000:
        _channel_tokens.clear()
    _channel_tokens[key] = (time.monotonic() + CHANNEL_TOKEN_CACHE_SECONDS, principal)
    return principal

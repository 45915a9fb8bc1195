"""API token management (admin only): list, create (the plain token is shown once), revoke."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api import accounts
from api.auth import ROLES, AdminDep, issue_token, list_tokens, may_grant, parse_duration, revoke_token, token_status
from api.deps import SessionDep
from api.models import ApiToken
from kit.errors import Forbidden

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenOut(BaseModel):
    """A token as listed: never the token itself nor its hash."""

    id: int
    name: str
    role: str
    status: str = Field(description="active, expired or revoked")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Accurate to a minute")
    revoked_at: datetime | None


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    role: str = Field(description=f"One of {', '.join(ROLES)}", max_length=20)
    expires_in: str | None = Field(default=None, max_length=12, description="e.g. 30d, 12h, 2w; none: never expires")


class TokenCreated(TokenOut):
    token: str = Field(description="The bearer token: shown this once, only its hash is stored")


def _out(row: ApiToken) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, role=row.role, status=token_status(row), created_at=row.created_at,
                    expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@router.get("", response_model=list[TokenOut], summary="Every API token, newest first (admin)")
async def tokens(principal: AdminDep, session: SessionDep) -> list[TokenOut]:
    return [_out(row) for row in await list_tokens(session)]


@router.post("", response_model=TokenCreated, status_code=201, summary="Create a token; the response holds it once",
             responses={403: {"description": "Not admin, or a role above the caller's"}})
async def create(body: TokenIn, principal: AdminDep, session: SessionDep, response: Response) -> TokenCreated:
    if not may_grant(principal.role, body.role):
        raise Forbidden("A token cannot be given a role above its creator's.", code="role_above_own")
    expires_in = parse_duration(body.expires_in) if body.expires_in else None
    row, token = await issue_token(session, name=body.name, role=body.role, expires_in=expires_in)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="tokens",
                          action="created", subject=f"token {row.id} ({row.name})", details={"role": row.role})
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**_out(row).model_dump(), token=token)


@router.delete("/{token_id}", status_code=204, summary="Revoke a token at once (404 when unknown)")
async def revoke(token_id: int, principal: AdminDep, session: SessionDep) -> Response:
    row = await revoke_token(session, token_id=token_id)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="tokens",
                          action="revoked", subject=f"token {row.id} ({row.name})")
    return Response(status_code=204)

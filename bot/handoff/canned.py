"""Canned responses: saved answers with variables that agents insert by shortcut; supervisors manage them."""
from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff._rows import rowcount
from bot.handoff.agents import supervises
from bot.handoff.errors import BadAgentInput, CannedNotFound, NotSupervisor
from bot.handoff.models import Agent, CannedResponse
from bot.handoff.replies import CANNED_VARIABLE, CANNED_VARIABLES, MAX_REPLY_CHARS, clean_text
from kit.clock import utcnow


class CannedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def canned(self, shop_id: int) -> Sequence[CannedResponse]:
        return (await self.session.scalars(select(CannedResponse).where(CannedResponse.shop_id == shop_id)
                                           .order_by(CannedResponse.shortcut))).all()

    async def canned_by_shortcut(self, shop_id: int, shortcut: str) -> CannedResponse | None:
        return await self.session.scalar(select(CannedResponse).where(CannedResponse.shop_id == shop_id,
                                                                      CannedResponse.shortcut == shortcut))

    async def canned_item(self, canned_id: int) -> CannedResponse | None:
        return await self.session.get(CannedResponse, canned_id)

    async def delete_canned(self, canned_id: int) -> bool:
        result = await self.session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id)
                                            .execution_options(synchronize_session="fetch"))
        return rowcount(result) == 1


def _require_supervisor(agent: Agent, what: str) -> None:
    if not supervises(agent.role):
        raise NotSupervisor(f"Only a supervisor can {what}.")


def _canned_fields(shortcut: str, body: str) -> tuple[str, str]:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", shortcut):
        raise BadAgentInput("A shortcut is 1-40 lowercase letters, digits, '-' or '_'.", code="invalid_shortcut")
    text = clean_text(body, limit=MAX_REPLY_CHARS, what="canned_response")
    unknown = set(CANNED_VARIABLE.findall(text)) - set(CANNED_VARIABLES)
    if unknown:
        raise BadAgentInput(f"Unknown variables: {', '.join(sorted(unknown))}; use {', '.join(CANNED_VARIABLES)}.",
                            code="unknown_variable")
    return shortcut, text


async def create_canned(session: AsyncSession, *, agent: Agent, shortcut: str, body: str) -> CannedResponse:
    """A new canned response for the agent's shop (supervisors only; agents use them)."""
    _require_supervisor(agent, "add canned responses")
    shortcut, text = _canned_fields(shortcut, body)
    repo = CannedRepository(session)
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
    canned = await CannedRepository(session).canned_item(canned_id)
    if canned is None or canned.shop_id != agent.shop_id:
        raise CannedNotFound(f"No canned response {canned_id}.")  # never confirm another shop's data
    return canned


async def update_canned(session: AsyncSession, *, agent: Agent, canned_id: int, shortcut: str,
                        body: str) -> CannedResponse:
    """Change a canned response's shortcut or text (supervisors only)."""
    _require_supervisor(agent, "edit canned responses")
    canned = await _canned_of_shop(session, agent, canned_id)
    shortcut, text = _canned_fields(shortcut, body)
    other = await CannedRepository(session).canned_by_shortcut(agent.shop_id, shortcut)
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
    if not await CannedRepository(session).delete_canned(canned.id):
        raise CannedNotFound(f"No canned response {canned_id}.")


async def canned_responses(session: AsyncSession, *, shop_id: int) -> list[CannedResponse]:
    return list(await CannedRepository(session).canned(shop_id))


class FilledCanned(BaseModel):
    canned_id: int
    shortcut: str
    text: str  # variables with a value filled in; the others left as {name} for the agent to fill
    missing: list[str]  # variables this conversation has no value for (the reply is refused while they remain)


def fill_canned(body: str, values: dict[str, str | None]) -> tuple[str, list[str]]:
    """Replace {name}, {order_number}, {agent_name}, ...; returns the text and the variables left unfilled
    (unknown here or empty), which the agent must fill before sending."""
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        found = (values.get(match.group(1)) or "").strip()
        if not found:
            missing.append(match.group(1))
            return match.group(0)
        return found

    text = CANNED_VARIABLE.sub(value, body)
    return text, sorted(set(missing))


async def canned_for_conversation(session: AsyncSession, *, agent: Agent, conversation_id: int,
                                  canned_id: int, values: dict[str, str | None]) -> FilledCanned:
    """A canned response filled from the conversation (`values`: `views.canned_values`), as the agent previews it."""
    canned = await _canned_of_shop(session, agent, canned_id)
    text, missing = fill_canned(canned.body, values)
    return FilledCanned(canned_id=canned.id, shortcut=canned.shortcut, text=text, missing=missing)

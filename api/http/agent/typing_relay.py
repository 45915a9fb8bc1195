"""`POST /api/v1/agent/conversations/{id}/typing` {"on": true|false}: the console says the agent is (or stopped)
writing; the shopper's web chat shows "<name> is typing…" (relayed to the process holding the shopper's socket
through Redis pub/sub when configured) and Telegram shows its own "typing…" (sendChatAction). Nothing is stored; a
channel without a typing signal ignores it."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.chat_runtime import ChatChannels, channels_of
from api.deps import get_database
from api.http.agent.console import Writer, _agent
from api.params import PathId
from bot import handoff
from bot.handoff.live_typing import TypingTarget

log = logging.getLogger(__name__)
router = APIRouter(tags=["agent console"])
# A stop that never came (a closed tab): the web chat drops the line itself after this long without a refresh.
TYPING_TTL_SECONDS = 6


class TypingBody(BaseModel):
    on: bool


async def _webchat(channels: ChatChannels, target: TypingTarget, on: bool) -> None:
    await channels.hub.publish(target.recipient_id, {"type": "typing", "on": on, "author": "agent",
                                                     "name": target.agent_name, "ttl": TYPING_TTL_SECONDS})


async def _telegram(channels: ChatChannels, target: TypingTarget, on: bool) -> None:
    # Telegram shows "typing…" for 5 s per call and has no stop: only "on" is sent.
    if on and channels.telegram is not None and target.recipient_id.lstrip("-").isdigit():
        with contextlib.suppress(Exception):  # a live hint only; a refused call changes nothing for the shopper
            await channels.telegram.bot.send_chat_action(chat_id=int(target.recipient_id), action="typing")


RELAYS: dict[str, Callable[[ChatChannels, TypingTarget, bool], Awaitable[None]]] = {
    "webchat": _webchat, "telegram": _telegram}


@router.post("/api/v1/agent/conversations/{conversation_id}/typing", status_code=204,
             summary="The agent is typing (on) or stopped (off); relayed live to the shopper's chat")
async def agent_typing(conversation_id: PathId, body: TypingBody, who: Writer, request: Request) -> Response:
    async with get_database(request).sessions() as session:
        target = await handoff.live_typing.typing_target(session, agent=await _agent(session, who),
                                                     conversation_id=conversation_id)
    relay = RELAYS.get(target.channel)
    if relay is not None:
        await relay(channels_of(request), target, body.on)
    return Response(status_code=204)

"""The files shoppers sent on a channel (bot.channels.media), for the agent console only."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import get_database
from api.http.agent.console import Reader
from api.params import PathId
from bot import handoff
from bot.channels import media
from bot.conversations import service as conversations
from bot.conversations.models import ConversationMessage
from bot.handoff.models import Agent
from kit.errors import NotFound

router = APIRouter(tags=["agent"])


@router.get("/api/v1/agent/conversations/{conversation_id}/messages/{message_id}/media",
            summary="The file a shopper sent with this message (an agent session only)",
            response_class=Response,
            responses={200: {"description": "The file: a safe image inline, anything else as an attachment",
                             "content": {"image/*": {}, "application/octet-stream": {}}},
                       404: {"description": "No such message in the agent's shop, no file, or not fetched yet"}})
async def message_media(conversation_id: PathId, message_id: PathId, who: Reader, request: Request) -> Response:
    async with get_database(request).sessions() as session:
        agent = await session.get(Agent, who.agent_id)
        assert agent is not None
        await handoff.inbox.thread_of_shop(session, agent, conversation_id)  # another shop's: 404
        message = await session.get(ConversationMessage, message_id)
        if message is None or message.conversation_id != conversation_id or message.direction != "in":
            raise NotFound(f"No message {message_id} from the shopper in conversation {conversation_id}.",
                           code="media_not_found")
        conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
        found = await media.file_of(session, channel=conversation.channel, sender_id=conversation.sender_id,
                                    metadata=(message.content or {}).get("metadata"))
        if found is None or found.data is None:
            raise NotFound("This message has no file, or it is not fetched yet.", code="media_not_found")
        return Response(found.data, headers=media.download_headers(found))

"""An agent's reply to the shopper, and the length and emptiness check every text an agent writes goes through."""
from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations import service as conversations
from bot.handoff.delivery import send
from bot.handoff.errors import BadAgentInput, NotInHumanMode
from bot.handoff.inbox import require_owner, thread_of_shop
from bot.handoff.models import Agent

MAX_REPLY_CHARS = 4000
# Canned-response variables; the console fills them from the conversation before anything is sent.
CANNED_VARIABLES = ("name", "first_name", "email", "order_number", "order_total", "order_status", "agent_name",
                    "agent_first_name")
CANNED_VARIABLE = re.compile(r"\{([a-z_]+)\}")


def clean_text(text: str, *, limit: int, what: str) -> str:
    """The text stripped; BadAgentInput (`empty_<what>`, `<what>_too_long`) when empty or over `limit`."""
    cleaned = text.strip()
    if not cleaned:
        raise BadAgentInput(f"The {what} is empty.", code=f"empty_{what}")
    if len(cleaned) > limit:
        raise BadAgentInput(f"The {what} is longer than {limit} characters.", code=f"{what}_too_long")
    return cleaned


def check_filled(text: str) -> None:
    """BadAgentInput `unfilled_variable` naming each {variable} still in the text: it never reaches a shopper raw."""
    left = sorted(set(CANNED_VARIABLE.findall(text)))
    if left:
        names = ", ".join("{" + name + "}" for name in left)
        raise BadAgentInput(f"Fill in {names} before sending: the shopper would see it as written.",
                            code="unfilled_variable", variables=left)


async def reply(session: AsyncSession, *, agent: Agent, conversation_id: int, text: str) -> int:
    """Send the agent's message to the shopper through the outbox; returns the stored message id."""
    body = clean_text(text, limit=MAX_REPLY_CHARS, what="reply")
    check_filled(body)
    thread = require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    if conversation.mode != "human":
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    source = "own"
    if thread.draft_text is not None:
        thread.draft_text = None  # the agent answered in their own words; the bot's draft is spent
        thread.draft_for_message_id = None
    return await send(session, conversation=conversation, agent_id=agent.id, source=source, text=body)

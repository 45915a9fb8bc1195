"""Held drafts (the mixed reply `draft_for_agent`): the bot's answer kept for an agent instead of sent, then sent
by the agent as is or edited."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations import service as conversations
from bot.handoff.delivery import send
from bot.handoff.errors import NoDraft
from bot.handoff.inbox import open_handoff, require_owner, thread_of_shop
from bot.handoff.models import DEFAULT_SHOP_ID, Agent, HandoffThread
from bot.handoff.replies import MAX_REPLY_CHARS, check_filled, clean_text
from bot.messages import Button, OutboundMessage, ProductCard
from kit.clock import utcnow


async def hold_draft(session: AsyncSession, *, conversation_id: int, text: str, for_message_id: int | None,
                     reason: str = "draft_for_agent", shop_id: int = DEFAULT_SHOP_ID,
                     replies: list[OutboundMessage] | None = None) -> HandoffThread:
    """Mixed reply: keep the bot's answer as a draft for an agent instead of sending it (the bot stays silent).

    `replies` are the held messages as the shopper would have seen them (text, buttons, product cards)."""
    thread = await open_handoff(session, conversation_id=conversation_id, reason=reason, shop_id=shop_id)
    thread.draft_text = text
    thread.draft_content = [r.model_dump(mode="json", include={"text", "buttons", "cards", "custom"})
                            for r in replies or []]
    thread.draft_for_message_id = for_message_id
    thread.updated_at = utcnow()
    await conversations.set_mode(session, conversation_id=conversation_id, mode="human", queue="draft")
    await session.flush()
    return thread


async def send_draft(session: AsyncSession, *, agent: Agent, conversation_id: int, text: str | None = None) -> int:
    """Send the bot's draft with one click (each held message with its product cards and buttons, as the shopper
    would have seen it), or the agent's edit of its text (sent with the draft's cards and buttons); returns the
    id of the last message sent."""
    thread = require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    if thread.draft_text is None:
        raise NoDraft("There is no bot draft waiting in this conversation.")
    body = clean_text(text if text is not None else thread.draft_text, limit=MAX_REPLY_CHARS, what="reply")
    check_filled(body)
    source = "draft" if body == thread.draft_text.strip() else "draft_edited"
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    held = [_held(item) for item in thread.draft_content or []]
    thread.draft_text = None
    thread.draft_for_message_id = None
    thread.draft_content = None
    if source == "draft" and held:
        last = 0
        for message in held:
            last = await send(session, conversation=conversation, agent_id=agent.id, source=source,
                              text=message.text, buttons=message.buttons, cards=message.cards, custom=message.custom)
        return last
    return await send(session, conversation=conversation, agent_id=agent.id, source=source, text=body,
                      buttons=[b for m in held for b in m.buttons], cards=[c for m in held for c in m.cards])


def _held(item: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage(channel="rest", recipient_id="-", text=str(item.get("text") or ""),
                           buttons=[Button.model_validate(b) for b in item.get("buttons") or []],
                           cards=[ProductCard.model_validate(c) for c in item.get("cards") or []],
                           custom=item.get("custom"))

"""Where the conversation engine hands a message to the imported Rasa assistant, when one is active."""
from __future__ import annotations

import logging
from typing import Any

from bot import i18n
from bot.conversations.models import ConversationMessage
from bot.messages import Button
from bot.rasa.assistant import ActionContext
from bot.rasa.domain import Domain
from bot.rasa.errors import RasaServerFailed
from bot.rasa.remote import RasaServer, RemoteRasa
from bot.rasa.service import active_assistant, active_server, models_dir_of, respond
from bot.rasa.skills import SHOPTALK_ACTIONS
from bot.rasa.tracker import Tracker
from bot.skills.base import Turn
from bot.skills.person import ASKED, hand_off

log = logging.getLogger(__name__)


async def answer(turn: Turn, stored: ConversationMessage) -> str | None:
    """The intent the imported assistant read ("" for none) when it answered (its replies are on the turn);
    None: ShopTalk's bot answers."""
    inbound = turn.inbound
    if inbound.kind in ("unsupported", "edited"):
        return None
    server = await active_server(turn.session)
    assistant = None if server is not None else \
        await active_assistant(turn.session, models_dir=models_dir_of(turn.deps.settings.data_dir))
    if assistant is None and server is None:
        return None
    text = inbound.payload if inbound.kind == "callback" and inbound.payload else (inbound.text or "")
    text = text[: turn.deps.settings.limits.max_message_chars]

    def hand_over() -> None:
        hand_off(turn, intent="human_handoff", reason=ASKED)

    ttl_seconds = turn.deps.settings.security.verified_order_ttl_seconds  # the order status action's proofs
    if server is not None:
        return await _forward(turn, stored, server, text, {"conversation": turn.conversation, "handoff": hand_over,
                                                           "verified_order_ttl_seconds": ttl_seconds})
    assert assistant is not None
    replies = await respond(turn.session, assistant=assistant, conversation_id=turn.conversation.id,
                            sender_id=inbound.sender_id, text=text, channel=inbound.channel,
                            message_id=inbound.message_id, metadata=inbound.metadata,
                            extra={"conversation": turn.conversation, "handoff": hand_over,
                                   "verified_order_ttl_seconds": ttl_seconds})
    parse = await _latest_parse(turn)
    stored.nlu = {**parse, "policy": "rasa"}
    for reply in replies:
        # An image-only response still shows something on channels that need text (Telegram).
        turn.say_text(str(reply.get("text") or reply.get("image") or ""), buttons=_buttons(reply.get("buttons")),
                      custom=_custom(reply))
    intent = parse.get("intent")
    return str(intent.get("name") or "") if isinstance(intent, dict) else ""


async def _forward(turn: Turn, stored: ConversationMessage, server: RasaServer, text: str,
                   extra: dict[str, Any]) -> str:
    """The turn answered by the existing Rasa server; a failed server says so once and the next message tries
    again."""
    inbound = turn.inbound
    context = ActionContext(tracker=Tracker(inbound.sender_id, Domain()), session=turn.session,
                            conversation_id=turn.conversation.id, channel=inbound.channel, extra=extra)
    remote = RemoteRasa(server, shoptalk_actions=SHOPTALK_ACTIONS)
    try:
        answered = await remote.turn(sender_id=inbound.sender_id, text=text,
                                     metadata={"channel": inbound.channel, **(inbound.metadata or {})},
                                     context=context)
    except RasaServerFailed as error:
        log.warning("conversation %s: %s", turn.conversation.id, error)
        stored.nlu = {"policy": "rasa_server", "error": error.code}
        turn.say_text(i18n.t(turn.locale, "rasa.server_unavailable"))
        return ""
    stored.nlu = {**answered.parse, "policy": "rasa_server", "actions": answered.actions}
    for reply in answered.replies:
        turn.say_text(str(reply.get("text") or reply.get("image") or ""), buttons=_buttons(reply.get("buttons")),
                      custom=_custom(reply))
    intent = answered.parse.get("intent")
    return str(intent.get("name") or "") if isinstance(intent, dict) else ""


async def _latest_parse(turn: Turn) -> dict[str, Any]:
    from bot.rasa.repository import RasaRepository

    for row in reversed(await RasaRepository(turn.session).events(turn.conversation.id)):
        if row.event.get("event") == "user":
            return dict(row.event.get("parse_data") or {})
    return {}


def _buttons(raw: Any) -> list[Button]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and item.get("title"):
            out.append(Button(title=str(item["title"]), payload=item.get("payload"), url=item.get("url")))
    return out


def _custom(reply: dict[str, Any]) -> dict[str, Any] | None:
    extra = {k: reply[k] for k in ("image", "custom", "attachment", "elements", "quick_replies") if reply.get(k)}
    return extra or None

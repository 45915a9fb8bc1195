"""ShopTalk's commerce skills offered to an imported assistant as Rasa custom actions."""
from __future__ import annotations

from typing import Any

from bot import i18n
from bot.conversations.models import Conversation
from bot.conversations.service import verified_order
from bot.policy import shop_triggers
from bot.rasa.assistant import ActionContext, ShopTalkAction
from bot.rasa.tracker import event, slot_event
from commerce.orders.errors import OrderNotFound
from commerce.orders.models import Order
from commerce.orders.refs import parse_public_ref
from commerce.orders.service import get_order_by_number, get_order_by_public_ref
from kit.clock import utcnow


def _english(key: str, **values: Any) -> str:
    """ShopTalk's own words inside an imported assistant, in English (the project's responses are its own)."""
    return i18n.t("en", key, **values)


def _say(text: str, **data: Any) -> dict[str, Any]:
    return event("bot", text=text, data={"buttons": data.get("buttons")}, metadata={"utter_action": None})


async def order_status(context: ActionContext) -> list[dict[str, Any]]:
    """The status of the order in slot/entity `order_number`, only when it is the shopper's own."""
    tracker = context.tracker
    number = tracker.get_slot("order_number") or next(
        (e.get("value") for e in tracker.latest_entities() if e.get("entity") == "order_number"), None)
    if not number:
        return [_say(_english("rasa.ask_order_number"))]
    number = str(number).strip().lstrip("#")
    if context.session is None:
        return [_say(_english("rasa.no_order_lookup"))]
    conversation = context.extra.get("conversation")
    ref = None if number.isdigit() else parse_public_ref(number)
    try:
        order: Order | None = (await get_order_by_public_ref(context.session, public_ref=ref) if ref
                               else await get_order_by_number(context.session, number=number))
    except OrderNotFound:
        order = None
    owner = getattr(conversation, "shopper_id", None)
    ttl_seconds = int(context.extra.get("verified_order_ttl_seconds", 24 * 3600))
    verified = (order is not None and isinstance(conversation, Conversation)
                and verified_order(conversation, order.number, now=utcnow(), ttl_seconds=ttl_seconds))
    if order is None or owner is None or (order.shopper_id != owner and not verified):
        # Same rule as ShopTalk's own bot: an order's status goes only to its owner, and an unknown order gets
        # the same answer as someone else's (existence is never revealed).
        return [_say(_english("rasa.order_not_confirmed", number=number),
                     buttons=[{"title": _english("button.human"), "payload": "/shoptalk_handoff"}]),
                slot_event("order_number", None)]
    return [_say(_english("rasa.order_status", number=order.number, status=order.status.replace("_", " ")))]


async def handoff(context: ActionContext) -> list[dict[str, Any]]:
    """Hand the conversation to the agent inbox; the bot goes quiet until an agent gives it back.

    The shop's rules hold for an imported assistant too: with "the shopper asks for a person" switched off
    in the agent console, the action says so instead of queueing the conversation."""
    if context.session is not None:
        if not (await shop_triggers(context.session)).on_request:
            return [_say(_english("handoff_unavailable"))]
    hand_over = context.extra.get("handoff")
    if callable(hand_over):
        hand_over()
        return []
    return [_say(_english("rasa.handoff_queued"))]


SHOPTALK_ACTIONS: dict[str, ShopTalkAction] = {
    "action_shoptalk_order_status": order_status,
    "action_shoptalk_handoff": handoff,
}

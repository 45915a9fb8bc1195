"""Where the conversation engine asks the handoff: before the bot answers (a CSAT rating is the handoff's)
and after (per-shop escalation triggers, the queue notice, mixed replies held as drafts for an agent)."""
from __future__ import annotations

from decimal import Decimal

from bot.conversations.models import ConversationMessage
from bot.handoff import service as handoff
from bot.handoff import texts
from bot.handoff.repository import HandoffRepository
from bot.skills.base import Turn
from kit.errors import NotFound

ORDER_INTENTS = frozenset({"order_status", "cancel_order", "return_refund"})
UNHELPFUL = "feedback:no"


async def answer_instead(turn: Turn, stored: ConversationMessage) -> bool:
    """True when the handoff answered this message itself (a 1-5 rating after resolve); the bot stays out."""
    score = handoff.csat_score_of(stored)
    if score is None:
        return False
    stored.nlu = {"payload": stored.payload or stored.text, "policy": "csat"}
    if await handoff.record_csat(turn.session, conversation_id=turn.conversation.id, score=score):
        turn.say_text(texts.text(turn.locale, "csat_thanks"))
    return True


async def after_bot(turn: Turn, stored: ConversationMessage) -> None:
    """Apply the shop's escalation rules and mixed-reply choice to the bot's turn; tell a waiting shopper
    their place in the queue (or the opening hours)."""
    session, conversation = turn.session, turn.conversation
    rules = await handoff.rules_of(session)
    nlu = stored.nlu or {}
    intent = str((nlu.get("intent") or {}).get("name") or "") if isinstance(nlu.get("intent"), dict) else ""
    confidence = float((nlu.get("intent") or {}).get("confidence") or 0.0) if intent else 0.0
    reason: str | None = (intent or "asked_for_person") if turn.handed_off else None
    if not turn.handed_off:
        signals = handoff.EscalationSignals(
            text=stored.text or "", intent=intent, confidence=confidence if intent else 1.0,
            unhelpful_before=await _unhelpful_in_a_row(turn, stored),
            order_value=await _order_value(turn) if intent in ORDER_INTENTS else None)
        # The engine's own policy already handles requests, complaints and low confidence.
        reason = handoff.should_escalate(rules.model_copy(update={"on_request": False, "low_confidence_in_a_row": 0}),
                                         signals)
        if reason is not None:
            _hand_over(turn, complaint=reason in ("complaint", "negative_wording"))
    if turn.handed_off:
        await handoff.open_handoff(session, conversation_id=conversation.id, reason=reason or intent or "handoff")
        notice = await handoff.queue_notice(session, conversation_id=conversation.id)
        turn.say_text(notice.render(turn.locale))
        return
    if nlu.get("policy") == "confirm" and turn.replies:
        if handoff.mixed_reply_for(rules, intent) == "draft_for_agent":
            draft = "\n\n".join(r.text for r in turn.replies if r.text and r.text != turn.t("did_this_help"))
            await handoff.hold_draft(session, conversation_id=conversation.id, text=draft, for_message_id=stored.id)
            turn.replies = []
            turn.handed_off = True
            notice = await handoff.queue_notice(session, conversation_id=conversation.id)
            turn.say_text(notice.render(turn.locale))
        # "answer_and_offer" is the engine's own: the answer, "Did this help?", and a person after "no".


def _hand_over(turn: Turn, *, complaint: bool) -> None:
    """The same as the engine's handoff: the bot goes quiet until an agent gives it back."""
    conversation = turn.conversation
    conversation.mode = "human"
    conversation.queue = "support"
    conversation.pending = None
    turn.handed_off = True
    turn.replies = []
    turn.say("handoff_complaint" if complaint else "handoff")


async def _unhelpful_in_a_row(turn: Turn, stored: ConversationMessage) -> int:
    """'Did this help? no' answers in a row, this message included."""
    if (stored.payload or stored.text or "").strip() != UNHELPFUL:
        return 0
    count = 0
    for message in reversed(await HandoffRepository(turn.session).messages(turn.conversation.id, limit=40)):
        value = (message.payload or message.text or "").strip() if message.direction == "in" else ""
        if value == UNHELPFUL:
            count += 1
        elif value.startswith("feedback:"):
            break  # a "yes" in between starts the count again
    return count


async def _order_value(turn: Turn) -> Decimal | None:
    from bot.skills.order_status import order_number_in
    from commerce.orders.service import get_order_by_number

    number = order_number_in(turn) if turn.parsed is not None else None
    if not number:
        return None
    try:
        order = await get_order_by_number(turn.session, number=number)
    except NotFound:
        return None
    return order.total

"""Where the conversation engine asks the handoff: before the bot answers (a CSAT rating, a pressed "Talk to a
person" offer, a request for a person the shop switched off) and after (per-shop escalation triggers, the queue
notice, mixed replies: the answer with a "Talk to a person" button, or held as a draft for an agent)."""
from __future__ import annotations

from decimal import Decimal

from bot import handoff
from bot.conversations.models import ConversationMessage
from bot.handoff import texts
from bot.messages import Button
from bot.skills.base import Turn

ORDER_INTENTS = frozenset({"order_status", "cancel_order", "return_refund"})
UNHELPFUL = "feedback:no"
REQUEST = "handoff:request"  # the menu's "Talk to a person" (the shopper asks: the shop's `on_request`)
OFFER = "handoff:offer"  # the button of a mixed reply "answer and offer a person" (the shop offered)
PERSON_COMMANDS = frozenset({"human", "agent"})
# A declined request, a complaint the bot keeps: these replies lose their "talk to a person" wording.
WITHOUT_PERSON = {"feedback_sorry": "feedback_sorry_no_person", "faq_none": "faq_none_no_person"}


async def answer_instead(turn: Turn, stored: ConversationMessage) -> bool:
    """True when the handoff answered this message itself (a 1-5 rating after resolve, a pressed offer of a
    person, a request for a person the shop does not take); the bot stays out."""
    score = handoff.csat_score_of(stored)
    if score is not None:
        stored.nlu = {"payload": stored.payload or stored.text, "policy": "csat"}
        if await handoff.record_csat(turn.session, conversation_id=turn.conversation.id, score=score):
            turn.say_text(texts.text(turn.locale, "csat_thanks"))
        return True
    value = (stored.payload or stored.text or "").strip()
    asks = value == REQUEST or (value.startswith("/") and _command(value) in PERSON_COMMANDS)
    if value != OFFER and not asks:
        return False
    rules = await handoff.rules_of(turn.session)
    if rules.on_request or (value == OFFER and rules.offers_a_person):
        if value != OFFER:
            return False  # the engine hands off as before
        stored.nlu = {"payload": value, "policy": "handoff"}
        _hand_over(turn, complaint=False)
        await _queue(turn, reason="offer_accepted")
        return True
    stored.nlu = {"payload": value, "policy": "handoff_declined"}
    _decline(turn)
    return True


async def after_bot(turn: Turn, stored: ConversationMessage) -> None:
    """Apply the shop's escalation rules and mixed-reply choice to the bot's turn; tell a waiting shopper
    their place in the queue (or the opening hours)."""
    session = turn.session
    rules = await handoff.rules_of(session)
    nlu = stored.nlu or {}
    intent = str((nlu.get("intent") or {}).get("name") or "") if isinstance(nlu.get("intent"), dict) else ""
    confidence = float((nlu.get("intent") or {}).get("confidence") or 0.0) if intent else 0.0
    reason: str | None = (intent or "asked_for_person") if turn.handed_off else None
    if not turn.handed_off:
        order_value, unknown = await _order_value(turn, rules) if intent in ORDER_INTENTS else (None, False)
        signals = handoff.EscalationSignals(
            text=stored.text or "", intent=intent, confidence=confidence if intent else 1.0,
            unhelpful_before=await _unhelpful_in_a_row(turn, stored), order_value=order_value,
            order_value_unknown=unknown)
        # The engine's own policy (bot.policy.decide with the shop's triggers) already handled requests,
        # complaints and low confidence.
        reason = handoff.should_escalate(
            rules.model_copy(update={"on_request": False, "on_complaint": False, "low_confidence_in_a_row": 0}),
            signals)
        if reason is not None:
            _hand_over(turn, complaint=reason == "negative_wording" or intent == "complaint")
    if turn.handed_off:
        await _queue(turn, reason=reason or intent or "handoff")
        return
    declined = nlu.get("policy") in ("answer", "confirm") and (
        (intent == "human_handoff" and not rules.on_request) or (intent == "complaint" and not rules.on_complaint))
    if declined:
        # The shop switched this trigger off and the policy answered instead: say so first.
        turn.say("handoff_unavailable" if intent == "human_handoff" else "complaint_no_person")
        turn.replies.insert(0, turn.replies.pop())
    if not rules.on_request:
        _without_person_buttons(turn)
    if nlu.get("policy") == "confirm" and turn.replies and not declined:
        if handoff.mixed_reply_for(rules, intent) == "draft_for_agent":
            draft = "\n\n".join(r.text for r in turn.replies if r.text and r.text != turn.t("did_this_help"))
            if stored.id is None:
                await session.flush()  # the draft refers to the message: write it now
            await handoff.hold_draft(session, conversation_id=turn.conversation.id, text=draft,
                                     for_message_id=stored.id)
            turn.replies = []
            turn.handed_off = True
            notice = await handoff.queue_notice(session, conversation_id=turn.conversation.id)
            turn.say_text(notice.render(turn.locale))
        else:
            _offer_person(turn)


def _command(text: str) -> str:
    return text.split()[0].lstrip("/").split("@")[0].lower() if text.strip() else ""


def _menu(turn: Turn) -> list[Button]:
    """What the bot can do, without a person."""
    return [turn.button("button.search", "menu:search"), turn.button("button.order_status", "menu:order"),
            turn.button("button.cart", "cart:view")]


def _decline(turn: Turn) -> None:
    turn.replies = []
    turn.say("handoff_unavailable", buttons=_menu(turn))


def _without_person_buttons(turn: Turn) -> None:
    """The shop does not hand off on request: no "Talk to a person" button leads nowhere."""
    for reply in turn.replies:
        kept = [b for b in reply.buttons if b.payload != REQUEST]
        if len(kept) != len(reply.buttons):
            reply.buttons = kept
            for key, instead in WITHOUT_PERSON.items():
                if reply.text == turn.t(key):
                    reply.text = turn.t(instead)


def _offer_person(turn: Turn) -> None:
    """Mixed reply "answer and offer a person": the answer stays, with an explicit "Talk to a person" button."""
    button = turn.button("button.human", OFFER)
    asked = turn.t("did_this_help")
    for reply in turn.replies:
        if reply.text == asked:
            if all(b.payload != OFFER for b in reply.buttons):
                reply.buttons = [*reply.buttons, button]
            return
    turn.say("offer_person", buttons=[button])


def _hand_over(turn: Turn, *, complaint: bool) -> None:
    """The same as the engine's handoff: the bot goes quiet until an agent gives it back."""
    conversation = turn.conversation
    conversation.mode = "human"
    conversation.queue = "support"
    conversation.pending = None
    turn.handed_off = True
    turn.replies = []
    turn.say("handoff_complaint" if complaint else "handoff")


async def _queue(turn: Turn, *, reason: str) -> None:
    """Open the inbox thread and tell the shopper their place in the queue (or the opening hours)."""
    await handoff.open_handoff(turn.session, conversation_id=turn.conversation.id, reason=reason)
    notice = await handoff.queue_notice(turn.session, conversation_id=turn.conversation.id)
    turn.say_text(notice.render(turn.locale))


async def _unhelpful_in_a_row(turn: Turn, stored: ConversationMessage) -> int:
    """'Did this help? no' answers in a row, this message included."""
    if (stored.payload or stored.text or "").strip() != UNHELPFUL:
        return 0
    count = 1  # this one: the engine writes it at the turn's end, so the read below may not hold it
    for message in reversed(await handoff.views.ViewRepository(turn.session).messages(turn.conversation.id, limit=40)):
        if message is stored:
            continue
        value = (message.payload or message.text or "").strip() if message.direction == "in" else ""
        if value == UNHELPFUL:
            count += 1
        elif value.startswith("feedback:"):
            break  # a "yes" in between starts the count again
    return count


async def _order_value(turn: Turn, rules: handoff.EscalationRules) -> tuple[Decimal | None, bool]:
    """The value of the order the message names, in the threshold's currency; (None, True) when it cannot be
    converted (no fresh rate: the safer side is a person); (None, False) when no order or no threshold."""
    from bot.skills.order_status import find_named_order, order_number_in

    if rules.order_value_above is None:
        return None, False
    number = order_number_in(turn) if turn.parsed is not None else None
    if not number:
        return None, False
    order = await find_named_order(turn, number)  # by number or by public reference
    if order is None:
        return None, False
    value = await handoff.order_value_in(turn.session, amount=order.total, currency=order.currency,
                                         target=rules.order_value_currency)
    return value, value is None

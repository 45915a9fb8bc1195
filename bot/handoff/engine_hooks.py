"""Where the conversation engine asks the handoff: before the bot answers (a CSAT rating, a pressed "Talk to a
person" offer, a request for a person the shop switched off), for the signals of the shop's escalation rules
(`bot.policy` decides with them), and after the bot's turn (`finish`: the inbox thread and queue notice of a
hand-off, mixed replies: the answer with a "Talk to a person" button, or held as a draft for an agent)."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot import handoff
from bot.commands import parse_command
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff import cart_links
from bot.messages import InboundMessage
from bot.policy import Decision, ShopTriggers, Signals
from bot.skills.base import Turn
from bot.skills.order_status import find_named_order, order_number_in
from bot.skills.person import hand_off

ORDER_INTENTS = frozenset({"order_status", "cancel_order", "return_refund"})
UNHELPFUL = "feedback:no"
REQUEST = "handoff:request"  # the menu's "Talk to a person" (the shopper asks: the shop's `on_request`)
OFFER = "handoff:offer"  # the button of a mixed reply "answer and offer a person" (the shop offered)
PERSON_COMMANDS = frozenset({"human", "agent"})
OFFER_ACCEPTED = "offer_accepted"
# Said first when the policy answered instead of handing off (the shop switched that trigger off).
DECLINED_NOTICE = {"request_declined": "handoff_unavailable", "complaint_declined": "complaint_no_person"}
CHECKOUT_PAYLOADS = ("cart:", "checkout:", "pay:")  # the buttons of the cart and checkout a cart link starts


async def bot_serves(session: AsyncSession, conversation: Conversation, inbound: InboundMessage) -> bool:
    """True when the bot answers this message although a person has the conversation: a cart link the agent sent
    (`cart_links`), and, once one was opened, the cart and checkout buttons and the answers to the checkout's
    questions (country, e-mail, address), so the shopper checks out the way the shop's chat always does. Every
    other message is the person's; the agent sees these too (they are stored and shown in the timeline)."""
    value = ((inbound.payload if inbound.kind == "callback" else None) or inbound.text or "").strip()
    if value.startswith(cart_links.PAYLOAD):
        return True
    asked = (conversation.pending or {}).get("intent") == "checkout"
    if not (value.startswith(CHECKOUT_PAYLOADS) or asked):
        return False
    return await cart_links.recently_redeemed(session, conversation_id=conversation.id)


# A declined request, a complaint the bot keeps: these replies lose their "talk to a person" wording.
WITHOUT_PERSON = {"feedback_sorry": "feedback_sorry_no_person", "faq_none": "faq_none_no_person"}


async def answer_instead(turn: Turn, stored: ConversationMessage) -> bool:
    """True when the handoff answered this message itself (a 1-5 rating after resolve, a pressed offer of a
    person, a request for a person the shop does not take); the bot stays out."""
    score = handoff.csat_score_of(stored)
    if score is not None:
        stored.nlu = {"payload": stored.payload or stored.text, "policy": "csat"}
        if await handoff.record_csat(turn.session, conversation_id=turn.conversation.id, score=score):
            turn.say("csat_thanks")
        return True
    value = (stored.payload or stored.text or "").strip()
    command = parse_command(value)
    asks = value == REQUEST or (command is not None and command.name in PERSON_COMMANDS)
    if value != OFFER and not asks:
        return False
    rules = await handoff.rules_of(turn.session)
    if rules.on_request or (value == OFFER and rules.offers_a_person):
        if value != OFFER:
            return False  # the engine hands off as before
        stored.nlu = {"payload": value, "policy": "handoff", "reason": OFFER_ACCEPTED}
        hand_off(turn, intent="human_handoff", reason=OFFER_ACCEPTED)
        await _queue(turn, reason=OFFER_ACCEPTED)
        return True
    stored.nlu = {"payload": value, "policy": "handoff_declined"}
    _decline(turn)
    return True


async def signals(turn: Turn, stored: ConversationMessage, *, intent: str, triggers: ShopTriggers) -> Signals:
    """What the policy needs besides the parse for the shop's triggers over the whole message, read only when the
    rules use it: negative wording, "did this help? no" in a row, the value of an order the message names
    (`intent`: what the bot reads the message as; only order intents name an order)."""
    text = stored.text or ""
    order_value, unknown = await _order_value(turn, triggers) if intent in ORDER_INTENTS else (None, False)
    return Signals(negative_wording=triggers.on_negative_wording and handoff.rules.strongly_negative(text),
                   unhelpful_in_a_row=await _unhelpful_in_a_row(turn, stored) if triggers.unhelpful_in_a_row else 0,
                   order_value=order_value, order_value_unknown=unknown)


async def finish(turn: Turn, stored: ConversationMessage, decision: Decision, triggers: ShopTriggers) -> None:
    """After the bot's turn: open the inbox thread of a hand-off and tell the shopper their place in the queue (or
    the opening hours); else say a request for a person was declined, drop "Talk to a person" buttons the shop does
    not honour, and give an unsure answer the shop's mixed reply (a "Talk to a person" button, or held as a draft)."""
    if turn.handed_off:
        await _queue(turn, reason=turn.handoff_reason or decision.reason or "handoff")
        return
    declined = decision.reason in DECLINED_NOTICE
    if declined:
        # The shop switched this trigger off and the policy answered instead: say so first.
        turn.say(DECLINED_NOTICE[str(decision.reason)])
        turn.replies.insert(0, turn.replies.pop())
    if not triggers.on_request:
        _without_person_buttons(turn)
    if not turn.replies or declined:
        return
    if decision.action == "draft_for_agent":
        await _hold_as_draft(turn, stored)
    elif decision.action == "confirm":
        _offer_person(turn)


async def _hold_as_draft(turn: Turn, stored: ConversationMessage) -> None:
    """The answer waits as a draft for an agent; the shopper hears their place in the queue."""
    session = turn.session
    held = [r for r in turn.replies if (r.text and r.text != turn.t("did_this_help")) or r.cards]
    draft = "\n\n".join(r.text for r in held if r.text)
    if stored.id is None:
        await session.flush()  # the draft refers to the message: write it now
    # Kept with its cards and buttons, so an approved draft reaches the shopper as the bot would have sent it.
    await handoff.hold_draft(session, conversation_id=turn.conversation.id, text=draft, for_message_id=stored.id,
                             replies=held)
    turn.replies = []
    turn.handed_off = True
    notice = await handoff.queue_notice(session, conversation_id=turn.conversation.id)
    turn.say_text(notice.render(turn.locale))


def _decline(turn: Turn) -> None:
    turn.replies = []
    turn.say("handoff_unavailable", buttons=turn.menu(person=False))


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


async def _order_value(turn: Turn, triggers: ShopTriggers) -> tuple[Decimal | None, bool]:
    """The value of the order the message names, in the threshold's currency; (None, True) when it cannot be
    converted (no fresh rate: the safer side is a person); (None, False) when no order or no threshold."""
    if triggers.order_value_above is None:
        return None, False
    number = order_number_in(turn) if turn.parsed is not None else None
    if not number:
        return None, False
    order = await find_named_order(turn, number)  # by number or by public reference
    if order is None:
        return None, False
    value = await handoff.order_value_in(turn.session, amount=order.total, currency=order.currency,
                                         target=triggers.order_value_currency)
    return value, value is None

"""The conversation engine: one inbound message in, stored replies (and their outbox events) out."""
from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.conversations.repository import ConversationRepository
from bot.deps import BotDeps
from bot.handoff import engine_hooks
from bot.i18n import DEFAULT_LOCALE, supported_locale
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.policy import HANDOFF_INTENTS, Decision, decide, shop_triggers
from bot.rasa import engine_hook as rasa_hook
from bot.skills import cart, cross_border, faq, order_status, recommend, search
from bot.skills.base import Turn
from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ParsedMessage, has_letters
from commerce.shoppers.service import IDENTITY_KINDS, shopper_for_identity
from kit.clock import utcnow
from kit.errors import ShopTalkError
from kit.outbox import NewEvent, enqueue_many

log = logging.getLogger(__name__)

PAYLOAD = re.compile(r"^(search|product|more_like|cart|checkout|order|faq|feedback|handoff|menu):[^\s]*$")
BORDER_INTENTS = frozenset({"shipping_info", "customs_duties", "currency_payment", "return_refund"})
# Intents that never take over a question in flight ("yes", "no", noise).
WEAK_INTENTS = frozenset({FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, "affirm", "deny", "thanks", "greet"})
HANDOFF_QUEUE = "support"
UNSURE_INTENTS = frozenset({FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, "faq"})


@dataclass
class HandleResult:
    conversation_id: int
    replies: list[OutboundMessage] = field(default_factory=list)
    duplicate: bool = False


def text_to_parse(inbound: InboundMessage, *, deps: BotDeps) -> str | None:
    """The text the engine will hand to the NLU for this message (truncated), or None when it reads no text:
    a button, a known command, an empty, edited or unsupported message."""
    if inbound.kind in ("unsupported", "edited", "callback"):
        return None
    text = (inbound.text or "").strip()
    if not text or PAYLOAD.match(text):
        return None
    if text.startswith("/") and _command(text) in COMMANDS:
        return None
    return text[:deps.settings.limits.max_message_chars]


async def understand(inbound: InboundMessage, *, deps: BotDeps) -> ParsedMessage | None:
    """Parse the message's text, if the engine will need it. Call it before opening the transaction:
    the NLU is the slow part of a turn and must not hold a database connection or SQLite's write lock."""
    text = text_to_parse(inbound, deps=deps)
    return await deps.nlu.parse(text) if text is not None else None


async def handle_inbound(session: AsyncSession, inbound: InboundMessage, *, deps: BotDeps,
                         parsed: ParsedMessage | None = None, delivered_inline: bool = False) -> HandleResult:
    """Store the message with its NLU result, answer it, store the replies and queue them for sending.

    Runs in the caller's transaction (the channel commits). A message_id this conversation sent before is not
    processed again (another sender's message with the same id is a new one): the replies stored the first time
    come back with `duplicate=True`. While a person
    handles the conversation (mode "human") the bot stores the message and replies nothing. `parsed` is
    `understand(inbound)` when the caller ran the NLU before opening the transaction; otherwise the text
    is parsed here, still before the first statement. `delivered_inline`: the channel hands the replies over
    in its own response (REST, a connected web chat), so they get no outbox event (nothing is left to send;
    the stored messages are the record of what was said).
    """
    if parsed is None:
        parsed = await understand(inbound, deps=deps)
    # A transaction this call begins is its own to undo (the channel's unit of work): the skills then run
    # without a savepoint, and the rare failed turn is rolled back whole and stored again with an apology.
    owns_transaction = not session.in_transaction()
    received = await _receive(session, inbound, parsed, deferred=owns_transaction)
    if isinstance(received, HandleResult):
        return received
    conversation, stored, shopper_id = received
    turn = Turn(session=session, deps=deps, conversation=conversation, inbound=inbound, parsed=None,
                locale=_locale(conversation, inbound, None, deps), shopper_id=shopper_id, preparsed=parsed)
    try:
        async with nullcontext() if owns_transaction else session.begin_nested():
            if not await engine_hooks.answer_instead(turn, stored):
                if not await rasa_hook.answer(turn, stored):  # an imported Rasa assistant answers instead
                    await _respond(turn, stored)
                await engine_hooks.after_bot(turn, stored)
            # One flush: the conversation's UPDATE and the inbound's INSERT with its record.
            _keep_turn_state(turn)
            await session.flush()
    except IntegrityError:
        if not owns_transaction:
            raise
        # The same message delivered twice at once: the other delivery stored it first (PostgreSQL's row lock
        # serialised the two, but the repeat check ran on the snapshot taken before the wait).
        await _undo(session, conversation, stored)
        log.info("%s message %s was stored by a concurrent delivery", inbound.channel, inbound.message_id)
        again = await _receive(session, inbound, parsed, deferred=True)
        if not isinstance(again, HandleResult) or not again.duplicate:
            raise  # another constraint than the repeat's: the channel's unit of work rolls back
        return again
    except (ShopTalkError, ValidationError) as error:
        code = error.code if isinstance(error, ShopTalkError) else "invalid_input"
        log.warning("skill failed in conversation %s: %s", conversation.id, code)
        if owns_transaction:
            # Undo everything the turn wrote, then store the message again (what the conversation really holds).
            await _undo(session, conversation, stored)
            received = await _receive(session, inbound, parsed, deferred=True)
            if isinstance(received, HandleResult):
                return received
            conversation, stored, turn.shopper_id = received
            turn.conversation = conversation
        else:
            # The savepoint undid the skill's changes; reload what the conversation really holds.
            await session.refresh(conversation)
            await session.refresh(stored)
        if turn.parsed is not None:
            stored.nlu = _nlu_record(turn.parsed, policy="error", error=code)
        turn.replies = []
        turn.say("apology", code=code)
        _keep_turn_state(turn)
    # Each reply records what it answered: the inbound's intent and the policy's action.
    because = {"intent": ((stored.nlu or {}).get("intent") or {}).get("name"),
               "policy": (stored.nlu or {}).get("policy"), "payload": (stored.nlu or {}).get("payload")}
    await session.flush()  # the turn's state (conversation, the inbound with its NLU record) before the replies
    replies = await conversations.record_outbound_many(session, conversation=conversation, replies=turn.replies,
                                                       in_reply_to=stored.id, nlu=because)
    if not delivered_inline:  # handed over in the channel's own response: the stored reply is the record
        await enqueue_many(session, [NewEvent(topic=f"send.{inbound.channel}", payload=saved.model_dump(mode="json"),
                                              idempotency_key=f"msg:{saved.message_id}") for saved in replies])
    return HandleResult(conversation_id=conversation.id, replies=replies)


async def _undo(session: AsyncSession, conversation: Conversation, stored: ConversationMessage) -> None:
    """Roll the channel's transaction back; forget rows that may no longer exist (ids may come back)."""
    await session.rollback()
    for inserted in (conversation, stored):
        if inserted in session:
            session.expunge(inserted)


async def _receive(session: AsyncSession, inbound: InboundMessage, parsed: ParsedMessage | None, *, deferred: bool
                   ) -> tuple[Conversation, ConversationMessage, int | None] | HandleResult:
    """Lock the conversation and take the message in; a HandleResult when the bot has nothing more to do
    (a repeat delivery, or a person handles the conversation).

    `deferred` (the caller owns the transaction and can undo it whole): the message is written by the turn's
    flush with its NLU record, one INSERT; a repeat is found by the conversation's read. Otherwise (inside the
    caller's transaction) it is stored at once by `INSERT ... ON CONFLICT DO NOTHING`, so a savepoint around the
    skills can roll back to it."""
    # One message of a conversation at a time: the cart and the question in flight are not lost.
    if deferred:
        conversation, seen_id = await conversations.lock_for_inbound(session, inbound=inbound)
        stored: ConversationMessage | None = None
        shopper_id: int | None = None
        if seen_id is None:
            # The shopper before the message is added: a new shopper's flush would write it before its NLU record.
            shopper_id = await _shopper(session, conversation, inbound)
            stored = conversations.add_inbound(session, conversation=conversation, inbound=inbound)
    else:
        conversation = await conversations.get_or_create_conversation(session, channel=inbound.channel,
                                                                      sender_id=inbound.sender_id, lock=True)
        stored = await conversations.record_inbound(session, conversation=conversation, inbound=inbound)
        shopper_id = None if stored is None else await _shopper(session, conversation, inbound)
    if stored is None:
        seen = await conversations.find_inbound(session, conversation_id=conversation.id,
                                                external_id=inbound.message_id)
        assert seen is not None
        return await _duplicate(session, conversation, seen)
    if conversation.mode == "human":
        conversation.updated_at = utcnow()
        if parsed is not None:  # the agent sees what the shopper asked for
            stored.nlu = _nlu_record(parsed, policy="human")
        await session.flush()
        return HandleResult(conversation_id=conversation.id)
    return conversation, stored, shopper_id


def _keep_turn_state(turn: Turn) -> None:
    """What the conversation remembers of this turn: its language and the products on its cards."""
    conversation = turn.conversation
    conversation.updated_at = utcnow()
    if conversation.locale != turn.locale:
        conversation.locale = turn.locale
    shown = [card.sku for reply in turn.replies for card in reply.cards]
    if shown:
        # "Add it to my cart" later means the option on the card, not just the product.
        conversation.last_search = {**(conversation.last_search or {}), "shown": shown}


async def _duplicate(session: AsyncSession, conversation: Conversation, seen: ConversationMessage) -> HandleResult:
    # `seen` is this conversation's own message (repeats are per conversation): its replies are this sender's.
    replies = await conversations.stored_replies(session, conversation=conversation, inbound_id=seen.id)
    return HandleResult(conversation_id=conversation.id, replies=replies, duplicate=True)


async def _shopper(session: AsyncSession, conversation: Conversation, inbound: InboundMessage) -> int | None:
    if conversation.shopper_id is not None:
        return conversation.shopper_id
    if inbound.channel not in IDENTITY_KINDS:
        return None
    shopper = await shopper_for_identity(session, kind=inbound.channel, external_id=inbound.sender_id,
                                         name=inbound.sender_name, locale=supported_locale(inbound.locale_hint))
    conversation.shopper_id = shopper.id
    conversation.country = conversation.country or shopper.country
    conversation.currency = conversation.currency or shopper.currency
    conversation.email = conversation.email or shopper.email
    return shopper.id


def _locale(conversation: Conversation, inbound: InboundMessage, parsed: ParsedMessage | None,
            deps: BotDeps) -> str:
    """The NLU's detected language when the text has words; else what we knew; else the channel's hint."""
    detected = supported_locale(parsed.language) if parsed is not None and has_letters(parsed.text) else None
    if detected and (has_letters(_without_entities(parsed)) or not conversation.locale):  # type: ignore[arg-type]
        return detected
    return (conversation.locale or supported_locale(inbound.locale_hint)
            or supported_locale(deps.settings.locale.default_locale) or DEFAULT_LOCALE)


def _without_entities(parsed: ParsedMessage) -> str:
    """The words around the entities: an e-mail address or "Germany" alone says nothing about the language."""
    text, kept, cursor = parsed.text, [], 0
    for start, end in sorted((e.to_rasa()["start"], e.to_rasa()["end"]) for e in parsed.entities):
        if start >= cursor:
            kept.append(text[cursor:start])
            cursor = end
    kept.append(text[cursor:])
    return " ".join(kept)


def _nlu_record(parsed: ParsedMessage, **extra: Any) -> dict[str, Any]:
    record = parsed.to_rasa()
    record.update(extra)
    return record


async def _respond(turn: Turn, stored: ConversationMessage) -> None:
    inbound = turn.inbound
    if inbound.kind == "unsupported":
        turn.say("unsupported")
        return
    if inbound.kind == "edited":
        turn.say("edited")
        return
    payload = inbound.payload if inbound.kind == "callback" else None
    text = (inbound.text or "").strip()
    if payload is None and PAYLOAD.match(text):
        payload = text  # a button pressed on a channel that sends payloads back as text (Rasa REST)
    if inbound.kind == "callback" and not payload:
        turn.say("unknown_button", buttons=_menu(turn))
        return
    if payload is not None:
        stored.nlu = {"payload": payload}
        await _on_payload(turn, payload)
        return
    if inbound.kind == "command" or text.startswith("/"):
        if await _on_command(turn, text):
            return
    if not text:
        turn.say("empty", buttons=_menu(turn))
        return
    limit = turn.deps.settings.limits.max_message_chars
    truncated = len(text) > limit
    parsed = turn.preparsed if turn.preparsed is not None else await turn.deps.nlu.parse(text[:limit])
    turn.parsed = parsed
    turn.locale = _locale(turn.conversation, inbound, parsed, turn.deps)
    if truncated:
        turn.say("too_long", n=limit, limit=limit)
    pending = turn.conversation.pending
    if pending and await _continue_pending(turn, pending):
        # An answer to the bot's question ("#10023") means the question's intent, whatever the classifier said.
        stored.nlu = _nlu_record(parsed, policy="slot", truncated=truncated, nlu_intent=parsed.to_rasa()["intent"],
                                 slot=pending.get("slot"))
        stored.nlu["intent"] = {"name": str(pending.get("intent")), "confidence": 1.0}
        return
    triggers = await shop_triggers(turn.session)  # the shop's switches and thresholds
    decision = decide(parsed, thresholds=turn.deps.policy, misunderstood_before=0, triggers=triggers)
    if decision.action == "clarify":  # only an unclear message asks how many came before it
        misunderstood = await _misunderstood_in_a_row(turn.session, turn.conversation.id, stored)
        decision = decide(parsed, thresholds=turn.deps.policy, misunderstood_before=misunderstood,
                          triggers=triggers)
    unclear = decision.action in ("clarify", "handoff") and decision.intent not in HANDOFF_INTENTS
    if parsed.entity_values("product") and (unclear or (decision.action == "confirm"
                                                        and decision.intent in UNSURE_INTENTS)):
        # A product name in an unclear message is most likely a search ("red hoodie in large?").
        decision = Decision("confirm", "product_search", decision.confidence)
    stored.nlu = _nlu_record(parsed, policy=decision.action, truncated=truncated)
    if decision.action == "handoff":
        handoff(turn, decision.intent)
        return
    if decision.action == "clarify":
        if await faq.answer(turn):
            _ask_feedback(turn)
            return
        turn.say("not_understood", buttons=_menu(turn))
        return
    asked_before = turn.conversation.pending
    await route_intent(turn, decision.intent)
    if decision.action == "confirm" and not turn.handed_off and turn.conversation.pending == asked_before:
        _ask_feedback(turn)


def _menu(turn: Turn) -> list[Button]:
    return [turn.button("button.search", "menu:search"), turn.button("button.order_status", "menu:order"),
            turn.button("button.cart", "cart:view"), turn.button("button.human", "handoff:request")]


def _ask_feedback(turn: Turn) -> None:
    turn.say("did_this_help", buttons=[turn.button("button.yes", "feedback:yes"),
                                       turn.button("button.no", "feedback:no")])


def handoff(turn: Turn, intent: str) -> None:
    """Hand the conversation to a person: the bot goes quiet until an agent gives it back."""
    conversation = turn.conversation
    conversation.mode = "human"
    conversation.queue = HANDOFF_QUEUE
    conversation.pending = None
    turn.handed_off = True
    number = order_status.order_number_in(turn) if turn.parsed is not None else None
    if intent == "cancel_order" and number:
        turn.say("cancel_order_handoff", number=number)
    else:
        turn.say("handoff_complaint" if intent == "complaint" else "handoff")


async def _misunderstood_in_a_row(session: AsyncSession, conversation_id: int, current: ConversationMessage) -> int:
    count = 0
    for message in reversed(await ConversationRepository(session).last_messages(conversation_id, 12)):
        if message.direction != "in" or message is current:  # the current one may be written already, or not
            continue
        if (message.nlu or {}).get("policy") != "clarify":
            break
        count += 1
    return count


async def route_intent(turn: Turn, intent: str) -> None:
    turn.conversation.pending = None
    if intent in ("greet", "goodbye", "thanks", "help", "affirm", "deny"):
        _small_talk(turn, intent)
    elif intent == "product_search":
        await search.search(turn)
    elif intent == "recommend":
        await recommend.recommend(turn)
    elif intent == "add_to_cart":
        await cart.add_from_text(turn)
    elif intent == "view_cart":
        await cart.view(turn)
    elif intent == "checkout":
        await cart.checkout(turn)
    elif intent == "order_status":
        await order_status.start(turn)
    elif intent in ("cancel_order", "human_handoff", "complaint"):
        handoff(turn, intent)
    elif intent in BORDER_INTENTS:
        if not await cross_border.answer(turn, intent) and not await faq.answer(turn):
            turn.say("faq_none", buttons=[turn.button("button.human", "handoff:request")])
    elif intent == OUT_OF_SCOPE_INTENT:
        if not await faq.answer(turn):
            turn.say("out_of_scope", buttons=_menu(turn))
    elif not await faq.answer(turn):
        turn.say("faq_none", buttons=[turn.button("button.human", "handoff:request")])


def _small_talk(turn: Turn, intent: str) -> None:
    if intent == "greet":
        name = turn.inbound.sender_name
        name_part = turn.t("greet.name_part", name=name) if name else ""
        turn.say("greet", name_part=name_part, buttons=_menu(turn))
    elif intent == "help":
        turn.say("help", buttons=_menu(turn))
    elif intent == "affirm":
        turn.say("affirm_nothing", buttons=_menu(turn))
    elif intent == "deny":
        turn.say("deny_nothing")
    else:
        turn.say(intent)


async def _continue_pending(turn: Turn, pending: dict[str, Any]) -> bool:
    """Read the message as the answer to the question in flight; False when it is something else."""
    intent, slot = str(pending.get("intent")), str(pending.get("slot"))
    data = pending.get("data") or {}
    parsed = turn.parsed
    assert parsed is not None
    confident_other = (parsed.intent not in WEAK_INTENTS and parsed.intent != intent
                       and parsed.confidence >= turn.deps.policy.answer_at)
    if parsed.intent == "deny" and parsed.confidence >= turn.deps.policy.answer_at:
        turn.conversation.pending = None
        turn.say("deny_nothing")
        return True
    if intent == "order_status" and slot == "order_number":
        number = order_status.order_number_in(turn)
        if number:
            await order_status.with_number(turn, number)
            return True
        if confident_other:
            return False
        turn.ask(intent=intent, slot=slot, key="ask_order_number")
        return True
    if intent == "order_status" and slot == "order_proof":
        answer = turn.text.strip()
        if turn.entity("email") or "@" in answer or (order_status.POSTCODE.match(answer) and
                                                      any(c.isdigit() for c in answer)):
            await order_status.with_proof(turn, str(data.get("number", "")))
            return True
        named = turn.entity("order_number")
        if named and str(named).lstrip("#") != str(data.get("number", "")):
            await order_status.with_number(turn, str(named).lstrip("#"))  # asking about another order now
            return True
        if confident_other:
            return False
        order_status.ask_proof_again(turn, str(data.get("number", "")))
        return True
    if intent == "checkout":
        answer = turn.text.strip()
        looks_like = {"country": turn.entity("country") is not None,
                      "email": turn.entity("email") is not None or "@" in answer,
                      "postcode": bool(cart.POSTCODE.match(answer)) and any(c.isdigit() for c in answer)}
        if looks_like.get(slot) or not confident_other:
            await cart.fill_checkout_slot(turn, slot)
            return True
        return False
    if slot == "country" and intent in BORDER_INTENTS:
        if turn.entity("country") or not confident_other:
            await cross_border.continue_with_country(turn, intent)
            return True
        return False
    if intent == "product_search" and slot == "query":
        if confident_other and parsed.intent != "product_search":
            return False
        turn.conversation.pending = None
        await search.search(turn)
        return True
    turn.conversation.pending = None
    return False


COMMANDS = frozenset({"start", "help", "cart", "human", "agent"})


def _command(text: str) -> str:
    return text.split()[0].lstrip("/").split("@")[0].lower() if text.strip() else ""


async def _on_command(turn: Turn, text: str) -> bool:
    command = _command(text)
    if command == "start":
        _small_talk(turn, "greet")
    elif command == "help":
        _small_talk(turn, "help")
    elif command == "cart":
        await cart.view(turn)
    elif command in ("human", "agent"):
        handoff(turn, "human_handoff")
    else:
        return False
    return True


async def _on_payload(turn: Turn, payload: str) -> None:
    """Buttons: search:page:N, product:details:ID, more_like:ID, cart:add:SKU[:QTY], cart:remove:SKU,
    cart:set:SKU:QTY, cart:view, checkout:start, checkout:place:DIGEST, checkout:ship:SERVICE,
    order:status:NUMBER, faq:entry:ID, feedback:yes|no, handoff:request, menu:search|order|cart|help.
    A ":rec:<impression id>" suffix counts a recommendation's click or add-to-cart."""
    head, _, rest = payload.partition(":")
    rest, _, tracked = rest.partition(":rec:")
    try:
        impression_id = int(tracked) if tracked else None
        if head == "search" and rest.startswith("page:"):
            await search.show_page(turn, page=int(rest.removeprefix("page:")))
        elif head == "product" and rest.startswith("details:"):
            await search.details(turn, int(rest.removeprefix("details:")))
            if impression_id is not None:
                await recommend.count_outcome(turn, impression_id, "click")
        elif head == "more_like" and rest:
            await recommend.more_like(turn, int(rest))
        elif head == "cart" and rest == "view":
            await cart.view(turn)
        elif head == "cart" and rest.startswith("add:"):
            sku, _, quantity = rest.removeprefix("add:").partition(":")
            if await cart.add(turn, sku, int(quantity) if quantity else 1, impression_id=impression_id) and \
                    impression_id is not None:
                await recommend.count_outcome(turn, impression_id, "add_to_cart")
        elif head == "cart" and rest.startswith("remove:"):
            await cart.remove(turn, rest.removeprefix("remove:"))
        elif head == "cart" and rest.startswith("set:"):
            sku, _, quantity = rest.removeprefix("set:").rpartition(":")
            await cart.set_quantity(turn, sku, int(quantity))
        elif head == "checkout" and rest == "start":
            await cart.checkout(turn)
        elif head == "checkout" and rest.startswith("place:"):
            await cart.confirm(turn, rest.removeprefix("place:"))
        elif head == "checkout" and rest.startswith("ship:"):
            await cart.choose_service(turn, rest.removeprefix("ship:"))
        elif head == "order" and rest.startswith("status:"):
            await order_status.with_number(turn, rest.removeprefix("status:"))
        elif head == "faq" and rest.startswith("entry:"):
            if not faq.show_suggested(turn, rest.removeprefix("entry:")):
                turn.say("unknown_button", buttons=_menu(turn))
        elif head == "feedback" and rest == "yes":
            turn.say("feedback_thanks")
        elif head == "feedback" and rest == "no":
            turn.say("feedback_sorry", buttons=[turn.button("button.human", "handoff:request"),
                                                turn.button("button.search", "menu:search")])
        elif head == "handoff" and rest == "request":
            handoff(turn, "human_handoff")
        elif head == "menu" and rest == "search":
            turn.ask(intent="product_search", slot="query", key="search_ask")
        elif head == "menu" and rest == "order":
            await order_status.start(turn)
        elif head == "menu" and rest == "help":
            _small_talk(turn, "help")
        else:
            turn.say("unknown_button", buttons=_menu(turn))
    except ValueError:
        turn.say("unknown_button", buttons=_menu(turn))

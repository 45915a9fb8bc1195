"""The conversation engine: one inbound message in, stored replies (and their outbox events) out."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands import parse_command
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.conversations.repository import ConversationRepository
from bot.deps import BotDeps
from bot.handoff import engine_hooks
from bot.i18n import DEFAULT_LOCALE, supported_locale
from bot.messages import InboundMessage, OutboundMessage
from bot.policy import (
    Decision,
    ShopTriggers,
    Signals,
    counts_misunderstood,
    decide,
    escalate,
    names_a_person,
    only_names_a_product,
    shop_triggers,
)
from bot.rasa import engine_hook as rasa_hook
from bot.skills import faq
from bot.skills.base import Answer, Question, Turn
from bot.skills.cart import asks_before_buying, asks_rather_than_orders
from bot.skills.person import ASKED, hand_off
from bot.skills.product_question_model import learned_product_question
from bot.skills.product_routing import asks_about_a_product, names_an_order_or_delivery, question_about_view
from bot.skills.registry import REGISTRY
from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ParsedMessage, has_letters
from commerce.shoppers.service import IDENTITY_KINDS, shopper_for_identity
from kit.clock import utcnow
from kit.errors import ShopTalkError
from kit.outbox import NewEvent, enqueue_many

log = logging.getLogger(__name__)

# Intents that never take over a question in flight ("yes", "no", noise).
WEAK_INTENTS = frozenset({FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, "affirm", "deny", "thanks", "greet"})


@dataclass
class HandleResult:
    conversation_id: int
    replies: list[OutboundMessage] = field(default_factory=list)
    duplicate: bool = False
    message_id: int | None = None  # the inbound as stored (None for a repeat)
    held_for_person: bool = False  # a person has the conversation: stored as is, the bot did not answer


def text_to_parse(inbound: InboundMessage, *, deps: BotDeps) -> str | None:
    """The text the engine will hand to the NLU for this message (truncated), or None when it reads no text:
    a button, a known command, an empty, edited or unsupported message."""
    if inbound.kind in ("unsupported", "edited", "callback"):
        return None
    text = (inbound.text or "").strip()
    if not text or REGISTRY.payload_text.match(text):
        return None
    command = parse_command(text)
    if command is not None and REGISTRY.for_command(command.name) is not None:
        return None
    return text[:deps.settings.limits.max_message_chars]


async def understand(inbound: InboundMessage, *, deps: BotDeps) -> ParsedMessage | None:
    """Parse the message's text, if the engine will need it. Call it before opening the transaction:
    the NLU is the slow part of a turn and must not hold a database connection or SQLite's write lock."""
    text = text_to_parse(inbound, deps=deps)
    if text is None:
        return None
    if deps.catalog_words is not None:  # a product added since the last message is a product word now
        await deps.catalog_words.refresh(deps.nlu)
    return await deps.nlu.parse(text)


async def handle_inbound(session: AsyncSession, inbound: InboundMessage, *, deps: BotDeps,
                         parsed: ParsedMessage | None = None, delivered_inline: bool = False,
                         parse_first: bool = True) -> HandleResult:
    """Store the message with its NLU result, answer it, store the replies and queue them for sending.

    Runs in the caller's transaction (the channel commits). A message_id this conversation sent before is not
    processed again (another sender's message with the same id is a new one): the replies stored the first time
    come back with `duplicate=True`. While a person
    handles the conversation (mode "human") the bot stores the message and replies nothing. `parsed` is
    `understand(inbound)` when the caller ran the NLU before opening the transaction; otherwise the text
    is parsed here, still before the first statement. `delivered_inline`: the channel hands the replies over
    in its own response (REST, a connected web chat), so they get no outbox event (nothing is left to send;
    the stored messages are the record of what was said). `parse_first=False` (the caller saw a person has the
    conversation): a message held for the person is stored unparsed, and should the bot have it after all, the turn
    parses it under the conversation's lock.
    """
    if parsed is None and parse_first:
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
                triggers = await shop_triggers(session)  # the shop's escalation rules (cached per process)
                decision = await _rasa(turn, stored, triggers)  # an imported Rasa assistant answers instead
                if decision is None:
                    decision = await _respond(turn, stored, triggers)
                await engine_hooks.finish(turn, stored, decision, triggers)
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
    return HandleResult(conversation_id=conversation.id, replies=replies, message_id=stored.id)


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
    if conversation.mode == "human" and not await engine_hooks.bot_serves(session, conversation, inbound):
        conversation.updated_at = utcnow()
        if parsed is not None:  # the agent sees what the shopper asked for
            stored.nlu = _nlu_record(parsed, policy="human")
        await session.flush()
        return HandleResult(conversation_id=conversation.id, message_id=stored.id, held_for_person=True)
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
    if conversation.locale and (conversation.pending or {}).get("slot") == "address":
        return conversation.locale  # a name or a street ("Unter den Linden 1") says nothing about the language
    detected = supported_locale(parsed.language) if parsed is not None and has_letters(parsed.text) else None
    if detected == "zh" and conversation.locale == "ja":
        detected = "ja"  # kanji alone (韓国, 米国) is Japanese too: it does not move a Japanese conversation to Chinese
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


async def _respond(turn: Turn, stored: ConversationMessage, triggers: ShopTriggers) -> Decision:
    """Read the message, decide what to do with it (`bot.policy`) and do it; the decision is returned (and, for a
    hand-off or a draft, recorded on the message's NLU record with its reason)."""
    inbound = turn.inbound
    text = (inbound.text or "").strip()
    act = _without_nlu(turn, stored, text)
    if act is not None:  # not a message to classify: only the triggers over the whole message apply
        decision = await _escalate(turn, stored, ANSWER, intent="", triggers=triggers)
        if decision.action == "handoff":
            _hand_off(turn, decision, stored)
        else:
            await act()
        return decision
    limit = turn.deps.settings.limits.max_message_chars
    truncated = len(text) > limit
    parsed = turn.preparsed if turn.preparsed is not None else await turn.deps.nlu.parse(text[:limit])
    turn.parsed = parsed
    turn.locale = _locale(turn.conversation, inbound, parsed, turn.deps)
    if truncated:
        turn.say("too_long", n=limit, limit=limit)
    pending = turn.conversation.pending
    answer = _answer_to_question(turn, pending) if pending else None
    if answer is not None and pending is not None:
        # An answer to the bot's question ("#10023") means the question's intent, whatever the classifier said.
        intent = str(pending.get("intent"))
        stored.nlu = _nlu_record(parsed, policy="slot", truncated=truncated, nlu_intent=parsed.to_rasa()["intent"],
                                 slot=pending.get("slot"))
        stored.nlu["intent"] = {"name": intent, "confidence": 1.0}
        decision = await _escalate(turn, stored, Decision("answer", intent, 1.0), intent=intent, triggers=triggers)
        if decision.action == "handoff":
            _hand_off(turn, decision, stored)
        else:
            await answer()
        return decision
    thresholds = turn.deps.policy
    misunderstood = (await _misunderstood_in_a_row(turn.session, turn.conversation.id, stored)
                     if counts_misunderstood(parsed, thresholds=thresholds, triggers=triggers) else 0)
    signals = message_signals(parsed, shown=bool(turn.conversation.last_products), in_cart=bool(turn.conversation.cart),
                              base=await engine_hooks.signals(turn, stored, intent=parsed.intent, triggers=triggers))
    decision = decide(parsed, thresholds=thresholds, misunderstood_before=misunderstood, triggers=triggers,
                      signals=signals)
    stored.nlu = _nlu_record(parsed, policy=decision.action, truncated=truncated,
                             **({"reason": decision.reason} if decision.reason else {}))
    if decision.action == "handoff":
        _hand_off(turn, decision, None)
    elif decision.action == "clarify":
        if await faq.answer(turn):
            _ask_feedback(turn)
        else:
            turn.say("not_understood", buttons=turn.menu())
    else:
        asked_before = turn.conversation.pending
        await route_intent(turn, decision.intent)
        if decision.action == "confirm" and not turn.handed_off and turn.conversation.pending == asked_before:
            _ask_feedback(turn)
    return decision


def message_signals(parsed: ParsedMessage, *, shown: bool, in_cart: bool, base: Signals | None = None) -> Signals:
    """What the message itself tells the policy about products (`Signals` fields), given whether a product is shown
    and whether the cart holds one: the hand rules, and the learned product-question model beside them (either
    makes it a question about a product; a question it reads so never changes the cart)."""
    in_view = shown or in_cart
    about_a_product = asks_about_a_product(parsed, in_view=in_view)  # the rule, read once: the model reads it too
    learned = learned_product_question(parsed, in_view=in_view, about_a_product=about_a_product)
    return replace(base or Signals(), names_a_product=bool(parsed.entity_values("product")),
                   only_names_a_product=only_names_a_product(parsed),
                   asks_about_a_product=about_a_product or learned,
                   # Only a product shown: a cart line does not make "what is your phone number?" about it.
                   question_in_view=question_about_view(parsed, in_view=shown),
                   asks_before_buying=asks_before_buying(parsed) or (learned and asks_rather_than_orders(parsed.text)),
                   names_a_person=names_a_person(parsed.text),
                   names_an_order_or_delivery=names_an_order_or_delivery(
                       parsed.text, order_number=bool(parsed.entity_values("order_number")),
                       country=bool(parsed.entity_values("country"))))


async def _rasa(turn: Turn, stored: ConversationMessage, triggers: ShopTriggers) -> Decision | None:
    """The answer of an imported Rasa assistant, when one is active (None: ShopTalk's skills answer). Its reading of
    the message is known only once it answered: the shop's triggers then replace its answer with a hand-off."""
    intent = await rasa_hook.answer(turn, stored)
    if intent is None:
        return None
    if turn.handed_off:  # the assistant's own hand-off action
        turn.handoff_reason = intent or ASKED
        return Decision("handoff", intent, 1.0, reason=turn.handoff_reason)
    decision = await _escalate(turn, stored, Decision("answer", intent, 1.0), intent=intent, triggers=triggers)
    if decision.action == "handoff":
        turn.replies = []  # a person answers instead
        _hand_off(turn, decision, stored)
    return decision


ANSWER = Decision("answer", "", 1.0)  # a message the bot answers without the classifier (a button, a command)


def _without_nlu(turn: Turn, stored: ConversationMessage, text: str) -> Answer | None:
    """What answers a message that is not text to classify (a button, a known command, an empty, edited or
    unsupported message); None for text to classify."""
    inbound = turn.inbound
    if inbound.kind == "unsupported":
        return _say(turn, "unsupported")
    if inbound.kind == "edited":
        return _say(turn, "edited")
    payload = inbound.payload if inbound.kind == "callback" else None
    if payload is None and REGISTRY.payload_text.match(text):
        payload = text  # a button pressed on a channel that sends payloads back as text (Rasa REST)
    if payload is not None:
        stored.nlu = {"payload": payload}
    if inbound.kind == "callback" and not payload:
        return _say(turn, "unknown_button", buttons=turn.menu())
    if payload is not None:
        return lambda: _on_payload(turn, payload)
    command = parse_command(text) if inbound.kind == "command" or text.startswith("/") else None
    handler = REGISTRY.for_command(command.name) if command is not None else None
    if handler is not None:
        return lambda: handler(turn)
    if not text:
        return _say(turn, "empty", buttons=turn.menu())
    return None


def _say(turn: Turn, key: str, **values: Any) -> Answer:
    async def say() -> None:
        turn.say(key, **values)
    return say


async def _escalate(turn: Turn, stored: ConversationMessage, decision: Decision, *, intent: str,
                    triggers: ShopTriggers) -> Decision:
    """The shop's triggers over the whole message, for a message the bot reads without classifying it."""
    signals = await engine_hooks.signals(turn, stored, intent=intent, triggers=triggers)
    return escalate(decision, intent=intent, triggers=triggers, signals=signals)


def _hand_off(turn: Turn, decision: Decision, stored: ConversationMessage | None) -> None:
    """Carry out the policy's hand-off; `stored`: record its reason on the message's NLU record too."""
    reason = decision.reason or decision.intent or ASKED
    if stored is not None:
        stored.nlu = {**(stored.nlu or {}), "policy": "handoff", "reason": reason}
    hand_off(turn, intent=decision.intent, reason=reason)


def _ask_feedback(turn: Turn) -> None:
    turn.say("did_this_help", buttons=[turn.button("button.yes", "feedback:yes"),
                                       turn.button("button.no", "feedback:no")])


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
    """Answer the intent with the skill that owns it (`bot.skills.registry`)."""
    turn.conversation.pending = None
    await REGISTRY.for_intent(intent)(turn, intent)


def _answer_to_question(turn: Turn, pending: dict[str, Any]) -> Answer | None:
    """What answers the question in flight when the message is its answer; None when it is something else."""
    intent, slot = str(pending.get("intent")), str(pending.get("slot"))
    parsed = turn.parsed
    assert parsed is not None
    if parsed.intent == "deny" and parsed.confidence >= turn.deps.policy.answer_at:
        async def never_mind() -> None:
            turn.conversation.pending = None
            turn.say("deny_nothing")
        return never_mind
    reader = REGISTRY.for_answer(intent, slot)
    if reader is None:
        turn.conversation.pending = None  # a question no skill reads any more
        return None
    confident_other = (parsed.intent not in WEAK_INTENTS and parsed.intent != intent
                       and parsed.confidence >= turn.deps.policy.answer_at)
    return reader(turn, Question(intent=intent, slot=slot, data=pending.get("data") or {},
                                 confident_other=confident_other))


async def _on_payload(turn: Turn, payload: str) -> None:
    """A button: the skill that registered its payload (`bot.skills.registry`) answers it."""
    found = REGISTRY.for_payload(payload)
    if found is not None:
        handler, press = found
        try:
            await handler(turn, press)
            return
        except ValueError:  # a number in the payload that is not one
            pass
    turn.say("unknown_button", buttons=turn.menu())

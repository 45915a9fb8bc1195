"""Order status, only for the order's owner; wrong proofs back off and reveal nothing.

An order is named by its sequential number (proof: the order's e-mail; a postcode alone is not enough, anyone
can name the next number) or by its unguessable public reference (proof: the e-mail or the postcode).
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations.service import get_conversation, record_outbound, remember_verified_order, verified_order
from bot.messages import OutboundMessage
from bot.skills.base import Answer, Press, Question, Skill, Turn
from commerce.money import format_money
from commerce.orders.errors import OrderNotFound
from commerce.orders.models import Order
from commerce.orders.refs import parse_public_ref, public_ref_in
from commerce.orders.service import get_order, get_order_by_number, get_order_by_public_ref, orders_for_shopper
from kit.clock import utcnow
from kit.errors import NotFound
from kit.outbox import enqueue

ORDER_NUMBER = re.compile(r"#?\s*(\d{3,12})")
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")


def order_number_in(turn: Turn) -> str | None:
    """The order the message names: its public reference (canonical ST-XXXXX-XXXXX) or its number."""
    ref = public_ref_in(turn.text)
    if ref:
        return ref
    named = turn.entity("order_number")
    if named:
        return str(named).lstrip("#").strip()
    match = ORDER_NUMBER.fullmatch(turn.text.strip())
    return match.group(1) if match else None


async def start(turn: Turn) -> None:
    """"Where is my order?": with a number, check it; without, ask for it (offering the shopper's own)."""
    number = order_number_in(turn)
    if number:
        await with_number(turn, number)
        return
    own = await orders_for_shopper(turn.session, shopper_id=turn.shopper_id, limit=5) if turn.shopper_id else []
    if own:
        turn.ask(intent="order_status", slot="order_number", key="ask_order_number_or_pick",
                 buttons=[turn.button_text(f"#{o.number} · {o.public_ref}", f"order:status:{o.public_ref}")
                          for o in own])
        return
    turn.ask(intent="order_status", slot="order_number", key="ask_order_number")


def _named(named: str) -> tuple[str, bool]:
    """(the order as named, canonical; whether it is a public reference): digits are an order number."""
    bare = named.strip().lstrip("#").strip()
    ref = None if bare.isdigit() else parse_public_ref(bare)
    return (ref, True) if ref else (bare, False)


async def find_named_order(turn: Turn, number: str) -> Order | None:
    """The order a shopper named, by number or by public reference; None when there is none."""
    named, by_ref = _named(number)
    try:
        if by_ref:
            return await get_order_by_public_ref(turn.session, public_ref=named)
        return await get_order_by_number(turn.session, number=named)
    except OrderNotFound:
        return None


def _owned(turn: Turn, order: Order | None) -> bool:
    if order is None:
        return False
    if turn.shopper_id is not None and order.shopper_id == turn.shopper_id:
        return True
    return verified_order(turn.conversation, order.number, now=utcnow(),
                          ttl_seconds=turn.deps.settings.security.verified_order_ttl_seconds)


def _say_wait(turn: Turn, seconds: int) -> None:
    minutes = -(-seconds // 60)  # rounded up
    wait = (turn.t("wait.seconds", n=seconds, count=seconds) if seconds <= 90
            else turn.t("wait.minutes", n=minutes, count=minutes))
    turn.say("order_rate_limited", wait=wait)


def ask_proof_again(turn: Turn, number: str) -> None:
    """The proof question once more, for an order named by number (e-mail) or by reference (e-mail or postcode)."""
    named, by_ref = _named(number)
    _ask_proof(turn, named, by_ref)


def _ask_proof(turn: Turn, named: str, by_ref: bool, key: str = "ask_order_proof") -> None:
    turn.ask(intent="order_status", slot="order_proof", key="ask_order_proof_ref" if by_ref else key,
             data={"number": named}, number=named)


async def with_number(turn: Turn, number: str) -> None:
    named, by_ref = _named(number)
    order = await find_named_order(turn, named)
    if order is not None and _owned(turn, order):
        turn.conversation.pending = None
        show(turn, order)
        return
    waits = await turn.deps.rate_limiter.waits(turn.session, conversation_id=turn.conversation.id)
    if waits.by_conversation:
        turn.conversation.pending = None
        _say_wait(turn, waits.by_conversation)
        return
    # Unknown and someone else's orders get the same question: existence is never revealed.
    _ask_proof(turn, named, by_ref)


async def with_proof(turn: Turn, number: str) -> None:
    """The shopper typed an e-mail or postcode for the order named: show it if it proves ownership, else the same
    refusal. Only this conversation's failures hold back an e-mail; the order's own count (guesses from any
    conversation) holds back postcodes only, so nobody can lock the owner out."""
    limiter = turn.deps.rate_limiter
    conversation_id = turn.conversation.id
    named, by_ref = _named(number)
    turn.conversation.pending = None
    waits = await limiter.waits(turn.session, conversation_id=conversation_id, order_number=named)
    if waits.by_conversation:
        _say_wait(turn, waits.by_conversation)
        return
    proof = str(turn.entity("email") or turn.text).strip()
    by_email = "@" in proof
    if not by_email and not by_ref:
        # Not checked, so not counted: a postcode proves nothing with a number anyone can name.
        _ask_proof(turn, named, by_ref, key="order_proof_needs_email")
        return
    if not by_email and waits.for_order:
        _say_wait(turn, waits.for_order)
        return
    order = await find_named_order(turn, named)
    matched = order is not None and _proves(order, proof, by_ref=by_ref)
    await limiter.record(turn.session, conversation_id=conversation_id, succeeded=matched, order_number=named)
    if not matched or order is None:
        turn.say("order_not_matched")
        return
    remember_verified_order(turn.conversation, order.number, now=utcnow())
    show(turn, order)


def _squash(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def _proves(order: Order, proof: str, *, by_ref: bool) -> bool:
    if not proof:
        return False
    if "@" in proof:
        return (order.email or "").strip().lower() == proof.lower()
    # The reference is the second factor that makes a postcode enough.
    return (by_ref and bool(order.postcode) and bool(POSTCODE.match(proof))
            and _squash(order.postcode or "") == _squash(proof))


def show(turn: Turn, order: Order) -> None:
    history = "\n".join(turn.t("order_history_line", when=i18n.format_day(turn.locale, change.changed_at),
                               status=turn.t(f"status.{change.to_status}"))
                        for change in order.history)
    tracking = ""
    if order.carrier or order.tracking_number:
        tracking = turn.t("order_tracking", carrier=order.carrier or "-", tracking=order.tracking_number or "-")
    # An unpaid order offers its payment again ("how do I pay for order N?"): only its verified owner gets here.
    pay = ([turn.button("button.pay_now", f"pay:choose:{order.number}")] if order.status == "pending_payment"
           else [])
    turn.say("order_status", number=order.number, ref=order.public_ref, status=turn.t(f"status.{order.status}"),
             history=history, tracking=tracking, buttons=pay,
             custom={"order_number": order.number, "order_ref": order.public_ref, "status": order.status,
                     "carrier": order.carrier, "tracking_number": order.tracking_number})


skill = Skill("order_status")


@skill.intent("order_status")
async def for_intent(turn: Turn, intent: str) -> None:
    await start(turn)


@skill.payload("menu:order")
async def menu_button(turn: Turn, press: Press) -> None:
    await start(turn)


@skill.payload("order:status:")
async def pick_button(turn: Turn, press: Press) -> None:
    await with_number(turn, press.arg)


@skill.answer("order_status", slot="order_number")
def read_number(turn: Turn, question: Question) -> Answer | None:
    number = order_number_in(turn)
    if number:
        return lambda: with_number(turn, number)
    if question.confident_other:
        return None

    async def ask_again() -> None:
        turn.ask(intent=question.intent, slot=question.slot, key="ask_order_number")
    return ask_again


@skill.answer("order_status", slot="order_proof")
def read_proof(turn: Turn, question: Question) -> Answer | None:
    answer, number = turn.text.strip(), str(question.data.get("number", ""))
    if turn.entity("email") or "@" in answer or (POSTCODE.match(answer) and any(c.isdigit() for c in answer)):
        return lambda: with_proof(turn, number)
    named = turn.entity("order_number")
    if named and str(named).lstrip("#") != number:
        return lambda: with_number(turn, str(named).lstrip("#"))  # asking about another order now
    if question.confident_other:
        return None

    async def ask_again() -> None:
        ask_proof_again(turn, number)
    return ask_again


async def notify_status_change(session: AsyncSession, *, payload: dict[str, Any]) -> bool:
    """Tell the shopper who placed an order in a chat of its new status, in their language, on that chat's channel
    (queued on `send.<channel>`; the key makes a redelivered event send once). False when the order was not placed
    in a chat or the conversation is gone."""
    external_id = str(payload.get("external_id", ""))
    match = re.match(r"^chat:(\d+):", external_id)
    if match is None:
        return False
    try:
        conversation = await get_conversation(session, conversation_id=int(match.group(1)))
        order = await get_order(session, order_id=int(payload["order_id"]))
    except NotFound:
        return False
    status = str(payload.get("status", ""))
    key = f"notify.{payload.get('notice') or status}"
    locale = conversation.locale or i18n.DEFAULT_LOCALE
    if status == "pending_payment" or not i18n.has_text(locale, key):
        return False
    amount = payload.get("amount")  # a refund that leaves the status as it was (issue 23)
    money = format_money(Decimal(str(amount)), str(payload.get("currency")), locale) if amount else ""
    text = i18n.t(locale, key, number=order.number, carrier=order.carrier or "", tracking=order.tracking_number or "",
                  amount=money)
    reply = OutboundMessage(channel=conversation.channel, recipient_id=conversation.sender_id, text=text,
                            custom={"order_number": order.number, "status": status}, author="system")
    saved = await record_outbound(session, conversation=conversation, reply=reply, in_reply_to=None)
    await enqueue(session, topic=f"send.{conversation.channel}", payload=saved.model_dump(mode="json"),
                  idempotency_key=f"order-notify:{order.id}:{payload.get('from_status')}:{status}"
                                  + (f":{payload['refund_id']}" if payload.get("refund_id") else ""))
    return True

"""Order status, only for the order's owner; wrong proofs are rate-limited and reveal nothing."""
from __future__ import annotations

import re

from bot.conversations.service import remember_verified_order, verified_order
from bot.skills.base import Turn
from commerce.orders.errors import OrderNotFound
from commerce.orders.models import Order
from commerce.orders.service import get_order_by_number, orders_for_shopper
from kit.clock import utcnow

ORDER_NUMBER = re.compile(r"#?\s*(\d{3,12})")
POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")


def order_number_in(turn: Turn) -> str | None:
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
                 buttons=[turn.button_text(f"#{o.number}", f"order:status:{o.number}") for o in own])
        return
    turn.ask(intent="order_status", slot="order_number", key="ask_order_number")


async def _find(turn: Turn, number: str) -> Order | None:
    try:
        return await get_order_by_number(turn.session, number=number)
    except OrderNotFound:
        return None


def _owned(turn: Turn, order: Order | None) -> bool:
    if order is None:
        return False
    if turn.shopper_id is not None and order.shopper_id == turn.shopper_id:
        return True
    return verified_order(turn.conversation, order.number, now=utcnow(),
                          ttl_seconds=turn.deps.settings.security.verified_order_ttl_seconds)


async def with_number(turn: Turn, number: str) -> None:
    order = await _find(turn, number)
    if order is not None and _owned(turn, order):
        turn.conversation.pending = None
        show(turn, order)
        return
    limiter = turn.deps.rate_limiter
    if await limiter.blocked(turn.session, conversation_id=turn.conversation.id, order_number=number):
        turn.conversation.pending = None
        turn.say("order_rate_limited", minutes=limiter.window_seconds // 60)
        return
    # Unknown and someone else's numbers get the same question: existence is never revealed.
    turn.ask(intent="order_status", slot="order_proof", key="ask_order_proof", data={"number": number},
             number=number)


async def with_proof(turn: Turn, number: str) -> None:
    """The shopper typed an e-mail or postcode for `number`: show the order if it matches, else the same refusal."""
    limiter = turn.deps.rate_limiter
    conversation_id = turn.conversation.id
    turn.conversation.pending = None
    if await limiter.blocked(turn.session, conversation_id=conversation_id, order_number=number):
        turn.say("order_rate_limited", minutes=limiter.window_seconds // 60)
        return
    proof = str(turn.entity("email") or turn.text).strip()
    order = await _find(turn, number)
    matched = order is not None and _proves(order, proof)
    await limiter.record(turn.session, conversation_id=conversation_id, succeeded=matched, order_number=number)
    if not matched or order is None:
        turn.say("order_not_matched")
        return
    remember_verified_order(turn.conversation, order.number, now=utcnow())
    show(turn, order)


def _squash(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def _proves(order: Order, proof: str) -> bool:
    if not proof:
        return False
    if "@" in proof:
        return (order.email or "").strip().lower() == proof.lower()
    return bool(order.postcode) and bool(POSTCODE.match(proof)) and _squash(order.postcode or "") == _squash(proof)


def show(turn: Turn, order: Order) -> None:
    history = "\n".join(turn.t("order_history_line", when=change.changed_at.strftime("%Y-%m-%d"),
                               status=turn.t(f"status.{change.to_status}"))
                        for change in order.history)
    tracking = ""
    if order.carrier or order.tracking_number:
        tracking = turn.t("order_tracking", carrier=order.carrier or "-", tracking=order.tracking_number or "-")
    turn.say("order_status", number=order.number, status=turn.t(f"status.{order.status}"), history=history,
             tracking=tracking, custom={"order_number": order.number, "status": order.status,
                                        "carrier": order.carrier, "tracking_number": order.tracking_number})
